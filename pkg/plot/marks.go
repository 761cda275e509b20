package plot

import (
	"image/color"
	"math"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// marks is a gonum Plotter made of simple primitives in data coordinates.
// The figures are built from it rather than from gonum's chart types so that
// every bar, whisker and label is placed exactly, per series and per N.
type marks struct {
	rects []rectMark
	lines []lineMark
	polys []polyMark
	dots  []dotMark
	texts []textMark
}

type rectMark struct {
	x0, x1, y0, y1 float64
	fill           color.Color // nil: not filled
	line           draw.LineStyle
}

type lineMark struct {
	xs, ys []float64
	style  draw.LineStyle
}

type polyMark struct {
	xs, ys []float64
	fill   color.Color
}

type dotMark struct {
	x, y  float64
	glyph draw.GlyphStyle
}

// textMark is text anchored at a data point and shifted by (dx, dy).
type textMark struct {
	x, y   float64
	dx, dy vg.Length
	s      string
	style  text.Style
}

func (m *marks) rect(x0, x1, y0, y1 float64, fill color.Color, line draw.LineStyle) {
	m.rects = append(m.rects, rectMark{x0, x1, y0, y1, fill, line})
}

func (m *marks) line(style draw.LineStyle, xs, ys []float64) {
	m.lines = append(m.lines, lineMark{xs, ys, style})
}

func (m *marks) poly(fill color.Color, xs, ys []float64) {
	m.polys = append(m.polys, polyMark{xs, ys, fill})
}

func (m *marks) dot(x, y float64, g draw.GlyphStyle) { m.dots = append(m.dots, dotMark{x, y, g}) }

func (m *marks) text(x, y float64, dx, dy vg.Length, s string, sty text.Style) {
	m.texts = append(m.texts, textMark{x, y, dx, dy, s, sty})
}

// Plot implements gplot.Plotter. Order: areas, rectangles, lines, dots,
// texts, so labels are never covered.
func (m *marks) Plot(c draw.Canvas, p *gplot.Plot) {
	tx, ty := p.Transforms(&c)
	pt := func(x, y float64) vg.Point { return vg.Point{X: tx(x), Y: ty(y)} }
	for _, pm := range m.polys {
		pts := make([]vg.Point, len(pm.xs))
		for i := range pm.xs {
			pts[i] = pt(pm.xs[i], pm.ys[i])
		}
		c.FillPolygon(pm.fill, pts)
	}
	for _, r := range m.rects {
		pts := []vg.Point{pt(r.x0, r.y0), pt(r.x1, r.y0), pt(r.x1, r.y1), pt(r.x0, r.y1)}
		if r.fill != nil {
			c.FillPolygon(r.fill, pts)
		}
		if r.line.Width > 0 {
			c.StrokeLines(r.line, append(pts, pts[0]))
		}
	}
	for _, l := range m.lines {
		pts := make([]vg.Point, len(l.xs))
		for i := range l.xs {
			pts[i] = pt(l.xs[i], l.ys[i])
		}
		c.StrokeLines(l.style, pts)
	}
	for _, d := range m.dots {
		c.DrawGlyphNoClip(d.glyph, pt(d.x, d.y))
	}
	for _, t := range m.texts {
		p := pt(t.x, t.y)
		c.FillText(t.style, vg.Point{X: p.X + t.dx, Y: p.Y + t.dy}, t.s)
	}
}

// DataRange implements gplot.DataRanger over every primitive but the texts
// (figures leave head room for those).
func (m *marks) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	add := func(x, y float64) {
		xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
		ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
	}
	for _, r := range m.rects {
		add(r.x0, r.y0)
		add(r.x1, r.y1)
	}
	for _, l := range m.lines {
		for i := range l.xs {
			add(l.xs[i], l.ys[i])
		}
	}
	for _, pm := range m.polys {
		for i := range pm.xs {
			add(pm.xs[i], pm.ys[i])
		}
	}
	for _, d := range m.dots {
		add(d.x, d.y)
	}
	return
}

// Legend thumbnails.

type thumbRect struct {
	fill color.Color
	line draw.LineStyle
}

func (t thumbRect) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	r.Min.X += 3
	r.Max.X -= 3
	pts := []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}}
	if t.fill != nil {
		c.FillPolygon(t.fill, pts)
	}
	if t.line.Width > 0 {
		c.StrokeLines(t.line, append(pts, pts[0]))
	}
}

// thumbHLine is a horizontal line across the thumbnail's middle (or, with
// short, a short one as drawn for a median or cap).
type thumbHLine struct {
	style draw.LineStyle
	short bool
}

func (t thumbHLine) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	x0, x1 := c.Min.X, c.Max.X
	if t.short {
		x0, x1 = x0+3, x1-3
	}
	c.StrokeLine2(t.style, x0, y, x1, y)
}

// thumbWhisker is a vertical line with caps, as drawn for a min–max range.
type thumbWhisker struct{ style draw.LineStyle }

func (t thumbWhisker) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(t.style, x, c.Min.Y-2, x, c.Max.Y+2)
	c.StrokeLine2(t.style, x-4, c.Min.Y-2, x+4, c.Min.Y-2)
	c.StrokeLine2(t.style, x-4, c.Max.Y+2, x+4, c.Max.Y+2)
}

type thumbDot struct{ glyph draw.GlyphStyle }

func (t thumbDot) Thumbnail(c *draw.Canvas) { c.DrawGlyphNoClip(t.glyph, c.Center()) }
