package main

import (
	"fmt"
	"slices"
	"strings"
)

func report(o opts, results []*result) {
	var base *result
	for _, r := range results {
		if r.name == baseline && r.skipped == "" {
			base = r
		}
	}
	fmt.Printf("\n%d × %s pushed per path (throughput: median of %d; CPU: all pushes); %d × %d round trips of 1 byte (pooled)\n\n",
		o.reps, sizeStr(o.size), o.reps, o.reps, o.rtts)
	fmt.Println("| path | Gbit/s (min–max) | RTT p50 µs | RTT p99 µs | CPU-s/GiB path | CPU-s/GiB client+sink | CPU-s/GiB total |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.ttfb != nil {
			continue
		}
		if r.skipped != "" {
			fmt.Printf("| %s | skipped: %s | | | | | |\n", r.name, r.skipped)
			continue
		}
		g := slices.Sorted(slices.Values(r.gbps))
		fmt.Printf("| %s | %.2f (%.2f–%.2f) | %.1f | %.1f | %.2f | %.2f | %.2f |\n", r.name,
			medianF(r.gbps), g[0], g[len(g)-1], us(pct(r.rtt, 50)), us(pct(r.rtt, 99)),
			perGiB(r.cpuPath, r.bytes), perGiB(r.cpuEnds, r.bytes), perGiB(r.cpuPath+r.cpuEnds, r.bytes))
	}
	if base != nil {
		fmt.Printf("\nRatios to %s (throughput: higher is better; the rest: lower is better)\n\n", baseline)
		fmt.Println("| path | throughput × | RTT p50 × | RTT p99 × | CPU/GiB path × | CPU/GiB total × |")
		fmt.Println("|---|---|---|---|---|---|")
		for _, r := range results {
			if r.ttfb != nil || r.skipped != "" {
				continue
			}
			fmt.Printf("| %s | %.2f | %.2f | %.2f | %s | %.2f |\n", r.name,
				medianF(r.gbps)/medianF(base.gbps),
				float64(pct(r.rtt, 50))/float64(pct(base.rtt, 50)),
				float64(pct(r.rtt, 99))/float64(pct(base.rtt, 99)),
				ratio(r.cpuPath/float64(r.bytes), base.cpuPath/float64(base.bytes)),
				(r.cpuPath+r.cpuEnds)/float64(r.bytes)/((base.cpuPath+base.cpuEnds)/float64(base.bytes)))
		}
	}
	fmt.Println()
	for _, r := range results {
		if r.ttfb == nil && r.skipped == "" {
			fmt.Printf("- %s: %s\n", r.name, r.desc)
		}
	}

	var tt []*result
	for _, r := range results {
		if r.ttfb != nil {
			tt = append(tt, r)
		}
	}
	if len(tt) == 0 {
		return
	}
	fmt.Printf("\nTime to first byte, %s added each way by a relay in front of the provider (median of %d; in ms, and in RTTs of libp2p ping over the same link).\n"+
		"Fresh connection: the consumer restarted (same identity, session and forward), the application connects to the forward; warm: a new tunnel over the live connection;\n"+
		"cold: a new consumer process, from node.New returning (bootstrap dial, DHT lookup, find, connect request, forward, tunnel).\n\n",
		o.delay, o.tries)
	fmt.Println("| path | RTT ms | fresh connection: first byte | host.Connect alone | swarm DialPeer alone | warm connection: first byte | cold consumer: New→Connect | cold consumer: New→first byte | banner intact |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range tt {
		t := r.ttfb
		rtt := median(t.RTT)
		cell := func(v int64) string {
			return fmt.Sprintf("%.1f ms = %.2f RTT", float64(v)/1e6, float64(v)/float64(rtt))
		}
		banner := fmt.Sprintf("%d/%d", t.BannerOK, t.BannerTries)
		if t.BannerErr != "" {
			banner += " (" + t.BannerErr + ")"
		}
		fmt.Printf("| %s | %.1f | %s | %s | %s | %s | %s | %s | %s |\n", r.name, float64(rtt)/1e6,
			cell(median(t.Fresh)), cell(median(t.HostConnect)), cell(median(t.SwarmDial)), cell(median(t.Warm)),
			cell(t.ColdConnect), cell(t.ColdFirst), banner)
	}
	fmt.Println()
	for _, r := range tt {
		t := r.ttfb
		fmt.Printf("- %s: %s; node.New %.1f ms (local, before the clock of the cold figures); Connect calls %d\n",
			r.name, r.desc, float64(t.New)/1e6, t.ConnectTries)
		fmt.Printf("  fresh %s; host.Connect %s; DialPeer %s; warm %s (ms)\n", msList(t.Fresh), msList(t.HostConnect), msList(t.SwarmDial), msList(t.Warm))
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func perGiB(cpu float64, bytes int64) float64 {
	if bytes == 0 {
		return 0
	}
	return cpu / (float64(bytes) / (1 << 30))
}

func medianF(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// pct is the p-th percentile (nearest rank) of ns samples.
func pct(xs []int64, p int) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func us(v int64) float64 { return float64(v) / 1e3 }

func msList(xs []int64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.1f", float64(x)/1e6)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func sizeStr(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}
