// Command ratingspread measures how ratings spread by gossip: N mocknet
// hosts in one process, each running pullnet's real gossip stack
// (announce.New's gossipsub with pullnet's peer scoring and flood publish,
// reputation.New's validator, a ratings.Book), on a random connected
// regular graph with a fixed one-way link latency. Ratings (a provider's
// signed receipt, rated by the consumer: signed.SealReceipt +
// signed.SealRating) are published from random nodes one after another,
// and the command reports, per rating, the time until 50/90/99/100 % of the
// other nodes hold it in their book, the bytes every node received on its
// pubsub streams meanwhile, and the copies and duplicates it received.
//
//	go run ./bench/ratingspread                     # -nodes 300 -degree 8 -ratings 20 -latency 20ms -seed 1
//	go run ./bench/ratingspread -nodes 500 -v       # per-rating rows too
//
// How it measures, without changing pullnet's code: announce.New is given a
// host whose pubsub streams count the bytes they carry (framing included;
// mocknet has no security or muxer, so there is none of their overhead) and
// decode each RPC gossipsub reads, so copies of a message, duplicates (what
// gossipsub's seen-cache drops) and IHAVE/IWANT/IDONTWANT entries are
// counted per node and message ID. reputation.New is given the node's real
// ratings.Book, wrapped to note when it first stores each rating.
//
// Waits: once every node sees all its neighbours on the topic, the command
// waits -settle (default 5 s, five gossipsub heartbeats) for meshes to form,
// publishes -warmup ratings it does not count, measures an idle window, and
// then publishes each measured rating once the previous one has reached
// every node and -tail (default 3.5 s, beyond gossipsub's 3-heartbeat gossip
// window) has passed, so each rating's window holds its IHAVE gossip too.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

func main() {
	cfg := Defaults()
	flag.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "mocknet hosts, each a full pullnet gossip stack")
	flag.IntVar(&cfg.Degree, "degree", cfg.Degree, "connections per node (random connected regular graph)")
	flag.IntVar(&cfg.Ratings, "ratings", cfg.Ratings, "ratings to measure, published one after another")
	flag.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "ratings published first and not counted")
	flag.DurationVar(&cfg.Latency, "latency", cfg.Latency, "one-way latency of every mocknet link")
	flag.DurationVar(&cfg.Settle, "settle", cfg.Settle, "wait once topic peers have met, for gossipsub meshes to form")
	flag.DurationVar(&cfg.Tail, "tail", cfg.Tail, "wait after a rating reached every node, before the next (its IHAVE gossip)")
	flag.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "give up on a rating (or on the network coming up) after this")
	flag.IntVar(&cfg.Comment, "comment", cfg.Comment, "bytes of comment in each rating")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (graph, peer IDs, publishers; gossipsub's own choices are not seeded)")
	verbose := flag.Bool("v", false, "print every rating's row and progress")
	debug := flag.Bool("debug", false, "log pullnet's debug output")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *verbose {
		cfg.Progress = os.Stderr
	}
	if *debug {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	load0 := loadavg()
	r, err := Run(context.Background(), cfg)
	if err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("```sh\n%s\n```\n\n", commandLine())
	Print(os.Stdout, r, *verbose)
	fmt.Printf("\nRun took %v; Go runtime memory %d MiB; %d CPUs; load average (1, 5, 15 min) %s before, %s after.\n",
		r.Elapsed.Round(time.Second), ms.Sys>>20, runtime.NumCPU(), load0, loadavg())
}

// loadavg is the machine's load (Linux), to tell a quiet run from one that
// shared its CPUs.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func commandLine() string {
	args := []string{"go run ./bench/ratingspread"}
	flag.Visit(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			args = append(args, "-"+f.Name+"="+f.Value.String())
			return
		}
		args = append(args, "-"+f.Name+" "+f.Value.String())
	})
	return strings.Join(args, " ")
}

// stat is the median and p90 (nearest rank) of xs; +Inf sorts last.
func stat(xs []float64) (med, p90 float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(q float64) float64 { return s[max(int(math.Ceil(q*float64(len(s)))), 1)-1] }
	return rank(0.5), rank(0.9)
}

// Print writes r as markdown.
func Print(w io.Writer, r *Report, rows bool) {
	c := r.Config
	n := float64(c.Nodes)
	others := c.Nodes - 1
	col := func(f func(Row) float64) []float64 {
		var xs []float64
		for _, row := range r.Rows {
			xs = append(xs, f(row))
		}
		return xs
	}
	rttMS := float64(r.RTT) / 1e6
	ms := func(v float64) string {
		if math.IsInf(v, 1) {
			return "not reached"
		}
		if rttMS < 0.5 { // no latency: a ratio to the RTT means nothing
			return fmt.Sprintf("%.0f ms", v)
		}
		return fmt.Sprintf("%.0f ms (%.1f RTT)", v, v/rttMS)
	}
	fmt.Fprintf(w, "%d nodes, random %d-regular connected graph, %v one-way link latency (RTT %.1f ms), %d ratings measured after %d warm-up, seed %d.\n\n",
		c.Nodes, c.Degree, c.Latency, rttMS, len(r.Rows), c.Warmup, c.Seed)
	fmt.Fprintf(w, "| per rating | median | p90 |\n|---|---|---|\n")
	for qi, q := range quantiles {
		med, p90 := stat(col(func(row Row) float64 {
			if row.Times[qi] < 0 {
				return math.Inf(1)
			}
			return float64(row.Times[qi]) / 1e6
		}))
		fmt.Fprintf(w, "| time until %g %% of the other %d nodes hold it | %s | %s |\n", q*100, others, ms(med), ms(p90))
	}
	{
		var h99, h100 []float64
		for _, row := range r.Rows {
			h99 = append(h99, float64(row.Hops[2]))
			h100 = append(h100, float64(row.Hops[3]))
		}
		m99, p99 := stat(h99)
		m100, p100 := stat(h100)
		fmt.Fprintf(w, "| graph hops from the publisher to 99 %% / 100 %% of the other nodes (× latency: the time if a hop cost only the link) | %g / %g (%v / %v) | %g / %g |\n",
			m99, m100, time.Duration(m99)*c.Latency, time.Duration(m100)*c.Latency, p99, p100)
	}
	bytesRow := func(what string, f func(Row) float64) {
		med, p90 := stat(col(f))
		fmt.Fprintf(w, "| %s | %s | %s |\n", what, bytesStr(med), bytesStr(p90))
	}
	bytesRow("bytes received per node (all gossipsub traffic in the rating's window)", func(row Row) float64 { return float64(row.Bytes) / n })
	bytesRow("… of which full copies of messages", func(row Row) float64 { return float64(row.MsgBytes) / n })
	bytesRow("… of which control (IHAVE, IWANT, IDONTWANT, GRAFT, PRUNE)", func(row Row) float64 { return float64(row.CtlBytes) / n })
	countRow := func(what string, f func(Row) float64) {
		med, p90 := stat(col(f))
		fmt.Fprintf(w, "| %s | %.2f | %.2f |\n", what, med, p90)
	}
	countRow("copies of the rating received per node", func(row Row) float64 { return float64(row.Copies) / n })
	countRow("duplicates received per node (copies after the first; gossipsub drops them)", func(row Row) float64 { return float64(row.Dups) / n })
	countRow("IHAVE entries naming it, received per node", func(row Row) float64 { return float64(row.IHave) / n })
	countRow("IWANT entries naming it, received per node", func(row Row) float64 { return float64(row.IWant) / n })
	countRow("IDONTWANT entries naming it, received per node", func(row Row) float64 { return float64(row.IDontWant) / n })
	countRow("duplicates reaching pullnet's validator per node (Stats.Duplicate)", func(row Row) float64 { return float64(row.ValidatorDups) / n })

	full := 0
	var window []float64
	for _, row := range r.Rows {
		if row.Reached == others {
			full++
		}
		window = append(window, row.Window.Seconds())
	}
	wmed, _ := stat(window)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- Ratings that reached all %d other nodes: %d of %d.\n", others, full, len(r.Rows))
	fmt.Fprintf(w, "- Rating: %d-byte signed envelope (%d-byte comment), %d-byte pubsub message.\n", r.EnvelopeSize, c.Comment, r.MsgSize)
	fmt.Fprintf(w, "- A rating's window: publish → every node holds it → %v tail; median %.2f s. Idle (no rating in flight): %s per node per second.\n",
		c.Tail, wmed, bytesStr(float64(r.IdleBytes)/n/max(r.IdleWindow.Seconds(), 1e-9)))
	fmt.Fprintf(w, "- Graph: degree %d–%d (mean %.1f); every node saw all neighbours on the topic %v after connecting; GRAFT %d, PRUNE %d over the run.\n",
		r.DegMin, r.DegMax, r.DegMean, r.Ready.Round(time.Millisecond), r.Grafts, r.Prunes)
	fmt.Fprintf(w, "- Whole run: %d bytes read from pubsub streams, %d written; %d ratings accepted by validators, %d rejected; %d undecodable frames.\n",
		r.BytesIn, r.BytesOut, r.Accepted, r.Rejected, r.BadFrames)
	if rows {
		fmt.Fprintf(w, "\n| # | publisher | reached | 50 %% | 90 %% | 99 %% | 100 %% | bytes/node | copies/node | dups/node | IHAVE/node | IWANT/node |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for i, row := range r.Rows {
			fmt.Fprintf(w, "| %d | %d | %d |", i+1, row.Publisher, row.Reached)
			for _, t := range row.Times {
				if t < 0 {
					fmt.Fprintf(w, " — |")
				} else {
					fmt.Fprintf(w, " %.0f ms |", float64(t)/1e6)
				}
			}
			fmt.Fprintf(w, " %.0f | %.2f | %.2f | %.2f | %.2f |\n", float64(row.Bytes)/n, float64(row.Copies)/n, float64(row.Dups)/n, float64(row.IHave)/n, float64(row.IWant)/n)
		}
	}
}

func bytesStr(b float64) string {
	if b >= 10*1024 {
		return fmt.Sprintf("%.1f KiB", b/1024)
	}
	return fmt.Sprintf("%.0f B", b)
}
