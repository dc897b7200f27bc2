package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/pullnet/pullnet/internal/simnet"
)

// config is the command line.
type config struct {
	opts       simnet.Options
	w          simnet.Workload
	baseline   bool
	only       string // "", "pullnet" or "baseline"
	out        string
	report     string
	svgDir     string
	poll       time.Duration
	timeout    time.Duration
	verbose    bool
	hotOnly    bool
	noChurn    bool
	churnList  string
	gogc       int
	memLimit   int64
	memProfile string
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("pullsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 100, "number of nodes")
	seed := fs.Int64("seed", 1, "seed of identities, latencies, workload and churn")
	lat := fs.String("latency", "10ms-150ms", "one-way link latency: uniform `min-max`, or fixed")
	dialRTTs := fs.Float64("dial-rtts", 1, "round trips a new connection costs before its first stream (QUIC 1, TCP+TLS 2)")
	deadDial := fs.Duration("dead-dial", time.Second, "how long a dial to a departed peer takes to fail")
	fill := fs.String("fill", "global", "routing tables: global (k closest per bucket, computed centrally) or bootstrap (real bootstraps)")
	conns := fs.String("conns", "16:32", "connection manager `low:high` watermarks per host (pulld: 100:400); empty: none")
	grace := fs.Duration("conn-grace", 10*time.Second, "connection manager grace period (pulld: 1m)")
	announce := fs.Bool("announce", false, "let Advertise publish gossip announcements for watchers (node.Config.NoAnnounce off)")
	protect := fs.Bool("conn-protect", false, "let kad-dht's connection protections stand (some 40 untrimmable connections per node); off turns them into tags")
	advertisers := fs.Float64("advertisers", 1, "fraction of nodes that advertise resources at the start")
	local := fs.Bool("local-topics", true, "answer gossip topics' DHT rendezvous lookups locally (counted, not sent)")
	fs.DurationVar(&c.poll, "discovery-poll", time.Minute, "gossipsub's discovery poll interval (library default 1s); 0 keeps the default")
	parallel := fs.Int("parallel", 64, "cap on concurrent operations (advertises, finds) and start-ups")
	res := fs.Int("resources", 1, "resources per node")
	tags := fs.Int("tags", 2, "tags per resource")
	vocab := fs.Int("vocab", 0, "tag vocabulary size (0: max(100, n))")
	kinds := fs.Int("kinds", 8, "distinct resource kinds")
	zipf := fs.Float64("zipf", 1.2, "Zipf exponent of tag popularity (> 1)")
	rate := fs.Float64("finds", 20, "finds per second, network-wide")
	findTime := fs.Duration("find-time", 30*time.Second, "how long finds run")
	rest := fs.Duration("rest", 30*time.Second, "window over which traffic at rest is measured")
	probes := fs.Int("probes", 20, "advertise-to-findable measurements")
	fs.StringVar(&c.churnList, "churn", "0.1,0.3", "fractions of nodes replaced per period, comma-separated; empty: no churn")
	period := fs.Duration("churn-period", 20*time.Second, "one churn period (stands for 10 minutes of a real network)")
	periods := fs.Int("churn-periods", 2, "periods per churn level")
	hot := fs.Bool("hot", false, "run the hot-term experiment")
	hotProv := fs.Int("hot-providers", 1000, "providers of the hot term")
	hotRate := fs.Float64("hot-finds", 10, "finds per second for the hot term")
	hotTime := fs.Duration("hot-time", 30*time.Second, "how long hot finds run")
	fs.BoolVar(&c.baseline, "baseline", false, "also run the same workload on plain kad-dht (one provider record per term key)")
	fs.StringVar(&c.only, "only", "", "run only pullnet or only baseline")
	fs.StringVar(&c.out, "out", "", "append the reports, as JSON lines, to this file")
	fs.StringVar(&c.report, "report", "", "do not simulate: read reports from these JSON-lines files (comma-separated) and print tables")
	fs.StringVar(&c.svgDir, "svg", "", "with -report: write plots into this directory")
	fs.DurationVar(&c.timeout, "timeout", 15*time.Minute, "give up after this long")
	fs.BoolVar(&c.verbose, "v", false, "log progress to stderr")
	fs.StringVar(&c.memProfile, "memprofile", "", "write a heap profile here once every node has advertised")
	fs.IntVar(&c.gogc, "gogc", 200, "garbage collector target percentage for the simulator process (Go's default 100)")
	fs.Int64Var(&c.memLimit, "mem-limit", 15<<30, "soft memory limit of the simulator process, bytes")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	l, err := simnet.ParseLatency(*lat)
	if err != nil {
		return nil, err
	}
	c.opts = simnet.Options{N: *n, Seed: *seed, Latency: l, DialRTTs: *dialRTTs, DeadDial: *deadDial,
		ConnGrace: *grace, LocalTopics: *local, Parallel: *parallel}
	c.opts.NodeConfig.NoAnnounce = !*announce
	c.opts.KeepProtections = *protect
	switch *fill {
	case "global":
		c.opts.Fill = simnet.FillGlobal
	case "bootstrap":
		c.opts.Fill = simnet.FillBootstrap
	default:
		return nil, fmt.Errorf("-fill %q: want global or bootstrap", *fill)
	}
	if *conns != "" {
		lo, hi, ok := strings.Cut(*conns, ":")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil || a > b {
			return nil, fmt.Errorf("-conns %q: want low:high", *conns)
		}
		c.opts.ConnLow, c.opts.ConnHigh = a, b
	}
	w := simnet.DefaultWorkload(*n)
	w.Resources, w.Tags, w.Kinds, w.Zipf, w.Advertisers = *res, *tags, *kinds, *zipf, *advertisers
	if *vocab > 0 {
		w.Vocab = *vocab
	}
	w.FindRate, w.FindTime, w.RestTime, w.Probes, w.Parallel = *rate, *findTime, *rest, *probes, *parallel
	w.ChurnPeriod, w.ChurnPeriods = *period, *periods
	w.Hot, w.HotProviders, w.HotRate, w.HotTime = *hot, *hotProv, *hotRate, *hotTime
	for _, s := range strings.Split(c.churnList, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f >= 1 {
			return nil, fmt.Errorf("-churn %q: want fractions in (0, 1)", c.churnList)
		}
		w.Churn = append(w.Churn, f)
	}
	if w.Zipf <= 1 {
		return nil, errors.New("-zipf must be > 1")
	}
	c.w = w
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.report != "" {
		reps, err := readReports(strings.Split(c.report, ","))
		if err != nil {
			return err
		}
		printTables(stdout, reps)
		if c.svgDir != "" {
			return writePlots(c.svgDir, reps)
		}
		return nil
	}
	debug.SetGCPercent(c.gogc)
	debug.SetMemoryLimit(c.memLimit)
	if c.poll > 0 {
		// A package variable of go-libp2p-pubsub, read when each router
		// starts: set before any node exists.
		pubsub.DiscoveryPollInterval = c.poll
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	logf := func(string, ...any) {}
	if c.verbose {
		logf = func(format string, args ...any) {
			fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}
	if c.memProfile != "" {
		c.w.AfterSetup = func(*simnet.Net) {
			f, err := os.Create(c.memProfile)
			if err != nil {
				logf("memprofile: %v", err)
				return
			}
			defer f.Close()
			runtime.GC()
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				logf("memprofile: %v", err)
			}
			if g, err := os.Create(c.memProfile + ".goroutines"); err == nil {
				_ = pprof.Lookup("goroutine").WriteTo(g, 1)
				g.Close()
			}
		}
	}
	var reps []*simnet.Report
	kinds := []simnet.Kind{simnet.Pullnet}
	if c.baseline {
		kinds = append(kinds, simnet.Baseline)
	}
	switch c.only {
	case "":
	case "pullnet":
		kinds = []simnet.Kind{simnet.Pullnet}
	case "baseline":
		kinds = []simnet.Kind{simnet.Baseline}
	default:
		return fmt.Errorf("-only %q: want pullnet or baseline", c.only)
	}
	for _, k := range kinds {
		opts := c.opts
		opts.Kind = k
		if c.verbose {
			opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		}
		rep, err := simnet.Run(ctx, opts, c.w, logf)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		reps = append(reps, rep)
		if c.out != "" {
			if err := appendReport(c.out, rep); err != nil {
				return err
			}
		}
	}
	printTables(stdout, reps)
	return nil
}

func appendReport(path string, rep *simnet.Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
