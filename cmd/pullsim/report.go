package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/pullnet/pullnet/internal/simnet"
)

func readReports(paths []string) ([]*simnet.Report, error) {
	var out []*simnet.Report
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			var r simnet.Report
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			out = append(out, &r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pair is one N's pullnet run and the baseline run it is compared with.
type pair struct {
	n        int
	fill     string
	pullnet  *simnet.Report
	baseline *simnet.Report
}

// pairs groups reports by fill and N (the last report of each kind wins).
func pairs(reps []*simnet.Report) []pair {
	idx := map[[2]string]*pair{}
	var keys [][2]string
	for _, r := range reps {
		k := [2]string{r.Fill, fmt.Sprint(r.N)}
		p, ok := idx[k]
		if !ok {
			p = &pair{n: r.N, fill: r.Fill}
			idx[k] = p
			keys = append(keys, k)
		}
		if r.Kind == "baseline" {
			p.baseline = r
		} else {
			p.pullnet = r
		}
	}
	out := make([]pair, 0, len(keys))
	for _, k := range keys {
		out = append(out, *idx[k])
	}
	slices.SortFunc(out, func(a, b pair) int {
		if c := cmp.Compare(a.fill, b.fill); c != 0 {
			return -c // global first
		}
		return cmp.Compare(a.n, b.n)
	})
	return out
}

// col is one table column: a header and how to read it off a report.
type col struct {
	head string
	get  func(*simnet.Report) float64
	fmt  string
	// lowerBetter marks figures where pullnet ÷ baseline < 1 is a win; a
	// ratio is printed for every numeric column.
	noRatio bool
}

func table(w io.Writer, title string, ps []pair, cols []col) {
	fmt.Fprintf(w, "\n%s\n\n| N | fill | system |", title)
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c.head)
	}
	fmt.Fprint(w, "\n|---:|---|---|")
	for range cols {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, p := range ps {
		row := func(name string, r *simnet.Report) {
			fmt.Fprintf(w, "| %d | %s | %s |", p.n, p.fill, name)
			for _, c := range cols {
				fmt.Fprintf(w, " "+c.fmt+" |", c.get(r))
			}
			fmt.Fprintln(w)
		}
		if p.pullnet != nil {
			row("pullnet", p.pullnet)
		}
		if p.baseline != nil {
			row("baseline", p.baseline)
		}
		if p.pullnet != nil && p.baseline != nil {
			fmt.Fprintf(w, "| %d | %s | **÷** |", p.n, p.fill)
			for _, c := range cols {
				a, b := c.get(p.pullnet), c.get(p.baseline)
				if c.noRatio || b == 0 {
					fmt.Fprint(w, " |")
					continue
				}
				fmt.Fprintf(w, " %.2f |", a/b)
			}
			fmt.Fprintln(w)
		}
	}
}

func printTables(w io.Writer, reps []*simnet.Report) {
	ps := pairs(reps)
	if len(ps) == 0 {
		return
	}
	table(w, "#### Finds (times as multiples of the run's mean link RTT)", ps, []col{
		{"first p50", func(r *simnet.Report) float64 { return r.Find.FirstRTT }, "%.2f", false},
		{"first p99", func(r *simnet.Report) float64 { return r.Find.First99R }, "%.2f", false},
		{"10th p50", func(r *simnet.Report) float64 { return r.Find.TenthRTT }, "%.2f", false},
		{"10th p99", func(r *simnet.Report) float64 { return r.Find.Tenth99R }, "%.2f", false},
		{"rare first p50", func(r *simnet.Report) float64 { return r.Find.RareP50 / r.RTTms }, "%.2f", false},
		{"1st provider record p50", func(r *simnet.Report) float64 { return r.Find.ProvRTT }, "%.2f", false},
		{"DHT RPCs/find", func(r *simnet.Report) float64 { return r.Find.RPCs }, "%.1f", false},
		{"asks/find", func(r *simnet.Report) float64 { return r.Find.Asks }, "%.1f", true},
		{"success", func(r *simnet.Report) float64 { return r.Find.Success }, "%.3f", false},
		{"finds", func(r *simnet.Report) float64 { return float64(r.Find.Finds) }, "%.0f", true},
	})
	table(w, "#### Finds in milliseconds", ps, []col{
		{"first p50", func(r *simnet.Report) float64 { return r.Find.FirstP50 }, "%.0f", false},
		{"first p99", func(r *simnet.Report) float64 { return r.Find.FirstP99 }, "%.0f", false},
		{"10th p50", func(r *simnet.Report) float64 { return r.Find.TenthP50 }, "%.0f", false},
		{"10th p99", func(r *simnet.Report) float64 { return r.Find.TenthP99 }, "%.0f", false},
		{"RTT", func(r *simnet.Report) float64 { return r.RTTms }, "%.0f", true},
	})
	table(w, "#### Advertise", ps, []col{
		{"terms/resource", func(r *simnet.Report) float64 { return r.Advertise.TermsPerResource }, "%.1f", true},
		{"DHT RPCs/advertise", func(r *simnet.Report) float64 { return r.Advertise.RPCs }, "%.0f", false},
		{"RPCs/term", func(r *simnet.Report) float64 { return r.Advertise.RPCsPerTerm }, "%.0f", false},
		{"KB/term", func(r *simnet.Report) float64 { return r.Advertise.BytesPerTerm / 1024 }, "%.1f", false},
		{"announced p50 (RTT)", func(r *simnet.Report) float64 { return r.Advertise.AnnouncedP50 / r.RTTms }, "%.1f", false},
		{"findable p50 (RTT)", func(r *simnet.Report) float64 { return r.Advertise.FindableRTT }, "%.1f", false},
		{"findable p99 (RTT)", func(r *simnet.Report) float64 { return r.Advertise.FindableP99 / r.RTTms }, "%.1f", false},
		{"findable ÷ find p50", func(r *simnet.Report) float64 { return r.Advertise.FindableFind }, "%.1f", false},
		{"probes found", func(r *simnet.Report) float64 { return float64(r.Advertise.ProbesFound) }, "%.0f", true},
	})
	table(w, "#### At rest, per node per minute", ps, []col{
		{"idle RPCs", func(r *simnet.Report) float64 { return r.Rest.RPCsPerMin }, "%.1f", false},
		{"idle topic lookups (local)", func(r *simnet.Report) float64 { return r.Rest.TopicRPCsPerMin }, "%.1f", true},
		{"idle bytes", func(r *simnet.Report) float64 { return r.Rest.BytesPerMin }, "%.0f", false},
		{"RPCs per RT refresh", func(r *simnet.Report) float64 { return r.Rest.RefreshRPCs }, "%.0f", false},
		{"upkeep RPCs", func(r *simnet.Report) float64 { return r.Rest.UpkeepRPCsPerMin }, "%.1f", false},
		{"upkeep KB", func(r *simnet.Report) float64 { return r.Rest.UpkeepBytesPerMin / 1024 }, "%.1f", false},
	})
	var churn []pair
	for _, p := range ps {
		if (p.pullnet != nil && len(p.pullnet.Churn) > 0) || (p.baseline != nil && len(p.baseline.Churn) > 0) {
			churn = append(churn, p)
		}
	}
	for _, level := range []int{0, 1} {
		var cp []pair
		for _, p := range churn {
			if (p.pullnet == nil || len(p.pullnet.Churn) > level) && (p.baseline == nil || len(p.baseline.Churn) > level) {
				cp = append(cp, p)
			}
		}
		if len(cp) == 0 {
			continue
		}
		frac := func(r *simnet.Report) float64 { return r.Churn[level].Fraction }
		first := cp[0].pullnet
		if first == nil {
			first = cp[0].baseline
		}
		table(w, fmt.Sprintf("#### Churn: %.0f%% of nodes replaced per period", 100*frac(first)), cp, []col{
			{"find success", func(r *simnet.Report) float64 { return r.Churn[level].Success }, "%.3f", false},
			{"stale results", func(r *simnet.Report) float64 { return r.Churn[level].StaleShare }, "%.3f", false},
			{"first p50 (RTT)", func(r *simnet.Report) float64 { return r.Churn[level].FirstP50 / r.RTTms }, "%.2f", false},
			{"new provider findable p50 (RTT)", func(r *simnet.Report) float64 { return r.Churn[level].NewFindRTT }, "%.1f", false},
			{"… p99 (RTT)", func(r *simnet.Report) float64 { return r.Churn[level].NewFindP99 / r.RTTms }, "%.1f", false},
			{"found", func(r *simnet.Report) float64 { return float64(r.Churn[level].NewFound) }, "%.0f", true},
			{"probed", func(r *simnet.Report) float64 { return float64(r.Churn[level].NewProbes) }, "%.0f", true},
		})
	}
	table(w, "#### Cost of the simulation", ps, []col{
		{"start s", func(r *simnet.Report) float64 { return r.StartSecs }, "%.1f", true},
		{"advertise s", func(r *simnet.Report) float64 { return r.Advertise.Secs }, "%.0f", true},
		{"heap KB/node", func(r *simnet.Report) float64 { return r.HeapPerNodeKB }, "%.0f", true},
		{"goroutines/node", func(r *simnet.Report) float64 { return float64(r.Goroutines) / float64(r.N) }, "%.0f", true},
		{"peak RSS MB", func(r *simnet.Report) float64 { return r.PeakRSSMB }, "%.0f", true},
		{"run s", func(r *simnet.Report) float64 { return r.TotalSecs }, "%.0f", true},
	})
	var hot []pair
	for _, p := range ps {
		if (p.pullnet != nil && p.pullnet.Hot != nil) || (p.baseline != nil && p.baseline.Hot != nil) {
			hot = append(hot, p)
		}
	}
	if len(hot) > 0 {
		table(w, "#### Hot term", hot, []col{
			{"providers", func(r *simnet.Report) float64 { return float64(r.Hot.Providers) }, "%.0f", true},
			{"holders", func(r *simnet.Report) float64 { return float64(r.Hot.Holders) }, "%.0f", true},
			{"busiest ÷ holder mean", func(r *simnet.Report) float64 { return r.Hot.BusiestMean }, "%.1f", false},
			{"busiest share of find traffic", func(r *simnet.Report) float64 { return r.Hot.BusiestShare }, "%.3f", false},
			{"hot ÷ rare first p50", func(r *simnet.Report) float64 { return r.Hot.HotOverRare }, "%.2f", false},
			{"hot first p50 (RTT)", func(r *simnet.Report) float64 { return r.Hot.HotP50 / r.RTTms }, "%.2f", false},
			{"distinct first picks", func(r *simnet.Report) float64 { return float64(r.Hot.DistinctPicks) }, "%.0f", false},
			{"top pick share", func(r *simnet.Report) float64 { return r.Hot.TopPickShare }, "%.3f", false},
			{"hot finds", func(r *simnet.Report) float64 { return float64(r.Hot.Finds) }, "%.0f", true},
			{"success", func(r *simnet.Report) float64 { return r.Hot.Success }, "%.3f", false},
		})
	}
}
