package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

type authFunc func(from peer.ID, token []byte) (Grant, error)

func (f authFunc) Authorize(from peer.ID, token []byte) (Grant, error) { return f(from, token) }

// echoServer is a TCP service that echoes until its client half-closes, then
// writes "bye" and closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.Write([]byte("bye"))
			}()
		}
	}()
	return ln.Addr().String()
}

func pair(t *testing.T) (provider, consumer host.Host) {
	t.Helper()
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mn.Close() })
	return mn.Hosts()[0], mn.Hosts()[1]
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestTunnelCarriesBytesAndHalfClose(t *testing.T) {
	prov, cons := pair(t)
	target := echoServer(t)
	svc := NewService(prov, authFunc(func(from peer.ID, token []byte) (Grant, error) {
		if from != cons.ID() || string(token) != "good" {
			return Grant{}, errors.New("bad token")
		}
		return Grant{Session: "s1", Target: target}, nil
	}), quiet())
	defer svc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	str, err := Open(ctx, cons, prov.ID(), []byte("good"))
	if err != nil {
		t.Fatal(err)
	}
	conn := NewConn(str, nil)
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	go func() {
		conn.Write(payload)
		conn.CloseWrite() // the echo server sees EOF, answers "bye" and closes
	}()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(payload, "bye"...)) {
		t.Fatalf("got %d bytes back, want %d + bye", len(got), len(payload))
	}
	conn.Close()
	waitFor(t, func() bool {
		c, ok := svc.Counters("s1")
		return ok && c.Open.Load() == 0 && c.In.Load() == int64(len(payload)) && c.Out.Load() == int64(len(payload)+3)
	})
}

func TestRefusals(t *testing.T) {
	prov, cons := pair(t)
	down := func() string { // an address nothing listens on
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	svc := NewService(prov, authFunc(func(from peer.ID, token []byte) (Grant, error) {
		switch string(token) {
		case "down":
			return Grant{Session: "s", Target: down}, nil
		}
		return Grant{}, errors.New("session expired")
	}), quiet())
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, err := Open(ctx, cons, prov.ID(), []byte("stale"))
	var re *RefusedError
	if !errors.As(err, &re) || re.Reason != "session expired" || !errors.Is(err, ErrRefused) {
		t.Fatalf("bad token: %v", err)
	}
	_, err = Open(ctx, cons, prov.ID(), []byte("down"))
	if !errors.As(err, &re) || re.Reason != "the provider's service is not answering" {
		t.Fatalf("service down: %v", err)
	}
	if svc.Stats.Refused.Load() != 1 || svc.Stats.DialFails.Load() != 1 {
		t.Fatalf("stats: refused %d, dial fails %d", svc.Stats.Refused.Load(), svc.Stats.DialFails.Load())
	}
	// A garbled open is reset without an answer.
	str, err := cons.NewStream(ctx, prov.ID(), ID)
	if err != nil {
		t.Fatal(err)
	}
	str.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
	if _, err := io.ReadAll(str); err == nil {
		t.Fatal("garbled open got a clean answer")
	}
}

func TestRevokeClosesLiveTunnels(t *testing.T) {
	prov, cons := pair(t)
	target := echoServer(t)
	svc := NewService(prov, authFunc(func(peer.ID, []byte) (Grant, error) {
		return Grant{Session: "s1", Target: target}, nil
	}), quiet())
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	str, err := Open(ctx, cons, prov.ID(), []byte("t"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(str, buf); err != nil {
		t.Fatal(err)
	}
	if n := svc.Revoke("s1"); n != 1 {
		t.Fatalf("revoke closed %d tunnels, want 1", n)
	}
	str.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(str); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after revoke: %v, want a reset", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatal("condition not met in 10s")
		case <-tick.C:
		}
	}
}

// A service that speaks first: its greeting must reach the consumer even
// when it arrives together with the provider's answer.
func TestServiceSpeaksFirst(t *testing.T) {
	prov, cons := pair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("220 ready\r\n"))
			c.Close()
		}
	}()
	svc := NewService(prov, authFunc(func(peer.ID, []byte) (Grant, error) {
		return Grant{Session: "s", Target: ln.Addr().String()}, nil
	}), quiet())
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 20 {
		str, err := Open(ctx, cons, prov.ID(), []byte("t"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(str)
		if err != nil || string(got) != "220 ready\r\n" {
			t.Fatalf("try %d: greeting %q, %v", i, got, err)
		}
	}
}
