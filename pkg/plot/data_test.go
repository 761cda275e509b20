package plot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

func att(exp, runtime string, scale, iter int, ok bool, phases ...results.Phase) results.Attempt {
	a := results.Attempt{Type: results.TypeAttempt, ExperimentID: exp, Platform: "knative", Runtime: runtime, Scale: scale,
		Iteration: iter, OK: ok, Phases: phases}
	if ok && len(phases) > 0 {
		a.TTFBNS = phases[len(phases)-1].OffsetNS
	}
	if !ok {
		a.ErrorClass = results.ErrTimeout
	}
	return a
}

func ph(name string, ms int64) results.Phase { return results.Phase{Name: name, OffsetNS: ms * 1e6} }

// Phases with names the figure has never heard of are stacked in time
// order; one that a runtime reaches before the phase below it in the stack
// gets an empty segment and is reported, never a negative one.
func TestPhaseStacking(t *testing.T) {
	set := &results.Set{}
	for i := range 3 {
		set.Attempts = append(set.Attempts,
			att("e", "kata", 1, i, true, ph("pod_scheduled", 100), ph("revision_ready", 900), ph("queue_proxy_ready", 950), ph("first_byte", 1000)),
			// urunc: queue_proxy_ready before revision_ready.
			att("e", "urunc", 1, i, true, ph("pod_scheduled", 80), ph("queue_proxy_ready", 300), ph("revision_ready", 400), ph("first_byte", 450)))
	}
	d := newData(set)
	cells := d.cellsAt(1)
	order := d.phaseOrder(cells)
	if want := []string{"pod_scheduled", "queue_proxy_ready", "revision_ready", "first_byte"}; !slices.Equal(order, want) {
		// pooled medians: pod_scheduled 80/100, queue_proxy_ready 300/950, revision_ready 400/900 …
		t.Logf("order %v", order)
	}
	for _, c := range cells {
		top := 0.0
		for _, st := range c.phaseSteps(order) {
			if st.to < st.from || st.from != top {
				t.Errorf("%s: segment %+v does not continue the stack at %v", c.series.label, st, top)
			}
			top = st.to
		}
		if want := map[string]float64{"kata": 1000, "urunc": 450}[c.series.runtime]; top != want {
			t.Errorf("%s: stack top %v, want the median first_byte %v", c.series.runtime, top, want)
		}
	}
	fig := d.phasesFigure(1)
	if fig == nil {
		t.Fatal("no phase figure")
	}
	notes := strings.Join(fig.Notes, " ")
	if !strings.Contains(notes, "Reached before the phase below them") {
		t.Errorf("the out-of-order phase is not reported: %q", notes)
	}
	svg, err := fig.SVG()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		if !strings.Contains(string(svg), name) {
			t.Errorf("legend lacks %s", name)
		}
	}

	// No phases at all: no phase figure, the others still drawn.
	bare := &results.Set{Attempts: []results.Attempt{{Type: results.TypeAttempt, Runtime: "runc", Scale: 1, OK: true, TTFBNS: 5e8}}}
	figs, err := Figures(bare, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := figureNames(figs); !slices.Equal(got, []string{"latency-vs-n", "responded", "latency-n1", "p99-n1", "cdf-n1"}) {
		t.Errorf("figures without phases = %v", got)
	}
}

// Runs appended to one file reuse iteration numbers: responded is counted
// per (experiment, iteration), not merged.
func TestRespondedPerIteration(t *testing.T) {
	set := &results.Set{}
	for _, exp := range []string{"run-1", "run-2"} {
		for it := range 2 {
			set.Attempts = append(set.Attempts,
				att(exp, "runc", 2, it, true, ph("first_byte", 10)),
				att(exp, "runc", 2, it, exp == "run-1" || it == 0, ph("first_byte", 12)),
			)
		}
	}
	set.Attempts = append(set.Attempts, results.Attempt{Type: results.TypeAttempt, ExperimentID: "run-1", Runtime: "runc", Scale: 2, Iteration: -1, Warmup: true})
	d := newData(set)
	c := d.cells[cellKey{"knative", "runc", 2}]
	if !slices.Equal(c.responded, []int{2, 2, 2, 1}) {
		t.Errorf("responded = %v, want [2 2 2 1]", c.responded)
	}
}

func TestOptions(t *testing.T) {
	set := readSet(t, labRecords)
	if _, err := Figures(set, Options{Scales: []int{3}}); err == nil || !strings.Contains(err.Error(), "N = 1, 2, 4") {
		t.Errorf("N = 3: %v", err)
	}
	figs, err := Figures(set, Options{Scales: []int{4, 2, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if got := figureNames(figs); !slices.Equal(got, []string{"latency-vs-n", "responded",
		"latency-n4", "p99-n4", "cdf-n4", "phases-n4", "latency-n2", "p99-n2", "cdf-n2", "phases-n2"}) {
		t.Errorf("figures = %v", got)
	}
	if _, err := Figures(&results.Set{}, Options{}); err == nil {
		t.Error("no attempts: want an error")
	}
	dir := t.TempDir()
	if _, err := WriteDir(dir, set, Options{Formats: []string{"gif"}}); err == nil {
		t.Error("format gif: want an error")
	}
	paths, err := WriteDir(filepath.Join(dir, "new"), set, Options{Formats: []string{FormatSVG}})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 6 {
		t.Errorf("wrote %v, want 6 SVGs", paths)
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || fi.Size() < 2000 {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := WriteFiles(dir, []string{filepath.Join(dir, "missing.jsonl")}, Options{}); err == nil {
		t.Error("missing file: want an error")
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{0, 1650, []string{"0", "250", "500", "750", "1000", "1250", "1500"}},
		{0, 0.9, []string{"0.0", "0.2", "0.4", "0.6", "0.8"}}, // same decimals on all
		{470, 1580, []string{"600", "800", "1000", "1200", "1400"}},
	} {
		var got []string
		for _, tk := range (cleanTicks{}).Ticks(tc.lo, tc.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ticks(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
	}
	var got []string
	for _, tk := range (cleanTicks{integer: true}).Ticks(0, 4.4) {
		got = append(got, tk.Label)
	}
	if !slices.Equal(got, []string{"0", "1", "2", "3", "4"}) {
		t.Errorf("integer ticks = %q", got)
	}
}
