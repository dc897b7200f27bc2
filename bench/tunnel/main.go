// Command tunnel measures pullnet's service tunnel against raw loopback TCP
// and OpenSSH port forwarding, on one machine in one run: throughput of a
// bulk push, 1-byte request/response round trips, CPU per GiB, and the time
// to the first byte through a fresh tunnel over a link with added delay.
//
//	go run ./bench/tunnel [-size 1GiB] [-rtts 2000] [-reps 3] [-paths raw,ssh-default,...]
//	    [-delay 20ms] [-tries 5] [-cpuprofile DIR] [-nodeenv GOMAXPROCS=1] [-keep]
//
// Paths (-paths, all by default):
//
//	raw              client → sink over loopback TCP
//	ssh-default      ssh -N -L with OpenSSH's default cipher
//	ssh-aes128gcm    the same with -c aes128-gcm@openssh.com (the baseline of the ratios)
//	pullnet-tls      consumer forward → tunnel over TCP+TLS+yamux → provider
//	pullnet-noise    the same over TCP+Noise+yamux
//	pullnet-quic     the same over QUIC
//	pullnet-default  nodes with node.Config's defaults (TCP and QUIC, TLS or Noise) on 127.0.0.1
//	ttfb-tcp         time to first byte through fresh tunnels, TCP+TLS, provider behind a delay relay
//	ttfb-quic        the same over QUIC (UDP relay)
//
// Every path is separate processes, so that CPU can be attributed: this
// binary re-executes itself as the sink (the service at the far end), the
// measuring client, a pullnet provider node and a pullnet consumer node
// (serving a forward, like ssh -L), and a delay relay. The ssh paths run a
// private sshd on a free loopback port with throw-away keys, and ssh -N -L;
// they need OpenSSH installed (Debian: apt-get install -y openssh-server
// openssh-client) and are skipped without it. Nothing leaves 127.0.0.1, and
// every child is killed at the end, also on error or interrupt.
//
// Figures go to BENCHMARKS.md with the machine they came from.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// allPaths in the order they run and print.
var allPaths = []string{"raw", "ssh-default", "ssh-aes128gcm", "pullnet-tls", "pullnet-noise", "pullnet-quic", "pullnet-default", "ttfb-tcp", "ttfb-quic"}

// baseline is the path the ratios are against.
const baseline = "ssh-aes128gcm"

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-role" {
		roles := map[string]func([]string) error{"sink": roleSink, "client": roleClient, "relay": roleRelay,
			"provider": roleProvider, "consumer": roleConsumer}
		f, ok := roles[os.Args[2]]
		if !ok {
			log.Fatalf("unknown role %q", os.Args[2])
		}
		if err := f(os.Args[3:]); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[2], err)
			os.Exit(1)
		}
		return
	}
	var o opts
	sizeStr := flag.String("size", "1GiB", "bytes pushed per repetition (e.g. 1GiB, 256MiB)")
	flag.IntVar(&o.rtts, "rtts", 2000, "timed 1-byte round trips per path (after 200 untimed)")
	paths := flag.String("paths", strings.Join(allPaths, ","), "comma-separated paths to run")
	flag.IntVar(&o.reps, "reps", 3, "pushes per path; throughput is their median")
	flag.DurationVar(&o.delay, "delay", 20*time.Millisecond, "one-way delay the relay adds for the TTFB paths")
	flag.IntVar(&o.tries, "tries", 5, "TTFB paths: timed tunnels of each kind")
	flag.StringVar(&o.profile, "cpuprofile", "", "folder: write CPU profiles of the pullnet nodes during the pushes")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder (children's stderr, sshd config)")
	nodeEnv := flag.String("nodeenv", "", "comma-separated KEY=VALUE added to the environment of the pullnet nodes (e.g. GOMAXPROCS=1)")
	flag.Parse()
	var err error
	if o.size, err = parseSize(*sizeStr); err != nil {
		log.Fatal(err)
	}
	for _, p := range strings.Split(*paths, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(allPaths, p) {
			log.Fatalf("unknown path %q; paths: %s", p, strings.Join(allPaths, ","))
		}
		o.paths = append(o.paths, p)
	}
	for _, kv := range strings.Split(*nodeEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			if !strings.Contains(kv, "=") {
				log.Fatalf("-nodeenv: %q is not KEY=VALUE", kv)
			}
			o.nodeEnv = append(o.nodeEnv, kv)
		}
	}
	if o.reps < 1 || o.rtts < 1 || o.tries < 1 {
		log.Fatal("-reps, -rtts and -tries must be at least 1")
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

type opts struct {
	size       int64
	rtts, reps int
	tries      int
	delay      time.Duration
	paths      []string
	profile    string
	keep       bool
	nodeEnv    []string
}

// result is one path's figures.
type result struct {
	name, desc string
	skipped    string
	gbps       []float64
	// CPU seconds over all timed pushes: of the path's own processes (ssh
	// and sshd with all its children; consumer and provider nodes), and of
	// the client and sink, which every path has.
	cpuPath, cpuEnds float64
	bytes            int64
	rtt              []int64
	ttfb             *ttfbResult
}

func run(o opts) (err error) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, time.Hour)
	defer cancel2()
	defer func() {
		if err != nil && ctx.Err() != nil { // the children were killed: say why
			err = fmt.Errorf("stopped (%v): %w", ctx.Err(), err)
		}
	}()
	dir, err := os.MkdirTemp("", "pullnet-bench-tunnel-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work folder:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err != nil {
			return err
		}
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	ps := newProcs(ctx, dir)
	defer ps.stopAll()

	sink, err := ps.role("sink", "sink")
	if err != nil {
		return err
	}
	var sr sinkReady
	if err := sink.recv(&sr, 10*time.Second); err != nil {
		return err
	}
	client, err := ps.role("client", "client")
	if err != nil {
		return err
	}
	b := &bench{o: o, ps: ps, sink: sink, client: client, sr: sr}
	var results []*result
	var lives []*live
	// Set every throughput path up, then measure them in rounds (one push
	// of each path per round), so that a change in the machine's load
	// falls on all paths alike rather than on whichever ran then.
	for _, name := range o.paths {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := &result{name: name}
		results = append(results, r)
		if strings.HasPrefix(name, "ttfb-") {
			continue
		}
		fmt.Fprintf(os.Stderr, "== set up %s\n", name)
		l, err := b.setup(r)
		if errors.Is(err, errNoSSH) {
			r.skipped = err.Error()
			fmt.Fprintf(os.Stderr, "   skipped: %v\n", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(os.Stderr, "   %s\n", r.desc)
		lives = append(lives, l)
	}
	if err := b.measure(ctx, lives); err != nil {
		return err
	}
	for _, l := range lives {
		for _, p := range l.own {
			b.ps.stop(p)
		}
	}
	for _, r := range results {
		if !strings.HasPrefix(r.name, "ttfb-") {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(os.Stderr, "== %s\n", r.name)
		if err := b.ttfb(r); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	report(o, results)
	return nil
}

type bench struct {
	o            opts
	ps           *procs
	sink, client *proc
	sr           sinkReady
}

// live is a throughput path that is set up.
type live struct {
	r    *result
	addr string // where the client connects
	// own are the path's processes (whose CPU is the path's), profiled
	// those that write CPU profiles.
	own, profiled []*proc
}

// setup starts one throughput path's processes. On error, any that
// started are left to procs.stopAll.
func (b *bench) setup(r *result) (*live, error) {
	addr := b.sr.Addr
	var own []*proc // the path's own processes
	var profiled []*proc
	switch r.name {
	case "raw":
		r.desc = "client → sink, loopback TCP"
	case "ssh-default", "ssh-aes128gcm":
		tools, err := findSSH()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoSSH, err)
		}
		cipher := ""
		if r.name == "ssh-aes128gcm" {
			cipher = "aes128-gcm@openssh.com"
		}
		a, sshd, ssh, agreed, err := startSSH(b.ps, tools, r.name, cipher, b.sr.Addr)
		if sshd != nil {
			own = append(own, sshd)
		}
		if ssh != nil {
			own = append(own, ssh)
		}
		if err != nil {
			return nil, err
		}
		addr = a
		r.desc = "ssh -N -L, cipher " + agreed
	case "pullnet-tls", "pullnet-noise", "pullnet-quic", "pullnet-default":
		sec, tr := strings.TrimPrefix(r.name, "pullnet-"), "tcp"
		switch sec {
		case "quic":
			sec, tr = "tls", "quic"
		case "default": // node.Config's defaults: TCP and QUIC, TLS or Noise
			sec, tr = "", "both"
		}
		prov, pr, err := b.provider(r.name, sec, tr, false)
		if prov != nil {
			own = append(own, prov)
		}
		if err != nil {
			return nil, err
		}
		cons, cr, err := b.consumer(r.name+"-consumer", sec, tr, pr, nil)
		if cons != nil {
			own = append(own, cons)
		}
		if err != nil {
			return nil, err
		}
		addr = cr.Listen
		r.desc = fmt.Sprintf("forward → tunnel (security %q, listening on %s) → provider, conn %s", sec, tr, cr.Conn)
		if b.o.profile != "" {
			profiled = []*proc{prov, cons}
		}
	}
	return &live{r: r, addr: addr, own: own, profiled: profiled}, nil
}

// measure warms every path up, then pushes and times round trips in
// rounds.
func (b *bench) measure(ctx context.Context, lives []*live) error {
	for _, l := range lives {
		// Warm the path up (TCP windows, tunnel buffers), untimed.
		if _, err := b.clientDo(clientCmd{Op: "push", Addr: l.addr, Size: min(b.o.size, 64<<20)}); err != nil {
			return fmt.Errorf("%s: warm-up push: %w", l.r.name, err)
		}
	}
	ends := pids(b.client, b.sink)
	for i := range b.o.reps {
		for _, l := range lives {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r := l.r
			if i == 0 { // profile the first push only
				for _, p := range l.profiled {
					syscall.Kill(p.pid(), syscall.SIGUSR1)
				}
			}
			ob, eb := snapCPU(pids(l.own...)), snapCPU(ends)
			res, err := b.clientDo(clientCmd{Op: "push", Addr: l.addr, Size: b.o.size})
			if err != nil {
				return fmt.Errorf("%s: push %d: %w", r.name, i+1, err)
			}
			r.cpuPath += cpuSince(ob, snapCPU(pids(l.own...)))
			r.cpuEnds += cpuSince(eb, snapCPU(ends))
			if i == 0 {
				for _, p := range l.profiled {
					syscall.Kill(p.pid(), syscall.SIGUSR2)
				}
			}
			r.bytes += res.Bytes
			g := float64(res.Bytes) * 8 / float64(res.Nanos)
			r.gbps = append(r.gbps, g)
			fmt.Fprintf(os.Stderr, "   %-14s push %d: %.2f Gbit/s\n", r.name, i+1, g)
		}
	}
	// Round trips: -rtts on one connection (so one tunnel) per path and
	// round, all samples of a path pooled.
	for range b.o.reps {
		for _, l := range lives {
			res, err := b.clientDo(clientCmd{Op: "rtt", Addr: l.addr, N: b.o.rtts})
			if err != nil {
				return fmt.Errorf("%s: round trips: %w", l.r.name, err)
			}
			l.r.rtt = append(l.r.rtt, res.Samples...)
		}
	}
	for _, l := range lives {
		for _, p := range l.profiled {
			if err := waitFile(filepath.Join(b.o.profile, p.name+".pprof"), 10*time.Second); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *bench) clientDo(cmd clientCmd) (clientResult, error) {
	var res clientResult
	if err := b.client.send(cmd); err != nil {
		return res, err
	}
	if err := b.client.recv(&res, 15*time.Minute); err != nil {
		return res, err
	}
	if res.Err != "" {
		return res, errors.New(res.Err)
	}
	return res, nil
}

func waitFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no profile at %s", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// provider starts a provider node advertising the sink (and the banner
// service).
func (b *bench) provider(name, sec, tr string, banner bool) (*proc, providerReady, error) {
	var pr providerReady
	args := []string{"-security", sec, "-transport", tr, "-service", b.sr.Addr}
	if banner {
		args = append(args, "-banner", b.sr.Banner)
	}
	name += "-provider"
	if b.o.profile != "" {
		args = append(args, "-cpuprofile", filepath.Join(b.o.profile, name+".pprof"))
	}
	p, err := b.ps.roleEnv(name, "provider", b.o.nodeEnv, args...)
	if err != nil {
		return nil, pr, err
	}
	return p, pr, p.recv(&pr, time.Minute)
}

// consumer starts a consumer node serving a forward to the sink. addrs,
// when set, replaces the provider's own addresses (to go through a relay).
func (b *bench) consumer(name, sec, tr string, pr providerReady, addrs []string) (*proc, consumerReady, error) {
	var cr consumerReady
	boot, err := addrInfoJSON(pr.ID, cmpOr(addrs, pr.Addrs))
	if err != nil {
		return nil, cr, err
	}
	args := []string{"-security", sec, "-transport", tr, "-bootstrap", boot, "-resource", pr.Sink}
	if b.o.profile != "" {
		args = append(args, "-cpuprofile", filepath.Join(b.o.profile, name+".pprof"))
	}
	p, err := b.ps.roleEnv(name, "consumer", b.o.nodeEnv, args...)
	if err != nil {
		return nil, cr, err
	}
	return p, cr, p.recv(&cr, 2*time.Minute)
}

func cmpOr(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

func addrInfoJSON(id string, addrs []string) (string, error) {
	pid, err := peer.Decode(id)
	if err != nil {
		return "", err
	}
	ai := peer.AddrInfo{ID: pid}
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return "", err
		}
		ai.Addrs = append(ai.Addrs, m)
	}
	j, err := json.Marshal(ai)
	return string(j), err
}

// ttfb measures time to first byte through fresh tunnels, with the
// provider behind a delay relay.
func (b *bench) ttfb(r *result) error {
	tr := strings.TrimPrefix(r.name, "ttfb-")
	var own []*proc
	defer func() {
		for i := len(own) - 1; i >= 0; i-- {
			b.ps.stop(own[i])
		}
	}()
	prov, pr, err := b.provider(r.name, "tls", tr, true)
	if prov != nil {
		own = append(own, prov)
	}
	if err != nil {
		return err
	}
	// A first consumer, directly connected, gives the provider a DHT peer
	// to announce to; the timed consumer then finds the records there.
	helper, _, err := b.consumer(r.name+"-helper", "tls", tr, pr, nil)
	if helper != nil {
		own = append(own, helper)
	}
	if err != nil {
		return err
	}
	var ann map[string]bool
	if err := prov.recv(&ann, time.Minute); err != nil || !ann["announced"] {
		return fmt.Errorf("provider did not announce: %v", err)
	}
	// The relay in front of the provider's only address.
	pm, err := ma.NewMultiaddr(pr.Addrs[0])
	if err != nil {
		return err
	}
	proto, code := "tcp", ma.P_TCP
	if tr == "quic" {
		proto, code = "udp", ma.P_UDP
	}
	port, err := pm.ValueForProtocol(code)
	if err != nil {
		return fmt.Errorf("provider address %s: %w", pm, err)
	}
	relay, err := b.ps.role(r.name+"-relay", "relay", "-proto", proto, "-to", "127.0.0.1:"+port, "-delay", b.o.delay.String())
	if err != nil {
		return err
	}
	own = append(own, relay)
	var rr map[string]string
	if err := relay.recv(&rr, 10*time.Second); err != nil {
		return err
	}
	_, rport, err := net.SplitHostPort(rr["addr"])
	if err != nil {
		return err
	}
	via := strings.Replace(pr.Addrs[0], "/"+proto+"/"+port, "/"+proto+"/"+rport, 1)
	boot, err := addrInfoJSON(pr.ID, []string{via})
	if err != nil {
		return err
	}
	cons, err := b.ps.roleEnv(r.name+"-consumer", "consumer", b.o.nodeEnv, "-mode", "ttfb", "-security", "tls", "-transport", tr,
		"-bootstrap", boot, "-resource", pr.Sink, "-banner", pr.Banner, "-tries", strconv.Itoa(b.o.tries))
	if err != nil {
		return err
	}
	own = append(own, cons)
	var res ttfbResult
	if err := cons.recv(&res, 4*time.Minute); err != nil {
		return err
	}
	r.ttfb = &res
	r.desc = fmt.Sprintf("provider behind a %s relay adding %s each way; conn %s", proto, b.o.delay, res.Conn)
	fmt.Fprintf(os.Stderr, "   %s\n", r.desc)
	return nil
}
