package plot

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.svg from the current output")

// labRecords is a real run of the node backend: runc and crun at N = 1, 2, 4,
// 8 iterations after 1 warm-up, with every phase the backend records.
const labRecords = "testdata/node-runc-crun.jsonl"

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

// TestGoldenSVG: the figures of the lab records are byte-for-byte what they
// were when last looked at (go test -update rewrites them; look at the PNGs
// that TestPNG leaves in $COLDBENCH_PLOT_OUT before committing).
func TestGoldenSVG(t *testing.T) {
	figs, err := Figures(readSet(t, labRecords), Options{AllScales: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"latency-vs-n", "responded",
		"latency-n1", "p99-n1", "cdf-n1", "phases-n1",
		"latency-n2", "p99-n2", "cdf-n2", "phases-n2",
		"latency-n4", "p99-n4", "cdf-n4", "phases-n4"}
	if got := figureNames(figs); !slices.Equal(got, want) {
		t.Fatalf("figures = %v, want %v", got, want)
	}
	for _, f := range figs {
		got, err := f.SVG()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "golden", f.Name+".svg")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		wantB, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(got, wantB) {
			t.Errorf("%s differs from %s (run go test -update if the change is intended, and look at the figure)", f.Name, path)
		}
		// Rendering twice gives the same bytes (no map order, no clock).
		again, _ := f.SVG()
		if !bytes.Equal(got, again) {
			t.Errorf("%s: two renderings differ", f.Name)
		}
	}
}

// TestSVGContent checks what a reader needs is in the figures: units on the
// axes, every runtime, the p99 warning for n < 100 and every phase name.
func TestSVGContent(t *testing.T) {
	figs, err := Figures(readSet(t, labRecords), Options{})
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
	for name, svg := range byName {
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
	}
	if !strings.Contains(byName["p99-n1"], "WARNING: fewer than 100 successful attempts (runc, crun)") {
		t.Errorf("p99-n1 lacks the small-sample warning")
	}
	for _, ph := range []string{results.PhaseSandboxReady, results.PhaseContainerCreated, results.PhaseContainerStarted,
		results.PhaseAddressKnown, results.PhaseFunctionStart, results.PhaseFirstByte} {
		if !strings.Contains(byName["phases-n1"], ph) {
			t.Errorf("phases-n1 lacks phase %s", ph)
		}
	}
	if !strings.Contains(byName["responded"], "instances per iteration (count)") {
		t.Errorf("responded: y axis label missing")
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
