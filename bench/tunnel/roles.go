package main

// The roles that have nothing to do with pullnet: the sink (the service at
// the far end of every path), the measuring client, and the delay relays.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// emit prints one JSON line on stdout, the way roles report.
var emitMu sync.Mutex

func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	emitMu.Lock()
	defer emitMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

// untilStdinCloses returns a context that ends when the orchestrator closes
// the role's stdin (or dies, which closes it too).
func untilStdinCloses() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx
}

// connDeadline bounds every connection the sink, client and relays serve.
const connDeadline = 10 * time.Minute

// roleSink serves the push and echo modes on one port and a banner
// service on another, until stdin closes.
func roleSink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go acceptLoop(ln, serveSink)
	go acceptLoop(bl, serveBanner)
	emit(sinkReady{Addr: ln.Addr().String(), Banner: bl.Addr().String()})
	<-untilStdinCloses().Done()
	return nil
}

func acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(connDeadline))
			serve(c)
		}()
	}
}

func serveSink(c net.Conn) {
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return // a readiness probe
	}
	switch mode[0] {
	case modePush:
		var h [8]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		want := int64(binary.BigEndian.Uint64(h[:]))
		buf := make([]byte, copyBuf)
		var got int64
		for got < want {
			n, err := c.Read(buf[:min(int64(len(buf)), want-got)])
			got += int64(n)
			if err != nil {
				break
			}
		}
		binary.BigEndian.PutUint64(h[:], uint64(got))
		c.Write(h[:])
	case modeEcho:
		if _, err := c.Write(mode[:]); err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
}

func serveBanner(c net.Conn) {
	if _, err := io.WriteString(c, bannerText); err != nil {
		return
	}
	io.Copy(io.Discard, c)
}

// roleClient runs the measurements the orchestrator asks for, one at a
// time, and answers each with a clientResult.
func roleClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	payload := make([]byte, copyBuf)
	rand.Read(payload) // nothing on any path compresses, but be sure
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var cmd clientCmd
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("client: bad command: %w", err)
		}
		var res clientResult
		var err error
		switch cmd.Op {
		case "push":
			res, err = push(cmd.Addr, cmd.Size, payload)
		case "rtt":
			res, err = roundTrips(cmd.Addr, cmd.N)
		default:
			err = fmt.Errorf("unknown op %q", cmd.Op)
		}
		if err != nil {
			res = clientResult{Err: err.Error()}
		}
		emit(res)
	}
	return nil
}

// push sends size bytes through addr to the sink and waits for the sink to
// confirm it has them all. The clock starts once the connection to addr is
// up (for pullnet, before the tunnel behind the forward has opened).
func push(addr string, size int64, payload []byte) (clientResult, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return clientResult{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(connDeadline))
	start := time.Now()
	if err := writeHeader(c, modePush, size); err != nil {
		return clientResult{}, err
	}
	for sent := int64(0); sent < size; {
		n, err := c.Write(payload[:min(int64(len(payload)), size-sent)])
		sent += int64(n)
		if err != nil {
			return clientResult{}, fmt.Errorf("after %d bytes: %w", sent, err)
		}
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return clientResult{}, fmt.Errorf("waiting for the sink: %w", err)
	}
	el := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != size {
		return clientResult{}, fmt.Errorf("sink got %d bytes, want %d", got, size)
	}
	return clientResult{Bytes: size, Nanos: ns(el)}, nil
}

// rttWarmup round trips are made, and not counted, before the timed ones.
const rttWarmup = 200

// roundTrips times n 1-byte request/response round trips over one
// connection.
func roundTrips(addr string, n int) (clientResult, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return clientResult{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(connDeadline))
	b := []byte{modeEcho}
	if _, err := c.Write(b); err != nil {
		return clientResult{}, err
	}
	if _, err := io.ReadFull(c, b); err != nil || b[0] != modeEcho {
		return clientResult{}, fmt.Errorf("echo handshake: %v", err)
	}
	out := make([]int64, 0, n)
	for i := range rttWarmup + n {
		b[0] = byte(i)
		t := time.Now()
		if _, err := c.Write(b); err != nil {
			return clientResult{}, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return clientResult{}, err
		}
		if b[0] != byte(i) {
			return clientResult{}, errors.New("echo out of step")
		}
		if i >= rttWarmup {
			out = append(out, ns(time.Since(t)))
		}
	}
	return clientResult{Samples: out}, nil
}

// roleRelay forwards TCP connections or UDP datagrams to -to, adding
// -delay one way in each direction. For TCP it also stands in for the
// handshake the relay hides (the consumer's connect to the relay returns
// at once): bytes towards the target are held until one RTT after the
// accept, and bytes back until 1.5 RTT after it, as if the connection had
// taken its SYN, SYN-ACK and ACK over the delayed link.
func roleRelay(args []string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	proto := fs.String("proto", "tcp", "tcp or udp")
	to := fs.String("to", "", "target host:port")
	delay := fs.Duration("delay", 20*time.Millisecond, "one-way delay")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := untilStdinCloses()
	switch *proto {
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		emit(map[string]string{"addr": ln.Addr().String()})
		go acceptLoop(ln, func(c net.Conn) { relayTCP(c, *to, *delay) })
		<-ctx.Done()
		ln.Close()
	case "udp":
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		emit(map[string]string{"addr": pc.LocalAddr().String()})
		go relayUDP(ctx, pc, *to, *delay)
		<-ctx.Done()
		pc.Close()
	default:
		return fmt.Errorf("relay: proto %q", *proto)
	}
	return nil
}

type chunk struct {
	at   time.Time
	data []byte // nil: end of stream
}

func relayTCP(c net.Conn, to string, delay time.Duration) {
	accepted := time.Now()
	u, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(connDeadline))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); delayPump(u, c, accepted.Add(2*delay), delay) }()
	go func() { defer wg.Done(); delayPump(c, u, accepted.Add(3*delay), delay) }()
	wg.Wait()
}

// delayPump copies src to dst, each read delivered delay after it was
// read (and no earlier than gate+delay), in order.
func delayPump(dst, src net.Conn, gate time.Time, delay time.Duration) {
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				at := time.Now()
				if at.Before(gate) {
					at = gate
				}
				q <- chunk{at: at.Add(delay), data: buf[:n]}
			}
			if err != nil {
				q <- chunk{at: time.Now().Add(delay)}
				return
			}
		}
	}()
	for ch := range q {
		time.Sleep(time.Until(ch.at))
		if ch.data == nil {
			if t, ok := dst.(*net.TCPConn); ok {
				t.CloseWrite()
			}
			continue
		}
		if _, err := dst.Write(ch.data); err != nil {
			src.Close()
			for range q { // let the reader end
			}
			return
		}
	}
}

type datagram struct {
	at   time.Time
	data []byte
	to   *net.UDPAddr // nil: over the upstream socket
}

// relayUDP gives each client address its own upstream socket to the
// target, and delays every datagram both ways.
func relayUDP(ctx context.Context, pc *net.UDPConn, to string, delay time.Duration) {
	target, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return
	}
	back := make(chan datagram, 4096) // to clients, over pc
	go delayedSend(back, func(d datagram) { pc.WriteToUDP(d.data, d.to) })
	ups := map[string]chan datagram{}
	for {
		buf := make([]byte, 2048)
		n, from, err := pc.ReadFromUDP(buf)
		if err != nil {
			return
		}
		q, ok := ups[from.String()]
		if !ok {
			u, err := net.DialUDP("udp", nil, target)
			if err != nil {
				continue
			}
			q = make(chan datagram, 4096)
			ups[from.String()] = q
			go delayedSend(q, func(d datagram) { u.Write(d.data) })
			go func() {
				defer u.Close()
				for ctx.Err() == nil {
					b := make([]byte, 2048)
					n, err := u.Read(b)
					if err != nil {
						return
					}
					select {
					case back <- datagram{at: time.Now().Add(delay), data: b[:n], to: from}:
					default: // queue full: drop, as a link would
					}
				}
			}()
		}
		select {
		case q <- datagram{at: time.Now().Add(delay), data: buf[:n]}:
		default:
		}
	}
}

func delayedSend(q <-chan datagram, send func(datagram)) {
	for d := range q {
		time.Sleep(time.Until(d.at))
		send(d)
	}
}
