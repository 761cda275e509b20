package plot

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	goldenfile "github.com/coldbench/coldbench/internal/testenv/golden"
	"github.com/coldbench/coldbench/pkg/results"
)

// labRecords is a real run on the lab's Knative (the golden input of the
// figures): runc and crun at N = 1, 5, 10, 10 iterations, 320 cold starts,
// every one with Knative's 12 phases and the node agent's 6 rt_ phases.
// labBeforeAgent is the same experiment run before the node agent existed:
// the API server's view only (the content checks below pin its values).
const (
	labRecords     = "../../testdata/lab/knative-runc-crun-n1-5-10.jsonl"
	labBeforeAgent = "../../testdata/lab/knative-runc-crun-n1-5-10-before-agent.jsonl"
)

// nodeRecords is a real run of the node backend: runc and crun at N = 1, 2,
// 4, 8 iterations after 1 warm-up, with the node backend's 6 phases (and
// none of Knative's).
const nodeRecords = "testdata/node-runc-crun.jsonl"

// knativePhases are the phases the Knative platform records.
var knativePhases = []string{"request_sent", "deployment_scaled", "pod_created", "pod_scheduled", "sandbox_ready",
	"queue_proxy_started", "user_container_started", "queue_proxy_ready", "user_container_ready", "pod_ready",
	"function_start", "first_byte"}

func readSet(t *testing.T, path string) *results.Set {
	t.Helper()
	set, err := results.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func figureNames(figs []*Figure) []string {
	var names []string
	for _, f := range figs {
		names = append(names, f.Name)
	}
	return names
}

// TestGoldenSVG: the figures of the lab records (and the node backend's
// phase figure, the one that differs in kind) are byte-for-byte what they
// were when last looked at (go test -update rewrites them; look at the PNGs
// that TestPNG leaves in $COLDBENCH_PLOT_OUT before committing).
func TestGoldenSVG(t *testing.T) {
	figs, err := Figures(readSet(t, labRecords), Options{AllScales: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"latency-vs-n", "responded",
		"latency-n1", "p99-n1", "cdf-n1", "phases-n1",
		"latency-n5", "p99-n5", "cdf-n5", "phases-n5",
		"latency-n10", "p99-n10", "cdf-n10", "phases-n10"}
	if got := figureNames(figs); !slices.Equal(got, want) {
		t.Fatalf("figures = %v, want %v", got, want)
	}
	golden := map[string]*Figure{}
	for _, f := range figs {
		golden[f.Name] = f
	}
	nodeFigs, err := Figures(readSet(t, nodeRecords), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range nodeFigs {
		if f.Name == "phases-n1" {
			golden["node/"+f.Name] = f
		}
	}
	if golden["node/phases-n1"] == nil {
		t.Fatalf("node records: no phases-n1 among %v", figureNames(nodeFigs))
	}
	names := slices.Sorted(maps.Keys(golden))
	for _, name := range names {
		f := golden[name]
		got, err := f.SVG()
		if err != nil {
			t.Fatal(err)
		}
		goldenfile.Check(t, filepath.Join("testdata", "golden", name+".svg"), got)
		// Rendering twice gives the same bytes (no map order, no clock).
		again, _ := f.SVG()
		if !bytes.Equal(got, again) {
			t.Errorf("%s: two renderings differ", name)
		}
	}
}

// TestSVGContent checks what a reader needs is in the figures: units on the
// axes, every runtime, the p99 warning for n < 100 and every phase name.
func TestSVGContent(t *testing.T) {
	svgs := func(path string) map[string]string {
		figs, err := Figures(readSet(t, path), Options{AllScales: true})
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]string{}
		for _, f := range figs {
			b, err := f.SVG()
			if err != nil {
				t.Fatal(err)
			}
			byName[f.Name] = string(b)
		}
		return byName
	}
	lab, node := svgs(labBeforeAgent), svgs(nodeRecords)
	for name, svg := range lab {
		if name != "responded" && !strings.Contains(svg, "(ms)") {
			t.Errorf("%s: no axis label with unit (ms)", name)
		}
		for _, rt := range []string{"runc", "crun"} {
			if !strings.Contains(svg, rt) {
				t.Errorf("%s: runtime %s not named", name, rt)
			}
		}
		if !strings.Contains(svg, "font-family:'Liberation Sans',Arimo,Arial,Helvetica,sans-serif") {
			t.Errorf("%s: text without the font fallback list", name)
		}
		if !strings.Contains(svg, "platform knative") {
			t.Errorf("%s: platform not named", name)
		}
	}
	// 10 and 50 successful attempts: p99 ≈ max; 100: no warning.
	for _, name := range []string{"p99-n1", "p99-n5"} {
		if !strings.Contains(lab[name], "WARNING: fewer than 100 successful attempts (runc, crun)") {
			t.Errorf("%s lacks the small-sample warning", name)
		}
	}
	if strings.Contains(lab["p99-n10"], "WARNING") {
		t.Errorf("p99-n10 (n = 100) warns about a small sample")
	}
	for _, n := range []string{"1", "5", "10"} {
		ph := lab["phases-n"+n]
		for _, name := range knativePhases {
			if !strings.Contains(ph, ">"+name+"<") && !strings.Contains(ph, ">= "+name+"<") {
				t.Errorf("phases-n%s: phase %s is not in the legend", n, name)
			}
		}
		for _, want := range []string{"median first byte", "pod phases are when the API server reported them"} {
			if !strings.Contains(ph, want) {
				t.Errorf("phases-n%s lacks %q", n, want)
			}
		}
		// Ties share a segment: nothing is left without one at these N.
		if strings.Contains(ph, "No segment of their own") {
			t.Errorf("phases-n%s: a phase without segment; the ties should have been grouped", n)
		}
	}
	// The median first byte (ms) of runc and crun at N = 10, from the records.
	for _, want := range []string{"first byte 8537 ms", "first byte 7265 ms"} {
		if !strings.Contains(lab["phases-n10"], want) {
			t.Errorf("phases-n10 lacks %q", want)
		}
	}
	if !strings.Contains(lab["responded"], "instances per iteration (count)") {
		t.Errorf("responded: y axis label missing")
	}

	// The node backend's phases, and none of Knative's remarks.
	for _, name := range []string{results.PhaseSandboxReady, results.PhaseContainerCreated, results.PhaseContainerStarted,
		results.PhaseAddressKnown, results.PhaseFunctionStart, results.PhaseFirstByte} {
		if !strings.Contains(node["phases-n1"], ">"+name+"<") {
			t.Errorf("node phases-n1 lacks phase %s", name)
		}
	}
	if ph := node["phases-n1"]; strings.Contains(ph, "API server") || strings.Contains(ph, "= in the legend") {
		t.Errorf("node phases-n1 has remarks that only apply to Knative")
	}
}

// TestLayout: on every figure of both real runs, every line of the heading
// fits in the figure's width, and the legend and the plot area fit under the
// heading.
func TestLayout(t *testing.T) {
	for _, path := range []string{labRecords, nodeRecords} {
		figs, err := Figures(readSet(t, path), Options{AllScales: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range figs {
			w, h := f.Size()
			lines := f.headLines()
			for _, l := range lines {
				if lw := l.sty.Width(l.s); lw > w-2*margin {
					t.Errorf("%s %s: heading line %.0f pt wide, the figure has %.0f pt: %q", path, f.Name, lw, w-2*margin, l.s)
				}
			}
			area := h - 2*margin - headHeight(lines)
			if area < minPlotArea || area < f.legend.height()+8 {
				t.Errorf("%s %s: %.0f pt left under the heading for a legend of %.0f pt", path, f.Name, area, f.legend.height())
			}
			if f.legend.width() > w/3 {
				t.Errorf("%s %s: legend %.0f pt wide", path, f.Name, f.legend.width())
			}
		}
	}
	// A note of one long run of items is wrapped at spaces, never cut.
	f := &Figure{Title: "t", width: DefaultWidth, height: DefaultHeight, plot: newPlot(),
		Notes: []string{strings.Repeat("user_container_started 8446, ", 30)}}
	lines := f.headLines()
	if len(lines) < 3 {
		t.Errorf("long note in %d lines", len(lines))
	}
	var text []string
	for _, l := range lines[1:] {
		text = append(text, strings.TrimSpace(l.s))
	}
	if got := strings.Join(text, " "); got != strings.TrimSpace(f.Notes[0]) {
		t.Errorf("wrapping lost text: %q", got)
	}
}

// TestPNG: every kind of figure renders to a PNG of the expected size with
// a substantial share of non-white pixels (the figures of the smallest N
// only: rasterizing is slow under the race detector, and the other N take
// the same code path). With COLDBENCH_PLOT_OUT set, the PNGs are also
// written there to be looked at.
func TestPNG(t *testing.T) {
	figs, err := Figures(readSet(t, labRecords), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("COLDBENCH_PLOT_OUT")
	for _, f := range figs {
		b, err := f.PNG(0)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		w, h := f.Size()
		wantW := int(math.Round(w.Points() / 72 * DefaultDPI))
		wantH := int(math.Round(h.Points() / 72 * DefaultDPI))
		if got := img.Bounds().Size(); got.X != wantW || got.Y != wantH {
			t.Errorf("%s: PNG is %v, want %dx%d", f.Name, got, wantW, wantH)
		}
		if frac := inkFraction(img, img.Bounds()); frac < 0.02 {
			t.Errorf("%s: only %.4f of the pixels are not white", f.Name, frac)
		}
		if out != "" {
			if err := os.WriteFile(filepath.Join(out, f.Name+".png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// inkFraction is the share of pixels in r that are clearly not white.
func inkFraction(img image.Image, r image.Rectangle) float64 {
	ink := 0
	if rgba, ok := img.(*image.RGBA); ok { // the common case, without a call per pixel
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := rgba.Pix[rgba.PixOffset(r.Min.X, y):rgba.PixOffset(r.Max.X, y)]
			for i := 0; i < len(row); i += 4 {
				if row[i] < 235 || row[i+1] < 235 || row[i+2] < 235 {
					ink++
				}
			}
		}
	} else {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
				if c.R < 235 || c.G < 235 || c.B < 235 {
					ink++
				}
			}
		}
	}
	return float64(ink) / float64(r.Dx()*r.Dy())
}
