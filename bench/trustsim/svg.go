package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
)

// The plot is plain SVG written by hand: two panels of a few polylines need
// no plotting library, and the file diffs readably when it is regenerated.

var modelColors = map[byte]string{'A': "#1f77b4", 'B': "#d62728", 'C': "#2ca02c", 'D': "#9467bd"}

// panel is one chart area and its axes' ranges.
type panel struct {
	x, y, w, h float64 // pixel box of the plotting area
	xMin, xMax float64
	yMax       float64
}

func (p panel) px(v float64) float64 { return p.x + (v-p.xMin)/(p.xMax-p.xMin)*p.w }
func (p panel) py(v float64) float64 { return p.y + p.h - v/p.yMax*p.h }

func (rep report) writeSVG(w io.Writer, base config) error {
	bw := bufio.NewWriter(w)
	const width, height = 960, 470
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%d" y="22" font-size="15" text-anchor="middle">Honest consumers' interactions on malicious providers after warm-up (trustsim, seed %d, %d nodes)</text>`+"\n", width/2, base.Seed, base.Nodes)

	xMin, xMax := 0.0, 0.8
	zoomMax := 0.0
	for _, m := range rep.Models {
		for _, c := range rep.Cells[m] {
			zoomMax = max(zoomMax, c.Trust.Share())
		}
	}
	zoomMax = niceCeil(max(0.16, zoomMax*1.15))
	left := panel{x: 70, y: 60, w: 370, h: 330, xMin: xMin, xMax: xMax, yMax: 0.8}
	right := panel{x: 560, y: 60, w: 370, h: 330, xMin: xMin, xMax: xMax, yMax: zoomMax}

	rep.drawPanel(bw, left, "trust ranking (solid) vs random pick (dashed)", true)
	rep.drawPanel(bw, right, "trust ranking only, zoomed; ▬ = issue 6 target", false)

	// Legend under the panels.
	lx := 120.0
	for _, m := range rep.Models {
		fmt.Fprintf(bw, `<line x1="%.0f" y1="448" x2="%.0f" y2="448" stroke="%s" stroke-width="2.5"/>`, lx, lx+28, modelColors[m])
		fmt.Fprintf(bw, `<text x="%.0f" y="452">%s</text>`+"\n", lx+34, modelName(m))
		lx += 170
	}
	fmt.Fprintf(bw, "</svg>\n")
	return bw.Flush()
}

func (rep report) drawPanel(w io.Writer, p panel, title string, withRandom bool) {
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" text-anchor="middle" font-size="13">%s</text>`+"\n", p.x+p.w/2, p.y-12, title)
	// Grid and axes.
	step := p.yMax / 4
	for k := 0; k <= 4; k++ {
		v := float64(k) * step
		y := p.py(v)
		fmt.Fprintf(w, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`, p.x, y, p.x+p.w, y)
		fmt.Fprintf(w, `<text x="%.0f" y="%.1f" text-anchor="end">%s %%</text>`+"\n", p.x-6, y+4, trim(100*v))
	}
	for v := 0.0; v <= p.xMax+1e-9; v += 0.1 {
		x := p.px(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#eee"/>`, x, p.y, x, p.y+p.h)
		fmt.Fprintf(w, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x, p.y+p.h+16, trim(100*v))
	}
	fmt.Fprintf(w, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", p.x, p.y, p.w, p.h)
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" text-anchor="middle">malicious share of providers (%%)</text>`+"\n", p.x+p.w/2, p.y+p.h+34)
	fmt.Fprintf(w, `<text transform="translate(%.0f,%.0f) rotate(-90)" text-anchor="middle">interactions on malicious providers (%%)</text>`+"\n", p.x-48, p.y+p.h/2)

	if !withRandom {
		// Targets: a short thick bar at each ceiling, labelled above.
		for _, f := range rep.Fractions {
			done := map[float64]bool{}
			for _, m := range models {
				t := target(m.Key, f)
				if t < 0 || t > p.yMax || done[t] {
					continue
				}
				done[t] = true
				x, y := p.px(f), p.py(t)
				fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="3"/>`, x-14, y, x+14, y)
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">≤ %s %% (%s)</text>`+"\n", x, y-6, trim(100*t), targetModels(f, t))
			}
		}
	}
	for _, m := range rep.Models {
		color := modelColors[m]
		series := []struct {
			get  func(cell) float64
			dash string
			show bool
		}{
			{func(c cell) float64 { return c.Trust.Share() }, "", true},
			{func(c cell) float64 { return c.Random.Share() }, ` stroke-dasharray="5,4"`, withRandom},
		}
		for _, s := range series {
			if !s.show {
				continue
			}
			pts := ""
			for _, c := range rep.Cells[m] {
				pts += fmt.Sprintf("%.1f,%.1f ", p.px(c.Fraction), p.py(min(s.get(c), p.yMax)))
			}
			fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", pts, color, s.dash)
			for _, c := range rep.Cells[m] {
				fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, p.px(c.Fraction), p.py(min(s.get(c), p.yMax)), color)
			}
			fmt.Fprintln(w)
		}
	}
}

// targetModels names the models a target applies to, for its label.
func targetModels(f, t float64) string {
	s := ""
	for _, m := range models {
		if target(m.Key, f) == t {
			s += string(m.Key)
		}
	}
	return s
}

func niceCeil(v float64) float64 {
	for _, c := range []float64{0.02, 0.04, 0.08, 0.16, 0.2, 0.4, 0.8, 1} {
		if v <= c {
			return c
		}
	}
	return math.Ceil(v)
}

func trim(v float64) string {
	if math.Abs(v-math.Round(v)) < 1e-9 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
