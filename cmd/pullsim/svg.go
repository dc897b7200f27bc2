package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pullnet/pullnet/internal/simnet"
)

// The plots are plain SVG written by hand, as bench/trustsim's are: a few
// polylines on a log axis need no plotting library, and the files diff
// readably when they are regenerated.

const (
	colPullnet  = "#1f77b4"
	colBaseline = "#d62728"
)

type series struct {
	name   string
	color  string
	dashed bool
	pts    [][2]float64 // (x, y)
}

type chart struct {
	title, xLabel, yLabel string
	logY                  bool
	series                []series
}

// writePlots writes one SVG per figure against N into dir.
func writePlots(dir string, reps []*simnet.Report) error {
	ps := pairs(reps)
	var global []pair
	for _, p := range ps {
		if p.fill == "global" {
			global = append(global, p)
		}
	}
	line := func(name string, get func(*simnet.Report) float64, dashed bool) (series, series) {
		a := series{name: "pullnet " + name, color: colPullnet, dashed: dashed}
		b := series{name: "baseline " + name, color: colBaseline, dashed: dashed}
		for _, p := range global {
			if p.pullnet != nil {
				if v := get(p.pullnet); v > 0 {
					a.pts = append(a.pts, [2]float64{float64(p.n), v})
				}
			}
			if p.baseline != nil {
				if v := get(p.baseline); v > 0 {
					b.pts = append(b.pts, [2]float64{float64(p.n), v})
				}
			}
		}
		return a, b
	}
	var charts = map[string]chart{}
	{
		a, b := line("first p50", func(r *simnet.Report) float64 { return r.Find.FirstRTT }, false)
		c, d := line("first p99", func(r *simnet.Report) float64 { return r.Find.First99R }, true)
		e, f := line("10th p50", func(r *simnet.Report) float64 { return r.Find.TenthRTT }, false)
		e.color, f.color = "#7fb3d9", "#eb8a8a"
		charts["scaling-find-time.svg"] = chart{title: "Time to first and 10th result", xLabel: "nodes N", yLabel: "× mean link RTT", logY: true, series: []series{a, b, c, d, e, f}}
	}
	{
		a, b := line("DHT RPCs per find", func(r *simnet.Report) float64 { return r.Find.RPCs }, false)
		c, d := line("DHT RPCs per advertise", func(r *simnet.Report) float64 { return r.Advertise.RPCs }, true)
		charts["scaling-rpcs.svg"] = chart{title: "DHT requests per find and per advertise", xLabel: "nodes N", yLabel: "requests", logY: true, series: []series{a, b, c, d}}
	}
	{
		a, b := line("advertise→findable p50", func(r *simnet.Report) float64 { return r.Advertise.FindableRTT }, false)
		c, d := line("advertise→announced p50", func(r *simnet.Report) float64 { return r.Advertise.AnnouncedP50 / r.RTTms }, true)
		charts["scaling-advertise.svg"] = chart{title: "Advertise to findable", xLabel: "nodes N", yLabel: "× mean link RTT", logY: true, series: []series{a, b, c, d}}
	}
	{
		a, b := line("upkeep RPCs/min", func(r *simnet.Report) float64 { return r.Rest.UpkeepRPCsPerMin }, false)
		c, d := line("upkeep KB/min", func(r *simnet.Report) float64 { return r.Rest.UpkeepBytesPerMin / 1024 }, true)
		charts["scaling-rest.svg"] = chart{title: "Per-node cost at rest (idle traffic + RT refresh + reprovide)", xLabel: "nodes N", yLabel: "per node per minute", logY: true, series: []series{a, b, c, d}}
	}
	{
		a, b := line("heap KB per node", func(r *simnet.Report) float64 { return r.HeapPerNodeKB }, false)
		charts["scaling-memory.svg"] = chart{title: "Simulator memory per node (after setup)", xLabel: "nodes N", yLabel: "KB", logY: true, series: []series{a, b}}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(charts))
	for name := range charts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := writeFile(filepath.Join(dir, name), func(w io.Writer) error { return charts[name].write(w) }); err != nil {
			return err
		}
	}
	// The hot-term load histogram at the largest N that ran it.
	var hp *pair
	for i := range ps {
		p := &ps[i]
		if (p.pullnet != nil && p.pullnet.Hot != nil) || (p.baseline != nil && p.baseline.Hot != nil) {
			if hp == nil || p.n > hp.n {
				hp = p
			}
		}
	}
	if hp != nil {
		return writeFile(filepath.Join(dir, "scaling-hot-load.svg"), func(w io.Writer) error { return hotHistogram(w, *hp) })
	}
	return nil
}

func writeFile(path string, f func(io.Writer) error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	if err := f(bw); err != nil {
		out.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (c chart) write(w io.Writer) error {
	const width, height = 720, 440
	const left, top, pw, ph = 80.0, 50.0, 420.0, 320.0
	xMin, xMax, yMin, yMax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		for _, p := range s.pts {
			xMin, xMax = min(xMin, p[0]), max(xMax, p[0])
			yMin, yMax = min(yMin, p[1]), max(yMax, p[1])
		}
	}
	if math.IsInf(xMin, 1) {
		return nil
	}
	lxMin, lxMax := math.Floor(math.Log10(xMin)*2)/2, math.Ceil(math.Log10(xMax)*2)/2
	if lxMax-lxMin < 1 {
		lxMax = lxMin + 1
	}
	var yLo, yHi float64
	if c.logY {
		yLo, yHi = math.Floor(math.Log10(yMin)), math.Ceil(math.Log10(yMax))
		if yHi-yLo < 1 {
			yHi = yLo + 1
		}
	} else {
		yLo, yHi = 0, niceCeil(yMax*1.1)
	}
	px := func(x float64) float64 { return left + (math.Log10(x)-lxMin)/(lxMax-lxMin)*pw }
	py := func(y float64) float64 {
		if c.logY {
			return top + ph - (math.Log10(y)-yLo)/(yHi-yLo)*ph
		}
		return top + ph - (y-yLo)/(yHi-yLo)*ph
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%.0f" y="24" font-size="15" text-anchor="middle">%s</text>`+"\n", left+pw/2, esc(c.title))
	// Grid: x at 1, 2, 5 × powers of ten; y at powers of ten (log) or quarters.
	for e := math.Floor(lxMin); e <= lxMax; e++ {
		for _, m := range []float64{1, 2, 5} {
			x := m * math.Pow(10, e)
			if lx := math.Log10(x); lx < lxMin-1e-9 || lx > lxMax+1e-9 {
				continue
			}
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, px(x), top, px(x), top+ph)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(x), top+ph+16, fmtNum(x))
		}
	}
	if c.logY {
		for e := yLo; e <= yHi; e++ {
			for _, m := range []float64{1, 2, 5} {
				y := m * math.Pow(10, e)
				if ly := math.Log10(y); ly > yHi+1e-9 {
					continue
				}
				stroke := "#eee"
				if m == 1 {
					stroke = "#ccc"
				}
				fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, left, py(y), left+pw, py(y), stroke)
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, fmtNum(y))
			}
		}
	} else {
		for i := 0; i <= 4; i++ {
			y := yLo + (yHi-yLo)*float64(i)/4
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, py(y), left+pw, py(y))
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, fmtNum(y))
		}
	}
	fmt.Fprintf(w, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" text-anchor="middle">%s (log scale)</text>`+"\n", left+pw/2, top+ph+36, esc(c.xLabel))
	fmt.Fprintf(w, `<text x="18" y="%.0f" text-anchor="middle" transform="rotate(-90 18 %.0f)">%s</text>`+"\n", top+ph/2, top+ph/2, esc(c.yLabel))
	ly := top + 10
	for _, s := range c.series {
		if len(s.pts) == 0 {
			continue
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		var b strings.Builder
		for i, p := range s.pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", px(p[0]), py(p[1]))
		}
		fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", b.String(), s.color, dash)
		for _, p := range s.pts {
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s N=%g: %.3g</title></circle>`, px(p[0]), py(p[1]), s.color, esc(s.name), p[0], p[1])
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`, left+pw+20, ly, left+pw+48, ly, s.color, dash)
		fmt.Fprintf(w, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left+pw+54, ly+4, esc(s.name))
		ly += 20
	}
	fmt.Fprintln(w, "</svg>")
	return nil
}

// hotHistogram draws, for the hot term, the GET_PROVIDERS each serving
// node answered, busiest first, pullnet above the baseline.
func hotHistogram(w io.Writer, p pair) error {
	const width, height = 760, 520
	const left, pw, ph = 70.0, 640.0, 170.0
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%.0f" y="24" font-size="15" text-anchor="middle">Hot term: provider-record requests served per node, busiest first (N = %d)</text>`+"\n", left+pw/2, p.n)
	panel := func(r *simnet.Report, name, color string, top float64) {
		if r == nil || r.Hot == nil {
			return
		}
		h := r.Hot
		load := h.Load
		if len(load) == 0 {
			return
		}
		yMax := niceCeil(float64(slices.Max(load)) * 1.05)
		bw := pw / float64(len(load))
		fmt.Fprintf(w, `<text x="%.0f" y="%.0f" font-size="13">%s: %d providers, %d record holders, %d nodes served the term; busiest = %.1f × holder mean, %.1f%% of all find traffic</text>`+"\n",
			left, top-8, name, h.Providers, h.Holders, h.Served, h.BusiestMean, 100*h.BusiestShare)
		for i := 0; i <= 4; i++ {
			y := yMax * float64(i) / 4
			yy := top + ph - y/yMax*ph
			fmt.Fprintf(w, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`, left, yy, left+pw, yy)
			fmt.Fprintf(w, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yy+4, fmtNum(y))
		}
		for i, v := range load {
			bh := float64(v) / yMax * ph
			fmt.Fprintf(w, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>`, left+float64(i)*bw, top+ph-bh, max(bw-0.5, 0.3), bh, color)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	}
	panel(p.pullnet, "pullnet", colPullnet, 60)
	panel(p.baseline, "baseline (one key per term)", colBaseline, 300)
	fmt.Fprintf(w, `<text x="%.0f" y="%d" text-anchor="middle">nodes that served the hot term's provider records, busiest first</text>`+"\n", left+pw/2, height-14)
	fmt.Fprintf(w, `<text x="18" y="260" text-anchor="middle" transform="rotate(-90 18 260)">GET_PROVIDERS served</text>`+"\n")
	fmt.Fprintln(w, "</svg>")
	return nil
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}

func esc(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}
