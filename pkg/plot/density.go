package plot

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/coldbench/coldbench/pkg/stats"
)

// A density run's figures (coldbench density), after the others:
//
//	density-latency   per runtime, each step's median time to first byte
//	                  against the instances already running (min–max whiskers)
//	density-memory    per runtime, memory per instance against the instances
//	                  running after the step: PSS anon+shmem and MemAvailable drop/N
//	density-capacity  per runtime, the instances that answered before the stop

const densityLabel = "instances already running (density)"

// densitySeries is the series (colour, label) of a density run's runtime.
func (d *data) densitySeries(ds stats.Density) *series {
	for _, s := range d.series {
		if s.platform == ds.Platform && s.runtime == ds.Runtime {
			return s
		}
	}
	return &series{platform: ds.Platform, runtime: ds.Runtime, label: stats.RuntimeLabel(ds.Runtime), index: len(d.series)}
}

func (d *data) densityFigures(ds []stats.Density) []*Figure {
	if len(ds) == 0 {
		return nil
	}
	return []*Figure{d.densityLatencyFigure(ds), d.densityMemoryFigure(ds), d.densityCapacityFigure(ds)}
}

func (d *data) densityLatencyFigure(ds []stats.Density) *Figure {
	f := d.figure(0, "density-latency", "Cold-start latency vs density")
	f.Subtitle = d.subtitle(0, "density runs: instances kept between steps")
	f.Notes = []string{"Dots: median time to first byte of each step's answered instances, at the instances already running",
		"when the step started; whiskers: fastest – slowest of the step."}
	p := f.plot
	yGrid(p)
	p.Y.Label.Text = ttfbLabel
	p.X.Label.Text = densityLabel
	m := &marks{}
	f.legend = &legendBox{title: "runtime"}
	ymax, xmax := 0.0, 0.0
	for _, dr := range ds {
		s := d.densitySeries(dr)
		col := seriesColor(s)
		glyph := draw.GlyphStyle{Color: col, Radius: 3, Shape: draw.CircleGlyph{}}
		var xs, ys []float64
		for _, st := range dr.Steps {
			xmax = math.Max(xmax, float64(st.Alive))
			if st.TTFB.N == 0 {
				continue
			}
			x := float64(st.Alive)
			xs, ys = append(xs, x), append(ys, nsToMS(st.TTFB.P50))
			if st.TTFB.Max > st.TTFB.Min {
				m.line(solid(lighten(col, 0.4), 1), []float64{x, x}, []float64{nsToMS(st.TTFB.Min), nsToMS(st.TTFB.Max)})
			}
			ymax = math.Max(ymax, nsToMS(st.TTFB.Max))
		}
		if len(xs) > 1 {
			m.line(solid(col, 1.6), xs, ys)
		}
		for i := range xs {
			m.dot(xs[i], ys[i], glyph)
		}
		f.legend.add(s.label, thumbHLine{solid(col, 1.6), false}, thumbDot{glyph})
	}
	p.Add(m)
	p.X.Min, p.X.Max = 0, math.Max(xmax*1.03, 1)
	p.Y.Min, p.Y.Max = 0, math.Max(ymax*1.05, 1)
	return f
}

func (d *data) densityMemoryFigure(ds []stats.Density) *Figure {
	f := d.figure(0, "density-memory", "Memory per instance vs density")
	f.Subtitle = d.subtitle(0, "density runs")
	f.Notes = []string{"Solid: median PSS no file backs (anon+shmem) of the step's instances after the settle;",
		"dashed: the node's MemAvailable drop over the step / the step's instances. x: instances running after the step."}
	p := f.plot
	yGrid(p)
	p.Y.Label.Text = "memory per instance (MiB)"
	p.X.Label.Text = "instances running"
	m := &marks{}
	f.legend = &legendBox{title: "runtime"}
	dashed := func(c draw.LineStyle) draw.LineStyle { c.Dashes = []vg.Length{4, 3}; return c }
	ymax, xmax, any := 0.0, 0.0, false
	for _, dr := range ds {
		s := d.densitySeries(dr)
		col := seriesColor(s)
		var px, py, mx, my []float64
		for _, st := range dr.Steps {
			x := float64(st.Alive + st.Answered)
			xmax = math.Max(xmax, x)
			if e := st.PSSAnonShmem; e.N > 0 {
				px, py = append(px, x), append(py, e.Median/(1<<20))
				ymax = math.Max(ymax, e.Median/(1<<20))
			}
			if e := st.MemAvailablePerInstance; e.N > 0 {
				mx, my = append(mx, x), append(my, e.Median/(1<<20))
				ymax = math.Max(ymax, e.Median/(1<<20))
			}
		}
		glyph := draw.GlyphStyle{Color: col, Radius: 2.6, Shape: draw.CircleGlyph{}}
		if len(px) > 0 {
			any = true
			m.line(solid(col, 1.6), px, py)
			for i := range px {
				m.dot(px[i], py[i], glyph)
			}
		}
		if len(mx) > 0 {
			any = true
			m.line(dashed(solid(col, 1.2)), mx, my)
		}
		f.legend.add(s.label+" PSS anon+shmem", thumbHLine{solid(col, 1.6), false}, thumbDot{glyph})
		f.legend.add(s.label+" MemAvailable drop/N", thumbHLine{dashed(solid(col, 1.2)), false})
	}
	if !any {
		f.Warnings = append(f.Warnings, "no footprint in these records (measured with --footprint=false, or a platform that reads none): nothing to draw.")
	}
	p.Add(m)
	p.X.Min, p.X.Max = 0, math.Max(xmax*1.03, 1)
	p.Y.Min, p.Y.Max = 0, math.Max(ymax*1.1, 1)
	return f
}

func (d *data) densityCapacityFigure(ds []stats.Density) *Figure {
	f := d.figure(0, "density-capacity", "Capacity: instances running at once per runtime")
	f.Subtitle = d.subtitle(0, "density runs")
	p := f.plot
	yGrid(p)
	p.Y.Label.Text = "instances that answered and kept running"
	p.Y.Tick.Marker = cleanTicks{integer: true}
	m := &marks{}
	lbl := centered(9, textColor)
	var ticks []string
	ymax := 0.0
	for i, dr := range ds {
		s := d.densitySeries(dr)
		ticks = append(ticks, s.label)
		x := float64(i)
		m.rect(x-0.3, x+0.3, 0, float64(dr.Capacity), seriesColor(s), draw.LineStyle{})
		label := fmt.Sprint(dr.Capacity)
		why := strings.Join(dr.Stop, "; ")
		if len(dr.Stop) == 0 {
			label += " (cut short)"
			why = "cut short (interrupt or deadline) before a stop condition: a lower bound"
		}
		m.text(x, float64(dr.Capacity), 0, 4, label, lbl)
		f.Notes = append(f.Notes, fmt.Sprintf("%s: %s", s.label, why))
		ymax = math.Max(ymax, float64(dr.Capacity))
	}
	p.Add(m)
	categoryTicks(p, ticks)
	p.Y.Min, p.Y.Max = 0, math.Max(ymax*1.12, 1)
	return f
}
