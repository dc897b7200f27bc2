package main

// The pullnet roles: a provider node advertising the sink, and a consumer
// node that either serves a forward for the client (throughput and RTT) or
// times tunnels itself (TTFB).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

type nodeFlags struct {
	security, transport, profile string
}

func (f *nodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.security, "security", "tls", "tls, noise, or empty for both (QUIC has its own TLS)")
	fs.StringVar(&f.transport, "transport", "tcp", "tcp, quic, or both")
	fs.StringVar(&f.profile, "cpuprofile", "", "write a CPU profile here between SIGUSR1 and SIGUSR2")
}

func (f *nodeFlags) config() (node.Config, error) {
	cfg := node.Config{Security: f.security}
	switch f.transport {
	case "tcp":
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	case "quic":
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	case "both": // what a node listens on by default, on loopback only
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	default:
		return cfg, fmt.Errorf("transport %q: want tcp, quic or both", f.transport)
	}
	return cfg, nil
}

// profileOnSignal writes a CPU profile of the time between SIGUSR1 and
// SIGUSR2 to path (through a temporary name, so that the file appears
// whole).
func profileOnSignal(path string) {
	if path == "" {
		return
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var f *os.File
		for s := range sig {
			switch {
			case s == syscall.SIGUSR1 && f == nil:
				var err error
				if f, err = os.Create(path + ".tmp"); err != nil {
					fmt.Fprintln(os.Stderr, "profile:", err)
					continue
				}
				pprof.StartCPUProfile(f)
			case s == syscall.SIGUSR2 && f != nil:
				pprof.StopCPUProfile()
				f.Close()
				os.Rename(path+".tmp", path)
				f = nil
			}
		}
	}()
}

func roleProvider(args []string) error {
	fs := flag.NewFlagSet("provider", flag.ContinueOnError)
	var nf nodeFlags
	nf.register(fs)
	service := fs.String("service", "", "host:port of the sink")
	banner := fs.String("banner", "", "host:port of the banner service (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := nf.config()
	if err != nil {
		return err
	}
	profileOnSignal(nf.profile)
	stop := untilStdinCloses()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	advertise := func(name, addr string) (string, error) {
		r, err := n.Advertise(ctx, resource.Resource{Kind: "service", Name: name,
			Access: resource.Access{Type: resource.AccessTCP, Value: addr}})
		return r.ID, err
	}
	ready := providerReady{ID: n.ID().String()}
	for _, a := range n.Host().Addrs() {
		ready.Addrs = append(ready.Addrs, a.String())
	}
	if ready.Sink, err = advertise("bench sink", *service); err != nil {
		return err
	}
	if *banner != "" {
		if ready.Banner, err = advertise("bench banner", *banner); err != nil {
			return err
		}
	}
	emit(ready)
	// The announcement needs a DHT peer: the first consumer. Consumers
	// retry Connect until it is done.
	go func() {
		for _, id := range []string{ready.Sink, ready.Banner} {
			if id == "" {
				continue
			}
			if err := n.WaitAnnounced(stop, id); err != nil {
				return
			}
		}
		emit(map[string]bool{"announced": true})
	}()
	<-stop.Done()
	return nil
}

type consumerFlags struct {
	nodeFlags
	bootstrap, resource, banner string
	mode                        string
	tries                       int
}

func roleConsumer(args []string) error {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	var cf consumerFlags
	cf.register(fs)
	fs.StringVar(&cf.bootstrap, "bootstrap", "", "the provider's peer.AddrInfo as JSON")
	fs.StringVar(&cf.resource, "resource", "", "resource ID of the sink")
	fs.StringVar(&cf.banner, "banner", "", "resource ID of the banner service (ttfb mode)")
	fs.StringVar(&cf.mode, "mode", "forward", "forward: serve a forward to the sink; ttfb: time fresh tunnels and exit")
	fs.IntVar(&cf.tries, "tries", 5, "ttfb mode: timed tunnels of each kind")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var prov peer.AddrInfo
	if err := json.Unmarshal([]byte(cf.bootstrap), &prov); err != nil {
		return fmt.Errorf("-bootstrap: %w", err)
	}
	cfg, err := cf.config()
	if err != nil {
		return err
	}
	cfg.Bootstrap = []peer.AddrInfo{prov}
	profileOnSignal(cf.profile)
	stop := untilStdinCloses()
	if cf.mode == "ttfb" {
		res, err := ttfb(stop, cfg, prov, cf)
		if err != nil {
			return err
		}
		emit(res)
		return nil
	}

	ctx, cancel := context.WithTimeout(stop, time.Minute)
	defer cancel()
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	g, _, err := connectRetry(ctx, n, cf.resource)
	if err != nil {
		return err
	}
	fw, err := n.Forward(ctx, g.Session, "127.0.0.1:0")
	if err != nil {
		return err
	}
	emit(consumerReady{Listen: fw.Listen, Conn: connDesc(n, prov.ID)})
	<-stop.Done()
	return nil
}

// connectRetry calls Connect until it grants: right after New, the
// bootstrap connection is still coming up, and before the provider's
// first announcement the DHT has no record of the resource.
func connectRetry(ctx context.Context, n *node.Node, id string) (node.Grant, int, error) {
	for tries := 1; ; tries++ {
		g, err := n.Connect(ctx, id, "")
		if err == nil && g.Granted {
			return g, tries, nil
		}
		if err == nil {
			return g, tries, fmt.Errorf("connect declined: %s", g.Reason)
		}
		if !errors.Is(err, node.ErrNotFound) || ctx.Err() != nil {
			return g, tries, err
		}
		select {
		case <-ctx.Done():
			return g, tries, fmt.Errorf("connect %s: %w (after %d tries)", id, err, tries)
		case <-time.After(time.Millisecond):
		}
	}
}

func connDesc(n *node.Node, p peer.ID) string {
	for _, pi := range n.Peers() {
		if pi.ID == p {
			return fmt.Sprintf("%s %v", pi.Transport, pi.Addrs)
		}
	}
	return "not connected"
}

// firstByte connects to the forward, asks the sink to echo, and returns
// when the first byte of the answer is back.
func firstByte(listen string) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", listen, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b := []byte{modeEcho}
	if _, err := c.Write(b); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, fmt.Errorf("first byte: %w", err)
	}
	return time.Since(start), nil
}

// freshVia reports whether every connection to p was opened since start
// and goes through one of addrs (the relay), i.e. whether what was just
// timed really dialled afresh through the delayed link.
func freshVia(n *node.Node, p peer.ID, start time.Time, addrs []ma.Multiaddr) bool {
	conns := n.Host().Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return false
	}
	for _, c := range conns {
		if c.Stat().Opened.Before(start) || !slices.ContainsFunc(addrs, c.RemoteMultiaddr().Equal) {
			return false
		}
	}
	return true
}

func ttfb(stop context.Context, cfg node.Config, prov peer.AddrInfo, cf consumerFlags) (ttfbResult, error) {
	var res ttfbResult
	ctx, cancel := context.WithTimeout(stop, 3*time.Minute)
	defer cancel()
	// A data folder keeps the identity, the session and the forward across
	// the restarts below.
	dir, err := os.MkdirTemp("", "pullnet-bench-consumer-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	cfg.DataDir = dir

	// Cold: a consumer that has never met the provider, from New to the
	// first byte through a forward.
	t0 := time.Now()
	n, err := node.New(ctx, cfg)
	if err != nil {
		return res, err
	}
	defer func() { n.Close() }()
	t1 := time.Now()
	res.New = ns(t1.Sub(t0))
	g, tries, err := connectRetry(ctx, n, cf.resource)
	if err != nil {
		return res, err
	}
	res.ConnectTries = tries
	res.ColdConnect = ns(time.Since(t1))
	fw, err := n.Forward(ctx, g.Session, "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	if _, err := firstByte(fw.Listen); err != nil {
		return res, fmt.Errorf("cold: %w", err)
	}
	res.ColdFirst = ns(time.Since(t1))
	res.Conn = connDesc(n, prov.ID)

	// The yardstick: libp2p ping over the same connection.
	pctx, pcancel := context.WithCancel(ctx)
	pings := ping.Ping(pctx, n.Host(), prov.ID)
	for i := range 13 {
		r := <-pings
		if r.Error != nil {
			pcancel()
			return res, fmt.Errorf("ping: %w", r.Error)
		}
		if i >= 3 {
			res.RTT = append(res.RTT, ns(r.RTT))
		}
	}
	pcancel()

	for range cf.tries {
		d, err := firstByte(fw.Listen)
		if err != nil {
			return res, fmt.Errorf("warm: %w", err)
		}
		res.Warm = append(res.Warm, ns(d))
	}
	// A server that speaks first: does its greeting survive the tunnel?
	if cf.banner != "" {
		res.BannerErr = bannerCheck(ctx, n, cf.banner, 4*cf.tries, &res)
	}

	// Over a fresh connection. Closing the connection is not enough to
	// get one (the provider's node may dial straight back), so the
	// consumer restarts instead, as after a reboot: same identity, the
	// session and the forward restored from its data folder, and no
	// connection to anyone. Nothing dials until the timed action: the
	// restarted node has no bootstrap peers, only the relay's address for
	// the provider. Timed: the tunnel (connect to the restored forward, to
	// the first byte back), host.Connect, and the swarm's DialPeer alone
	// (host.Connect without its wait for identify).
	restarted := cfg
	restarted.Bootstrap = nil
	kinds := []struct {
		out *[]int64
		do  func() (time.Duration, error)
	}{
		{&res.Fresh, func() (time.Duration, error) { return firstByte(fw.Listen) }},
		{&res.HostConnect, func() (time.Duration, error) {
			t := time.Now()
			err := n.Host().Connect(ctx, peer.AddrInfo{ID: prov.ID})
			return time.Since(t), err
		}},
		{&res.SwarmDial, func() (time.Duration, error) {
			t := time.Now()
			_, err := n.Host().Network().DialPeer(ctx, prov.ID)
			return time.Since(t), err
		}},
	}
	for _, k := range kinds {
		for try := 0; len(*k.out) < cf.tries; try++ {
			if try >= 3*cf.tries {
				return res, errors.New("could not time a fresh connection through the relay: something else connected first")
			}
			n.Close()
			if n, err = node.New(ctx, restarted); err != nil {
				return res, fmt.Errorf("restart: %w", err)
			}
			n.Host().Peerstore().AddAddrs(prov.ID, prov.Addrs, peerstore.TempAddrTTL)
			start := time.Now()
			d, err := k.do()
			if err != nil {
				return res, fmt.Errorf("fresh connection: %w", err)
			}
			if freshVia(n, prov.ID, start, prov.Addrs) {
				*k.out = append(*k.out, ns(d))
			}
		}
	}
	return res, nil
}

func bannerCheck(ctx context.Context, n *node.Node, id string, tries int, res *ttfbResult) string {
	g, _, err := connectRetry(ctx, n, id)
	if err != nil {
		return err.Error()
	}
	fw, err := n.Forward(ctx, g.Session, "127.0.0.1:0")
	if err != nil {
		return err.Error()
	}
	var last string
	for range tries {
		res.BannerTries++
		c, err := net.DialTimeout("tcp", fw.Listen, 10*time.Second)
		if err != nil {
			return err.Error()
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		got := make([]byte, len(bannerText))
		k, err := io.ReadFull(c, got)
		c.Close()
		if err == nil && string(got) == bannerText {
			res.BannerOK++
			continue
		}
		last = fmt.Sprintf("got %q (%d bytes), err %v", got[:k], k, err)
	}
	return last
}

// median of ns samples.
func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
