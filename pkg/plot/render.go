package plot

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"math"
	"strconv"
	"strings"

	xfont "golang.org/x/image/font"
	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/font/liberation"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure size and PNG resolution.
const (
	DefaultWidth  = 9 * vg.Inch
	DefaultHeight = 5.4 * vg.Inch
	DefaultDPI    = 128
)

// Colours: the Okabe–Ito palette (distinguishable with the common forms of
// colour blindness), without its yellow, which is unreadable on white.
var palette = []color.Color{
	rgb(0x00, 0x72, 0xB2), // blue
	rgb(0xD5, 0x5E, 0x00), // vermillion
	rgb(0x00, 0x9E, 0x73), // bluish green
	rgb(0xCC, 0x79, 0xA7), // reddish purple
	rgb(0xE6, 0x9F, 0x00), // orange
	rgb(0x56, 0xB4, 0xE9), // sky blue
	rgb(0x00, 0x00, 0x00), // black
}

var (
	textColor    = rgb(0x22, 0x22, 0x22)
	subtleColor  = rgb(0x55, 0x55, 0x55)
	warningColor = rgb(0xB0, 0x00, 0x20)
	gridColor    = rgb(0xE4, 0xE4, 0xE4)
	targetColor  = rgb(0xC8, 0xC8, 0xC8)
)

func rgb(r, g, b uint8) color.RGBA { return color.RGBA{R: r, G: g, B: b, A: 0xFF} }

// lighten mixes c with white; f = 0 keeps c, f = 1 gives white.
func lighten(c color.Color, f float64) color.RGBA {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8(float64(v>>8) + (255-float64(v>>8))*f + 0.5) }
	return rgb(mix(r), mix(g), mix(b))
}

// darken mixes c with black; f = 0 keeps c, f = 1 gives black.
func darken(c color.Color, f float64) color.RGBA {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8(float64(v>>8)*(1-f) + 0.5) }
	return rgb(mix(r), mix(g), mix(b))
}

func seriesColor(s *series) color.Color { return palette[s.index%len(palette)] }

// inkOn is the text colour readable on background bg: white on dark colours.
func inkOn(bg color.Color) color.Color {
	r, g, b, _ := bg.RGBA()
	// Relative luminance (Rec. 709 weights) on 16-bit channels.
	if 0.2126*float64(r)+0.7152*float64(g)+0.0722*float64(b) < 0.5*0xFFFF {
		return color.White
	}
	return textColor
}

// The fonts are gonum's embedded Liberation fonts (metric-compatible with
// Arial/Helvetica), so output never depends on the fonts of the machine.
var (
	fontCache   = font.NewCache(liberation.Collection())
	textHandler = text.Plain{Fonts: fontCache}
	sansFace    = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

func textStyle(size vg.Length, bold bool, c color.Color) text.Style {
	f := sansFace
	f.Size = size
	if bold {
		f.Weight = xfont.WeightBold
	}
	return text.Style{Color: c, Font: f, Handler: textHandler}
}

// newPlot returns a gonum plot with coldbench's fonts and a light grid-free
// look; figures add their own grid where it helps reading values.
func newPlot() *gplot.Plot {
	p := gplot.New()
	p.TextHandler = textHandler
	for _, ax := range []*gplot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle = textStyle(11, false, textColor)
		ax.Label.TextStyle.XAlign = draw.XCenter
		ax.Label.TextStyle.YAlign = draw.YBottom // the axis turns the y label itself
		ax.Label.Padding = 4
		ax.Tick.Label = textStyle(10, false, textColor)
		ax.Color = subtleColor
		ax.Tick.Color = subtleColor
	}
	p.X.Tick.Label.XAlign = draw.XCenter
	p.X.Tick.Label.YAlign = draw.YTop
	p.Y.Tick.Label.XAlign = draw.XRight
	p.Y.Tick.Label.YAlign = draw.YCenter
	p.X.Tick.Marker = cleanTicks{}
	p.Y.Tick.Marker = cleanTicks{}
	p.Legend = gplot.NewLegend() // unused: figures draw their legend beside the plot
	return p
}

// legendBox is a legend drawn to the right of the plot area, outside the
// data, so it can never hide a bar or a line.
type legendBox struct {
	title   string
	entries []legendEntry
}

type legendEntry struct {
	label  string
	thumbs []gplot.Thumbnailer
}

func (l *legendBox) add(label string, thumbs ...gplot.Thumbnailer) {
	l.entries = append(l.entries, legendEntry{label, thumbs})
}

const (
	legendThumb = vg.Length(22)
	legendGap   = vg.Length(6)
	legendRow   = vg.Length(17)
	legendLine  = vg.Length(12.5) // each further line of a multi-line label
)

func (l *legendBox) width() vg.Length {
	if l == nil || len(l.entries) == 0 {
		return 0
	}
	sty := textStyle(10, false, textColor)
	w := textStyle(10, true, textColor).Width(l.title)
	for _, e := range l.entries {
		if ew := legendThumb + legendGap + sty.Width(e.label); ew > w {
			w = ew
		}
	}
	return w
}

// height is the vertical space the legend takes.
func (l *legendBox) height() vg.Length {
	if l == nil || len(l.entries) == 0 {
		return 0
	}
	var h vg.Length
	if l.title != "" {
		h += legendRow
	}
	for _, e := range l.entries {
		h += legendRow + vg.Length(strings.Count(e.label, "\n"))*legendLine
	}
	return h
}

// draw renders the legend with its top left corner at (x, top). A label
// may have several lines ("\n"): the first sits beside the thumbnail, the
// others below it.
func (l *legendBox) draw(c draw.Canvas, x, top vg.Length) {
	sty := textStyle(10, false, textColor)
	sty.YAlign = draw.YCenter
	y := top
	if l.title != "" {
		ts := textStyle(10, true, textColor)
		ts.YAlign = draw.YTop
		c.FillText(ts, vg.Point{X: x, Y: y}, l.title)
		y -= legendRow
	}
	for _, e := range l.entries {
		mid := y - legendRow/2
		icon := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: mid - 6},
			Max: vg.Point{X: x + legendThumb, Y: mid + 6},
		}}
		for _, t := range e.thumbs {
			t.Thumbnail(&icon)
		}
		for i, line := range strings.Split(e.label, "\n") {
			c.FillText(sty, vg.Point{X: x + legendThumb + legendGap, Y: mid - vg.Length(i)*legendLine}, line)
		}
		y -= legendRow + vg.Length(strings.Count(e.label, "\n"))*legendLine
	}
}

// Figure is one rendered-on-demand chart.
type Figure struct {
	// Name is the file name without extension, e.g. "latency-n1".
	Name string
	// Scale is the N of a per-N figure, 0 for a figure across N.
	Scale int
	// Title and Subtitle are drawn at the top; Notes (e.g. how to read the
	// figure) below the subtitle and Warnings in red under them. Lines too
	// long for the figure are wrapped at spaces.
	Title    string
	Subtitle string
	Notes    []string
	// Warnings are drawn in red, each starting with "WARNING:"; a warning
	// may span several lines ("\n").
	Warnings []string

	plot   *gplot.Plot
	legend *legendBox
	width  vg.Length
	// height is the least height; Size adds what a long heading or legend
	// needs so that the plot area never gets smaller than minPlotArea.
	height vg.Length
}

const (
	margin = vg.Length(12)
	// minPlotArea is the least height of the plot area (data, axes and
	// tick labels) under the heading.
	minPlotArea = vg.Length(280)
	// lineGap is the space between two heading lines.
	lineGap = vg.Length(3)
)

// Size is the figure's size.
func (f *Figure) Size() (w, h vg.Length) { return f.width, f.layoutHeight(f.headLines()) }

// plotWidth estimates the width (points) of the data area, for decisions
// such as whether labels fit: the figure less margins, legend and y axis.
func (f *Figure) plotWidth() float64 {
	return float64(f.width - 4*margin - f.legend.width() - 60)
}

// dataHeight estimates the height (points) of the data area with the
// heading as it is, for the same kind of decisions: the plot area less an x
// axis with up to three lines of tick labels.
func (f *Figure) dataHeight() float64 {
	lines := f.headLines()
	return float64(f.layoutHeight(lines) - 2*margin - headHeight(lines) - 55)
}

// headLine is one line of the heading.
type headLine struct {
	sty text.Style
	s   string
}

// headLines is the heading as drawn: title, subtitle, notes and warnings,
// each wrapped to the figure's width.
func (f *Figure) headLines() []headLine {
	avail := f.width - 2*margin
	var out []headLine
	add := func(sty text.Style, s string) {
		for _, l := range wrapWidth(sty, s, avail) {
			out = append(out, headLine{sty, l})
		}
	}
	add(textStyle(14, true, textColor), f.Title)
	if f.Subtitle != "" {
		add(textStyle(10, false, subtleColor), f.Subtitle)
	}
	for _, n := range f.Notes {
		add(textStyle(10, false, subtleColor), n)
	}
	for _, w := range f.Warnings {
		for i, l := range strings.Split(w, "\n") {
			if i == 0 {
				l = "WARNING: " + l
			}
			add(textStyle(10, true, warningColor), l)
		}
	}
	return out
}

func headHeight(lines []headLine) vg.Length {
	var h vg.Length
	for _, l := range lines {
		h += l.sty.Rectangle(l.s).Size().Y + lineGap
	}
	return h + 6
}

func (f *Figure) layoutHeight(lines []headLine) vg.Length {
	area := max(minPlotArea, f.legend.height()+8)
	return max(f.height, 2*margin+headHeight(lines)+area)
}

// wrapWidth breaks s at spaces into lines no wider than width in style sty;
// continuation lines are indented. A word wider than width stays whole.
func wrapWidth(sty text.Style, s string, width vg.Length) []string {
	if sty.Width(s) <= width {
		return []string{s}
	}
	var lines []string
	cur := ""
	for _, w := range strings.Split(s, " ") {
		next := w
		if cur != "" {
			next = cur + " " + w
		}
		if cur != "" && cur != "  " && sty.Width(next) > width {
			lines = append(lines, cur)
			cur = "  " + w
			continue
		}
		cur = next
	}
	return append(lines, cur)
}

// draw lays the figure out: heading lines, then the plot with the legend to
// its right.
func (f *Figure) draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	c = draw.Crop(c, margin, -margin, margin, -margin)

	y := c.Max.Y
	for _, l := range f.headLines() {
		sty := l.sty
		sty.YAlign = draw.YTop
		c.FillText(sty, vg.Point{X: c.Min.X, Y: y}, l.s)
		y -= sty.Rectangle(l.s).Size().Y + lineGap
	}
	y -= 6
	area := c
	area.Max.Y = y
	if lw := f.legend.width(); lw > 0 {
		area.Max.X -= lw + 2*margin
		f.legend.draw(c, area.Max.X+2*margin, y-4)
	}
	f.plot.Draw(area)
}

// SVG renders the figure as an SVG document. Text refers to the font family
// "Liberation Sans" with the metric-compatible Arial and Helvetica as
// fallbacks, so the layout holds without the font installed.
func (f *Figure) SVG() ([]byte, error) {
	w, h := f.Size()
	cv := vgsvg.New(w, h)
	f.draw(draw.New(cv))
	var buf bytes.Buffer
	if _, err := cv.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("rendering %s as SVG: %w", f.Name, err)
	}
	return bytes.ReplaceAll(buf.Bytes(), []byte("font-family:Liberation Sans;"),
		[]byte("font-family:'Liberation Sans',Arimo,Arial,Helvetica,sans-serif;")), nil
}

// PNG renders the figure as a PNG image at dpi (DefaultDPI if 0).
func (f *Figure) PNG(dpi int) ([]byte, error) {
	if dpi <= 0 {
		dpi = DefaultDPI
	}
	w, h := f.Size()
	cv := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	f.draw(draw.New(cv))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: cv}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("rendering %s as PNG: %w", f.Name, err)
	}
	return buf.Bytes(), nil
}

// cleanTicks are evenly spaced ticks at 1, 2, 2.5 or 5 × 10^k, 5 to 10 of
// them labelled, in the shortest form ("750", not "750.00") with the
// same number of decimals on all, plus an unlabelled minor tick between two
// labelled ones.
// With integer set (an axis of counts), steps are whole numbers and there
// are no minor ticks between them.
type cleanTicks struct{ integer bool }

func (ct cleanTicks) Ticks(lo, hi float64) []gplot.Tick {
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return gplot.DefaultTicks{}.Ticks(lo, hi)
	}
	step := niceStepBelow((hi - lo) / 4.5) // 4.5 to 9 intervals
	minor := true
	if ct.integer {
		step = math.Max(1, math.Round(step))
		minor = step >= 2 && math.Mod(step, 2) == 0
	}
	decimals := 0
	if step < 1 {
		s := strconv.FormatFloat(roundSig(step, 6), 'f', -1, 64)
		if i := strings.IndexByte(s, '.'); i >= 0 {
			decimals = len(s) - i - 1
		}
	}
	var ticks []gplot.Tick
	first := math.Ceil(lo/step-1e-9) * step
	for k := 0; ; k++ {
		v := first + float64(k)*step
		if v > hi+step*1e-9 {
			break
		}
		v = roundSig(v, 12)
		if v == 0 {
			v = 0 // no "-0"
		}
		ticks = append(ticks, gplot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
		if mid := v + step/2; minor && mid <= hi {
			ticks = append(ticks, gplot.Tick{Value: mid})
		}
	}
	if minor && first-step/2 >= lo {
		ticks = append(ticks, gplot.Tick{Value: first - step/2})
	}
	return ticks
}

// niceStepBelow is the largest of 1, 2, 2.5, 5 × 10^k that is <= raw.
func niceStepBelow(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	best := p
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p <= raw*(1+1e-9) {
			best = m * p
		}
	}
	return best
}

// roundSig rounds v to n significant digits.
func roundSig(v float64, n int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// InlineSVG renders the figure as an <svg> element to place inside an HTML
// page: no XML prolog and no namespace declarations (HTML needs neither,
// and the page then holds no URL at all), scaled to its container through
// its viewBox, with the title as its accessible name.
func (f *Figure) InlineSVG() ([]byte, error) {
	b, err := f.SVG()
	if err != nil {
		return nil, err
	}
	start := bytes.Index(b, []byte("<svg "))
	end := bytes.IndexByte(b[start:], '>')
	if start < 0 || end < 0 {
		return nil, fmt.Errorf("rendering %s: unexpected SVG header", f.Name)
	}
	open := b[start : start+end+1]
	vb := bytes.Index(open, []byte(`viewBox="`))
	if vb < 0 {
		return nil, fmt.Errorf("rendering %s: SVG without viewBox", f.Name)
	}
	vbEnd := bytes.IndexByte(open[vb+len(`viewBox="`):], '"')
	viewBox := open[vb : vb+len(`viewBox="`)+vbEnd+1]
	var out bytes.Buffer
	fmt.Fprintf(&out, `<svg %s role="img" aria-label="%s">`, viewBox, html.EscapeString(f.Title))
	out.Write(b[start+end+1:])
	return out.Bytes(), nil
}
