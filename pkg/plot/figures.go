package plot

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// Axis labels (with units) shared by the figures.
const (
	ttfbLabel  = "time to first byte (ms)"
	scaleLabel = "N = instances cold-started at once"
)

// fmtMS renders a latency in ms with a precision that suits its size.
func fmtMS(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// subtitle says where the numbers come from.
func (d *data) subtitle(n int, extra string) string {
	parts := []string{}
	if len(d.platforms) == 1 && d.platforms[0] != "" {
		parts = append(parts, "platform "+d.platforms[0])
	}
	if n > 0 {
		parts = append(parts, fmt.Sprintf("N = %d (instances cold-started at once)", n))
	}
	parts = append(parts, "warm-ups excluded")
	if extra != "" {
		parts = append(parts, extra)
	}
	return strings.Join(parts, " · ")
}

// figure starts a figure; n is its N (0 for a figure across N).
func (d *data) figure(n int, name, title string) *Figure {
	return &Figure{Name: name, Title: title, Scale: n, plot: newPlot(), width: DefaultWidth, height: DefaultHeight}
}

// categoryTicks labels x = 0, 1, … with names.
func categoryTicks(p *gplot.Plot, names []string) {
	ticks := make([]gplot.Tick, len(names))
	for i, n := range names {
		ticks[i] = gplot.Tick{Value: float64(i), Label: n}
	}
	p.X.Tick.Marker = gplot.ConstantTicks(ticks)
	p.X.Tick.Length = 0
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
}

// yGrid adds light horizontal grid lines behind the data.
func yGrid(p *gplot.Plot) {
	g := plotter.NewGrid()
	g.Vertical.Color = nil
	g.Horizontal.Color = gridColor
	g.Horizontal.Width = 0.6
	p.Add(g)
}

func solid(c color.Color, w vg.Length) draw.LineStyle { return draw.LineStyle{Color: c, Width: w} }

// cellTick is the x tick label of a runtime: its name and sample size.
func cellTick(c *cell) string {
	s := fmt.Sprintf("%s\nn = %d", c.series.label, c.row.TTFB.N)
	if c.row.Failures > 0 {
		s += fmt.Sprintf("\n%d failed", c.row.Failures)
	}
	return s
}

func namesOf(cells []*cell, pred func(*cell) bool) []string {
	var out []string
	for _, c := range cells {
		if pred(c) {
			out = append(out, c.series.label)
		}
	}
	return out
}

// latencyFigure: per runtime at one N, the mean with min–max whiskers and
// the median with its distribution-free 95% CI (the study's figure 4, with
// the uncertainty it lacked).
func (d *data) latencyFigure(n int) *Figure {
	cells := d.cellsAt(n)
	f := d.figure(n, fmt.Sprintf("latency-n%d", n), fmt.Sprintf("Cold-start latency per runtime at N = %d", n))
	f.Subtitle = d.subtitle(n, "successful attempts only")
	p := f.plot
	yGrid(p)
	p.Y.Label.Text = ttfbLabel
	var ticks []string
	m := &marks{}
	lbl := textStyle(9, false, textColor)
	lbl.YAlign = draw.YCenter
	f.legend = &legendBox{}
	// Value labels beside each box only where they cannot run into the
	// neighbour's: the category spacing (points) must hold both labels.
	spacing := f.plotWidth() / (float64(len(cells)) + 0.2)
	labels := true
	for _, c := range cells {
		s := c.row.TTFB
		if s.N == 0 {
			continue
		}
		need := float64(lbl.Width("mean "+fmtMS(nsToMS(s.Mean)))+lbl.Width("median "+fmtMS(nsToMS(s.P50)))) + 0.42*spacing + 12
		if need > spacing {
			labels = false
		}
	}
	ymax := 0.0
	for i, c := range cells {
		ticks = append(ticks, cellTick(c))
		s := c.row.TTFB
		if s.N == 0 {
			m.text(float64(i), 0, 0, 10, "no successful attempt", centered(9, warningColor))
			continue
		}
		x := float64(i)
		col := seriesColor(c.series)
		w := solid(col, 1.2)
		m.line(w, []float64{x, x}, []float64{nsToMS(s.Min), nsToMS(s.Max)})
		m.line(w, []float64{x - 0.07, x + 0.07}, []float64{nsToMS(s.Min), nsToMS(s.Min)})
		m.line(w, []float64{x - 0.07, x + 0.07}, []float64{nsToMS(s.Max), nsToMS(s.Max)})
		if s.CIOK {
			m.rect(x-0.17, x+0.17, nsToMS(s.MedianCILo), nsToMS(s.MedianCIHi), lighten(col, 0.7), solid(col, 1))
		}
		m.line(solid(col, 2.6), []float64{x - 0.17, x + 0.17}, []float64{nsToMS(s.P50), nsToMS(s.P50)})
		m.dot(x, nsToMS(s.Mean), draw.GlyphStyle{Color: textColor, Radius: 3.6, Shape: draw.CircleGlyph{}})
		if labels {
			m.text(x+0.21, nsToMS(s.Mean), 0, 0, "mean "+fmtMS(nsToMS(s.Mean)), lbl)
			m.text(x-0.21, nsToMS(s.P50), 0, 0, "median "+fmtMS(nsToMS(s.P50)), rightAligned(lbl))
		}
		ymax = math.Max(ymax, nsToMS(s.Max))
	}
	p.Add(m)
	categoryTicks(p, ticks)
	p.Y.Min, p.Y.Max = 0, ymax*1.05
	if noCI := namesOf(cells, func(c *cell) bool { return c.row.TTFB.N > 0 && !c.row.TTFB.CIOK }); len(noCI) > 0 {
		f.Notes = append(f.Notes, fmt.Sprintf("No median CI for %s: it needs at least %d successful attempts.",
			strings.Join(noCI, ", "), stats.MinNForMedianCI(stats.CIConfidence)))
	}
	if whole := namesOf(cells, func(c *cell) bool {
		s := c.row.TTFB
		return s.CIOK && s.MedianCILo == s.Min && s.MedianCIHi == s.Max
	}); len(whole) > 0 {
		f.Notes = append(f.Notes, fmt.Sprintf("For %s the median's CI is the whole range min – max: too few samples for a narrower one.",
			strings.Join(whole, ", ")))
	}
	if !labels {
		f.Notes = append(f.Notes, "Too many runtimes to label every box: the statistics table has the values.")
	}
	neutral := subtleColor
	f.legend.add("mean", thumbDot{draw.GlyphStyle{Color: textColor, Radius: 3.6, Shape: draw.CircleGlyph{}}})
	f.legend.add("median", thumbHLine{solid(neutral, 2.6), true})
	f.legend.add(fmt.Sprintf("%g%% CI of the median", 100*stats.CIConfidence), thumbRect{lighten(neutral, 0.7), solid(neutral, 1)})
	f.legend.add("min – max", thumbWhisker{solid(neutral, 1.2)})
	return f
}

func centered(size vg.Length, c color.Color) (s text.Style) {
	s = textStyle(size, false, c)
	s.XAlign = draw.XCenter
	s.YAlign = draw.YBottom
	return s
}

func rightAligned(s text.Style) text.Style {
	s.XAlign = draw.XRight
	return s
}

// p99Figure: per runtime at one N, the 99th percentile (the study's figure
// 5), with a warning on the figure when the sample cannot support it.
func (d *data) p99Figure(n int) *Figure {
	cells := d.cellsAt(n)
	f := d.figure(n, fmt.Sprintf("p99-n%d", n), fmt.Sprintf("99th percentile of cold-start latency per runtime at N = %d", n))
	f.Subtitle = d.subtitle(n, "successful attempts only · quantile type 7")
	p := f.plot
	yGrid(p)
	p.Y.Label.Text = "p99 " + ttfbLabel
	var ticks []string
	m := &marks{}
	ymax := 0.0
	for i, c := range cells {
		ticks = append(ticks, cellTick(c))
		s := c.row.TTFB
		x := float64(i)
		if s.N == 0 {
			m.text(x, 0, 0, 10, "no successful attempt", centered(9, warningColor))
			continue
		}
		col := seriesColor(c.series)
		v := nsToMS(s.P99)
		label := fmtMS(v) + " ms"
		if s.P99Reliable {
			m.rect(x-0.3, x+0.3, 0, v, col, draw.LineStyle{})
		} else {
			dashed := solid(col, 1.5)
			dashed.Dashes = []vg.Length{4, 3}
			m.rect(x-0.3, x+0.3, 0, v, lighten(col, 0.72), dashed)
			label += " (≈ max)"
		}
		m.text(x, v, 0, 3, label, centered(10, textColor))
		ymax = math.Max(ymax, v)
	}
	p.Add(m)
	categoryTicks(p, ticks)
	p.Y.Min, p.Y.Max = 0, ymax*1.12
	if small := namesOf(cells, func(c *cell) bool { return c.row.TTFB.N > 0 && !c.row.TTFB.P99Reliable }); len(small) > 0 {
		f.Warnings = append(f.Warnings, fmt.Sprintf("fewer than %d successful attempts (%s): p99 is interpolated between\n"+
			"the two largest samples, so read it as ≈ the maximum (pale, dashed bars).", stats.P99MinN, strings.Join(small, ", ")))
	}
	return f
}

// scaleFigure: mean latency against N, one line per runtime, with the 95%
// confidence band of the mean (the study's concurrency figure).
func (d *data) scaleFigure() *Figure {
	f := d.figure(0, "latency-vs-n", "Mean cold-start latency vs number of concurrent instances")
	f.Subtitle = d.subtitle(0, "successful attempts only")
	f.Notes = []string{"Band: 95% confidence interval of the mean (Student t) at each N."}
	p := f.plot
	yGrid(p)
	p.Y.Label.Text = "mean " + ttfbLabel
	p.X.Label.Text = scaleLabel
	m := &marks{}
	f.legend = &legendBox{title: "runtime"}
	ymax := 0.0
	for _, s := range d.series {
		col := seriesColor(s)
		var xs, ys, bandX, bandLo, bandHi []float64
		for _, n := range d.scales {
			c := d.cells[cellKey{s.platform, s.runtime, n}]
			if c == nil || c.row.TTFB.N == 0 {
				continue
			}
			t := c.row.TTFB
			xs = append(xs, float64(n))
			ys = append(ys, nsToMS(t.Mean))
			ymax = math.Max(ymax, nsToMS(t.Mean))
			if lo, hi, ok := meanCI(t.N, t.Mean, t.Stdev, 0.95); ok {
				bandX = append(bandX, float64(n))
				bandLo = append(bandLo, nsToMS(lo))
				bandHi = append(bandHi, nsToMS(hi))
				ymax = math.Max(ymax, nsToMS(hi))
			}
		}
		band := color.NRGBA{R: lighten(col, 0).R, G: lighten(col, 0).G, B: lighten(col, 0).B, A: 0x38}
		if len(bandX) > 1 {
			px := append([]float64{}, bandX...)
			py := append([]float64{}, bandHi...)
			for i := len(bandX) - 1; i >= 0; i-- {
				px = append(px, bandX[i])
				py = append(py, bandLo[i])
			}
			m.poly(band, px, py)
		} else if len(bandX) == 1 { // one N: an error bar instead of a band
			m.line(solid(col, 1), []float64{bandX[0], bandX[0]}, []float64{bandLo[0], bandHi[0]})
		}
		if len(xs) > 0 {
			m.line(solid(col, 2), xs, ys)
		}
		glyph := draw.GlyphStyle{Color: col, Radius: 3.2, Shape: draw.CircleGlyph{}}
		for i := range xs {
			m.dot(xs[i], ys[i], glyph)
		}
		f.legend.add(s.label, thumbRect{band, draw.LineStyle{}}, thumbHLine{solid(col, 2), false}, thumbDot{glyph})
	}
	p.Add(m)
	p.Y.Min, p.Y.Max = 0, ymax*1.05
	scaleTicks(p, d.scales, f.plotWidth())
	return f
}

// scaleTicks puts a tick at every N measured when there are few of them,
// leaving out the label of an N too close to the previous labelled one
// (1 and 5 on an axis up to 500) so that labels never overlap.
func scaleTicks(p *gplot.Plot, scales []int, plotWidth float64) {
	if len(scales) > 12 {
		return
	}
	lo, hi := float64(scales[0]), float64(scales[len(scales)-1])
	pad := math.Max((hi-lo)*0.05, 0.5)
	p.X.Min, p.X.Max = lo-pad, hi+pad
	ptsPerUnit := plotWidth / (p.X.Max - p.X.Min)
	ticks := make([]gplot.Tick, len(scales))
	lastEnd := math.Inf(-1) // right edge (points) of the last label
	for i, n := range scales {
		label := strconv.Itoa(n)
		w := float64(p.X.Tick.Label.Width(label))
		center := (float64(n) - p.X.Min) * ptsPerUnit
		ticks[i] = gplot.Tick{Value: float64(n)}
		if center-w/2 >= lastEnd+6 {
			ticks[i].Label = label
			lastEnd = center + w/2
		}
	}
	p.X.Tick.Marker = gplot.ConstantTicks(ticks)
}

// respondedFigure: per N, the target and how many instances answered, per
// runtime (the study's figures 6 and 7).
func (d *data) respondedFigure() *Figure {
	f := d.figure(0, "responded", "Instances that responded vs target N")
	f.Subtitle = d.subtitle(0, "")
	f.Notes = []string{
		"Gray: the target N. Colored: instances that answered per iteration (mean), whiskers fewest – most;",
		"label: successful / measured attempts over all iterations.",
	}
	p := f.plot
	yGrid(p)
	p.Y.Label.Text = "instances per iteration (count)"
	p.Y.Tick.Marker = cleanTicks{integer: true}
	p.X.Label.Text = scaleLabel
	k := len(d.series) + 1
	group := 0.8
	bw := group / float64(k)
	// Labels go on the bars only if every one fits over its bar.
	lblSty := centered(8, textColor)
	f.legend = &legendBox{}
	f.legend.add("target N", thumbRect{targetColor, draw.LineStyle{}})
	for _, s := range d.series {
		f.legend.add(s.label, thumbRect{seriesColor(s), draw.LineStyle{}})
	}
	barPts := f.plotWidth() / (float64(len(d.scales)) + 0.2) * bw * 0.92
	labels := true
	for _, n := range d.scales {
		for _, s := range d.series {
			if c := d.cells[cellKey{s.platform, s.runtime, n}]; c != nil &&
				float64(lblSty.Width(fmt.Sprintf("%d/%d", c.row.Successes, c.row.Attempts))) > barPts+2 {
				labels = false
			}
		}
	}
	m := &marks{}
	var ticks []string
	ymax := 0.0
	for j, n := range d.scales {
		ticks = append(ticks, fmt.Sprintf("N = %d", n))
		x0 := float64(j) - group/2
		m.rect(x0+0.04*bw, x0+0.96*bw, 0, float64(n), targetColor, draw.LineStyle{})
		ymax = math.Max(ymax, float64(n))
		for si, s := range d.series {
			c := d.cells[cellKey{s.platform, s.runtime, n}]
			if c == nil || len(c.responded) == 0 {
				continue
			}
			col := seriesColor(s)
			lo, hi, sum := c.responded[0], c.responded[0], 0
			for _, r := range c.responded {
				lo, hi, sum = min(lo, r), max(hi, r), sum+r
			}
			mean := float64(sum) / float64(len(c.responded))
			bx0 := x0 + float64(si+1)*bw
			cx := bx0 + bw/2
			m.rect(bx0+0.04*bw, bx0+0.96*bw, 0, mean, col, draw.LineStyle{})
			if hi > lo {
				w := solid(textColor, 1)
				m.line(w, []float64{cx, cx}, []float64{float64(lo), float64(hi)})
				m.line(w, []float64{cx - bw*0.15, cx + bw*0.15}, []float64{float64(lo), float64(lo)})
				m.line(w, []float64{cx - bw*0.15, cx + bw*0.15}, []float64{float64(hi), float64(hi)})
			}
			lbl := fmt.Sprintf("%d/%d", c.row.Successes, c.row.Attempts)
			if labels {
				m.text(cx, math.Max(mean, float64(hi)), 0, 4, lbl, lblSty)
			}
			ymax = math.Max(ymax, float64(hi))
		}
	}
	p.Add(m)
	categoryTicks(p, ticks)
	p.Y.Min, p.Y.Max = 0, ymax*1.1
	if !labels {
		f.Notes[1] = "Bars too narrow for labels: the statistics table has successful / measured attempts."
	}
	return f
}

// cdfFigure: the empirical distribution of latency per runtime at one N.
// Failed attempts count in the denominator and never arrive, so a curve
// that stops below 1 shows the failure rate.
func (d *data) cdfFigure(n int) *Figure {
	cells := d.cellsAt(n)
	f := d.figure(n, fmt.Sprintf("cdf-n%d", n), fmt.Sprintf("Distribution of cold-start latency at N = %d", n))
	f.Subtitle = d.subtitle(n, "")
	f.Notes = []string{"Share of all measured attempts answered within x; failed attempts never arrive, so a curve ends below 1."}
	p := f.plot
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridColor, gridColor
	g.Vertical.Width, g.Horizontal.Width = 0.6, 0.6
	p.Add(g)
	p.X.Label.Text = ttfbLabel
	p.Y.Label.Text = "share of attempts answered (cumulative)"
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range cells {
		if len(c.okMS) > 0 {
			lo, hi = math.Min(lo, c.okMS[0]), math.Max(hi, c.okMS[len(c.okMS)-1])
		}
	}
	m := &marks{}
	f.legend = &legendBox{title: "runtime"}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	pad := (hi - lo) * 0.04
	if pad == 0 {
		pad = math.Max(hi*0.04, 1)
	}
	xmin, xmax := math.Max(0, lo-pad), hi+pad
	for _, c := range cells {
		col := seriesColor(c.series)
		st := solid(col, 2)
		if c.row.Attempts == 0 {
			continue
		}
		xs, ys := []float64{xmin}, []float64{0}
		total := float64(c.row.Attempts)
		for i, v := range c.okMS {
			xs = append(xs, v, v)
			ys = append(ys, float64(i)/total, float64(i+1)/total)
		}
		xs = append(xs, xmax)
		ys = append(ys, ys[len(ys)-1])
		m.line(st, xs, ys)
		f.legend.add(fmt.Sprintf("%s: %d of %d answered", c.series.label, c.row.Successes, c.row.Attempts), thumbHLine{st, false})
	}
	p.Add(m)
	p.X.Min, p.X.Max = xmin, xmax
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = gplot.ConstantTicks{{Value: 0, Label: "0"}, {Value: 0.25, Label: "0.25"}, {Value: 0.5, Label: "0.5"},
		{Value: 0.75, Label: "0.75"}, {Value: 0.9, Label: "0.9"}, {Value: 1, Label: "1"}}
	return f
}

// Phase colours: twelve hues no two of which look alike (CIE76 ΔE ≥ 30),
// so that a figure with all of Knative's phases has no repeat: Tableau 10
// without its grey, then plum, navy and lime. They are not the runtime
// colours, because a phase is not a runtime. With more phases than colours,
// the colours come round again, darker.
var phasePalette = []color.Color{
	rgb(0x4E, 0x79, 0xA7), rgb(0xF2, 0x8E, 0x2B), rgb(0xE1, 0x57, 0x59), rgb(0x76, 0xB7, 0xB2), rgb(0x59, 0xA1, 0x4F),
	rgb(0xED, 0xC9, 0x48), rgb(0xB0, 0x7A, 0xA1), rgb(0xFF, 0x9D, 0xA7), rgb(0x9C, 0x75, 0x5F), rgb(0x88, 0x22, 0x88),
	rgb(0x1F, 0x2F, 0x5C), rgb(0xA3, 0xC9, 0x3A),
}

// phaseColor gives a phase group the same colour in every figure: by the
// order in which phase names first appear in the records, not by stack
// position (which may differ between N).
func (d *data) phaseColor(g phaseGroup) color.Color {
	i := max(g.first, 0)
	c := phasePalette[i%len(phasePalette)]
	if round := i / len(phasePalette); round > 0 {
		return darken(c, math.Min(0.3*float64(round), 0.6))
	}
	return c
}

// phasesFigure: per runtime at one N, a stacked bar of the median offsets of
// the phases recorded, in time order, with the median first byte marked.
// nil when no attempt has phases.
func (d *data) phasesFigure(n int) *Figure {
	cells := d.cellsAt(n)
	order := d.phaseOrder(cells)
	if len(order) == 0 {
		return nil
	}
	groups := d.phaseGroups(cells, order)
	f := d.figure(n, fmt.Sprintf("phases-n%d", n), fmt.Sprintf("Where the cold-start time goes at N = %d", n))
	f.Subtitle = d.subtitle(n, "successful attempts only")
	f.Notes = phaseReadingNotes(d.views[n], cells, order, groups)
	b := newPhaseBars(d, cells, groups)
	f.legend = b.legend()
	p := f.plot
	yGrid(p)
	p.Y.Label.Text = "time since the start of the cold start (ms)"
	f.Notes = append(f.Notes, b.stackNotes()...)
	f.Notes = append(f.Notes, inversionNotes(cells)...)
	var ticks []string
	for _, c := range cells {
		ticks = append(ticks, cellTick(c))
	}
	b.spacing = f.plotWidth() / (float64(len(cells)) + 0.2)
	p.Add(b.fit(f))
	categoryTicks(p, ticks)
	p.Y.Min, p.Y.Max = 0, b.ymax*1.1
	return f
}

// phaseReadingNotes say how to read a phases figure: which view it shows
// (stats.PhaseView), what a segment is and which clocks the phases come
// from.
func phaseReadingNotes(v stats.PhaseView, cells []*cell, order []string, groups []phaseGroup) []string {
	how := "Each segment ends at the median offset of its phase from the start of the cold start"
	if slices.ContainsFunc(groups, func(g phaseGroup) bool { return len(g.names) > 1 }) {
		how += "; phases with equal medians share one (= in the legend)"
	}
	viewNote := v.Sentence()
	notes := []string{strings.ToUpper(viewNote[:1]) + viewNote[1:], how + "."}
	var clocks []string
	if slices.Contains(order, results.PhaseFunctionStart) {
		clocks = append(clocks, "function_start is read from the function's own (wall) clock")
	}
	if slices.ContainsFunc(order, func(name string) bool { return strings.HasPrefix(name, results.RuntimePhasePrefix) }) {
		// Who stamps each event differs: a started phase is not when the
		// runtime's start returned, and can follow the CRI call's reply.
		clocks = append(clocks, "rt_ phases are the wall-clock stamps of containerd's events: "+
			"containerd stamps /containers/create (rt_*_created), the runtime's shim stamps /tasks/start (rt_*_started) "+
			"when it forwards the event, which can be after the CRI call returned")
	}
	if slices.ContainsFunc(cells, func(c *cell) bool { return c.series.platform == "knative" }) &&
		slices.ContainsFunc(order, func(name string) bool { return strings.HasPrefix(name, "pod_") || strings.HasSuffix(name, "_ready") }) {
		clocks = append(clocks, "pod phases are when the API server reported them (kubelet status updates lag)")
	}
	if len(clocks) > 0 {
		notes = append(notes, strings.Join(clocks, "; ")+".")
	}
	return notes
}

// inversionNotes say where a bar's medians are not in the order the phases
// happen (stats.Inversions): the bars stack by median all the same, so no
// segment is negative, and the note says why that order can differ.
func inversionNotes(cells []*cell) []string {
	var parts []string
	clock, knative := false, false
	for _, c := range cells {
		knative = knative || c.series.platform == "knative"
		var inv []string
		for _, x := range stats.Inversions(stats.Medians(c.shown)) {
			inv = append(inv, fmt.Sprintf("%s %s before %s %s", x.After, fmtMS(x.AfterMedian), x.Before, fmtMS(x.BeforeMedian)))
			clock = clock || (c.series.platform == "knative" && (strings.HasPrefix(x.After, results.RuntimePhasePrefix) || strings.HasPrefix(x.Before, results.RuntimePhasePrefix)))
		}
		if len(inv) > 0 {
			parts = append(parts, c.series.label+": "+strings.Join(inv, ", "))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	why := "a phase's stamp can come after the moment it marks: the shim stamps /tasks/start (rt_*_started) when it " +
		"forwards the event, after the process may already run"
	if knative {
		why += ", and the API server reports the pod's phases late"
	}
	if clock {
		why += "; on Knative the rt_ phases are on the node's clock, set against coldbench's within runtime_clock's error"
	}
	return []string{"Stacked by median, which is not the order the phases happen in (ms): " + strings.Join(parts, "; ") + ". " +
		strings.ToUpper(why[:1]) + why[1:] + "."}
}

// phaseBarHalf is half a phase bar's width (categories are 1 apart).
const phaseBarHalf = 0.28

// phaseBars are the stacked bars of a phases figure, one per cell.
type phaseBars struct {
	d       *data
	cells   []*cell
	groups  []phaseGroup
	fb      int           // the group holding the first byte, or -1
	steps   [][]phaseStep // per cell, its segments in its time order
	tops    []float64     // per cell, the top of its bar (ms)
	ymax    float64       // the highest top (ms), 1 if none is above 0
	spacing float64       // points per category

	marker                   draw.LineStyle // the median first byte
	topSty, sideSty, segment text.Style     // labels above, beside and inside a bar
}

func newPhaseBars(d *data, cells []*cell, groups []phaseGroup) *phaseBars {
	b := &phaseBars{d: d, cells: cells, groups: groups,
		fb:    slices.IndexFunc(groups, func(g phaseGroup) bool { return g.has(results.PhaseFirstByte) }),
		steps: make([][]phaseStep, len(cells)), tops: make([]float64, len(cells)),
		marker: solid(textColor, 1.8), topSty: centered(10, textColor),
		sideSty: textStyle(9, false, textColor), segment: textStyle(9, false, textColor)}
	b.sideSty.XAlign, b.sideSty.YAlign = draw.XRight, draw.YCenter
	b.segment.XAlign, b.segment.YAlign = draw.XCenter, draw.YCenter
	for i, c := range cells {
		b.steps[i] = c.phaseSteps(groups)
		for _, st := range b.steps[i] {
			b.tops[i] = math.Max(b.tops[i], st.to)
		}
		b.ymax = math.Max(b.ymax, b.tops[i])
	}
	if b.ymax <= 0 {
		b.ymax = 1
	}
	return b
}

// legend names the segments, top of the stack first (as drawn), and the
// first byte's line.
func (b *phaseBars) legend() *legendBox {
	l := &legendBox{title: "segment ends at"}
	for k := len(b.groups) - 1; k >= 0; k-- {
		l.add(b.groups[k].label(), thumbRect{b.d.phaseColor(b.groups[k]), draw.LineStyle{}})
	}
	if b.fb >= 0 {
		l.add("median first byte", thumbHLine{b.marker, false})
	}
	return l
}

// stackNotes name the phases without a segment of their own and say when
// the bars stack the phases in different orders.
func (b *phaseBars) stackNotes() []string {
	var notes []string
	// Phases a runtime reached at the same median as the segment below
	// (or before the start): they have no segment there.
	var empty []string
	for i, c := range b.cells {
		var parts []string
		for _, st := range b.steps[i] {
			if st.empty {
				parts = append(parts, b.groups[st.group].names[0]+" "+fmtMS(st.median))
			}
		}
		if len(parts) > 0 {
			empty = append(empty, c.series.label+": "+strings.Join(parts, ", "))
		}
	}
	if len(empty) > 0 {
		notes = append(notes, "No segment of their own (median not after the segment below; ms): "+strings.Join(empty, "; ")+".")
	}
	// Each bar follows its own time line; say so when they differ.
	for i := 1; i < len(b.cells); i++ {
		if !slices.Equal(drawnGroups(b.steps[0]), drawnGroups(b.steps[i])) {
			notes = append(notes, "The runtimes reach the phases in different orders: each bar stacks them in its own time order.")
			break
		}
	}
	return notes
}

// drawnGroups is the sequence of groups a bar shows a segment of.
func drawnGroups(ss []phaseStep) []int {
	var out []int
	for _, st := range ss {
		if !st.empty {
			out = append(out, st.group)
		}
	}
	return out
}

// fit draws the bars and adds to f's notes what could not be labelled.
// The notes take height from the data area, which decides which labels
// fit: draw again while they do.
func (b *phaseBars) fit(f *Figure) *marks {
	base := f.Notes
	height := f.dataHeight()
	var m *marks
	for range 4 {
		var notes []string
		m, notes = b.draw(height / (b.ymax * 1.1))
		f.Notes = append(slices.Clone(base), notes...)
		h := f.dataHeight()
		if h >= height {
			break
		}
		height = h
	}
	return m
}

// draw draws the bars and their labels for a data area of ptsPerMS points
// per ms, and returns the notes for what could not be labelled.
func (b *phaseBars) draw(ptsPerMS float64) (*marks, []string) {
	m := &marks{}
	var notes, fbUnlabelled []string
	for i, c := range b.cells {
		b.drawSegments(m, i, ptsPerMS)
		if !b.drawTop(m, i, ptsPerMS) {
			fbUnlabelled = append(fbUnlabelled, c.series.label+" "+fmtMS(b.firstByte(i)))
		}
	}
	if len(fbUnlabelled) > 0 {
		notes = append(notes, "Median first byte (black line, ms): "+strings.Join(fbUnlabelled, ", ")+".")
	}
	if thin := b.thinSegments(ptsPerMS); len(thin) > 0 {
		notes = append(notes, "Too thin to see (ms): "+strings.Join(thin, "; ")+".")
	}
	return m, notes
}

// drawSegments draws cell i's segments, each labelled with its duration
// where that fits inside.
func (b *phaseBars) drawSegments(m *marks, i int, ptsPerMS float64) {
	x := float64(i)
	for _, st := range b.steps[i] {
		if st.empty {
			continue
		}
		col := b.d.phaseColor(b.groups[st.group])
		m.rect(x-phaseBarHalf, x+phaseBarHalf, st.from, st.to, col, solid(color.White, 0.5))
		if h := st.to - st.from; h*ptsPerMS >= 13 && float64(b.segment.Width("+"+fmtMS(h))) < 2*phaseBarHalf*b.spacing-4 {
			sty := b.segment
			sty.Color = inkOn(col)
			m.text(x, (st.from+st.to)/2, 0, 0, "+"+fmtMS(h), sty)
		}
	}
}

// firstByteStep is the index of cell i's first-byte segment, or -1.
func (b *phaseBars) firstByteStep(i int) int {
	return slices.IndexFunc(b.steps[i], func(st phaseStep) bool { return st.group == b.fb })
}

// firstByte is cell i's median first byte (ms); the cell must have one.
func (b *phaseBars) firstByte(i int) float64 { return b.steps[i][b.firstByteStep(i)].median }

// drawTop labels the top of cell i's bar and draws its first byte: a line
// across the bar, labelled above it when (almost) nothing is stacked after
// it, else beside it. It returns false when there was no room beside it.
func (b *phaseBars) drawTop(m *marks, i int, ptsPerMS float64) bool {
	x, top := float64(i), b.tops[i]
	k := b.firstByteStep(i)
	if k < 0 {
		if top > 0 {
			m.text(x, top, 0, 3, fmtMS(top)+" ms", b.topSty)
		}
		return true
	}
	at := b.steps[i][k].median
	m.line(b.marker, []float64{x - phaseBarHalf - 0.04, x + phaseBarHalf + 0.04}, []float64{at, at})
	fbText := fmtMS(at) + " ms"
	if (top-at)*ptsPerMS < 12 {
		label := "first byte " + fbText
		if float64(b.topSty.Width(label)) > b.spacing-6 {
			label = fbText
		}
		m.text(x, top, 0, 3, label, b.topSty)
		return true
	}
	m.text(x, top, 0, 3, fmtMS(top)+" ms", b.topSty)
	side := "first byte\n" + fbText
	if float64(b.sideSty.Width(side)) > (0.6-phaseBarHalf-0.04)*b.spacing-6 { // room left of the bar (the first has the least)
		return false
	}
	m.text(x-phaseBarHalf-0.04, at, -3, 0, side, b.sideSty)
	return true
}

// thinSegments names, per phase group, the segments too thin to see, with
// their durations.
func (b *phaseBars) thinSegments(ptsPerMS float64) []string {
	var thin []string
	for gi, g := range b.groups {
		var parts []string
		for i, c := range b.cells {
			for _, st := range b.steps[i] {
				if h := st.to - st.from; st.group == gi && h > 0 && h*ptsPerMS < 4 {
					parts = append(parts, c.series.label+" +"+fmtMS(h))
				}
			}
		}
		if len(parts) > 0 {
			thin = append(thin, g.names[0]+" "+strings.Join(parts, ", "))
		}
	}
	return thin
}
