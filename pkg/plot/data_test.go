package plot

import (
	"context"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
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
// order, each bar in its own; a tie in every runtime shares one segment,
// a tie in one runtime only leaves that phase without a segment there (and
// says so), never a negative one.
func TestPhaseStacking(t *testing.T) {
	set := &results.Set{}
	for i := range 3 {
		set.Attempts = append(set.Attempts,
			att("e", "kata", 1, i, true, ph("pod_scheduled", 100), ph("revision_ready", 900), ph("queue_proxy_ready", 950),
				ph("pod_ready", 950), ph("first_byte", 1000)),
			// urunc: queue_proxy_ready (with pod_ready, as for kata) before
			// revision_ready, and revision_ready at the first byte.
			att("e", "urunc", 1, i, true, ph("pod_scheduled", 80), ph("queue_proxy_ready", 300), ph("pod_ready", 300),
				ph("revision_ready", 450), ph("first_byte", 450)))
	}
	d := newData(set)
	cells := d.cellsAt(1)
	order := d.phaseOrder(cells)
	// Mean of the medians: pod_scheduled 90, queue_proxy_ready = pod_ready
	// 625, revision_ready 675, first_byte 725.
	if want := []string{"pod_scheduled", "queue_proxy_ready", "pod_ready", "revision_ready", "first_byte"}; !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
	groups := d.phaseGroups(cells, order)
	var labels []string
	for _, g := range groups {
		labels = append(labels, g.label())
	}
	if want := []string{"pod_scheduled", "queue_proxy_ready\n= pod_ready", "revision_ready", "first_byte"}; !slices.Equal(labels, want) {
		t.Errorf("groups = %q, want %q", labels, want)
	}
	wantSeq := map[string][]string{
		"kata":  {"pod_scheduled", "revision_ready", "queue_proxy_ready", "first_byte"},
		"urunc": {"pod_scheduled", "queue_proxy_ready", "revision_ready", "first_byte"},
	}
	for _, c := range cells {
		top := 0.0
		var seq []string
		for _, st := range c.phaseSteps(groups) {
			if st.to < st.from || st.from != top {
				t.Errorf("%s: segment %+v does not continue the stack at %v", c.series.label, st, top)
			}
			if st.empty != (c.series.runtime == "urunc" && groups[st.group].names[0] == "first_byte") {
				t.Errorf("%s: segment %+v: empty = %v", c.series.label, st, st.empty)
			}
			top = st.to
			seq = append(seq, groups[st.group].names[0])
		}
		if want := map[string]float64{"kata": 1000, "urunc": 450}[c.series.runtime]; top != want {
			t.Errorf("%s: stack top %v, want the median first_byte %v", c.series.runtime, top, want)
		}
		if !slices.Equal(seq, wantSeq[c.series.runtime]) {
			t.Errorf("%s: stacked %v, want %v", c.series.runtime, seq, wantSeq[c.series.runtime])
		}
	}
	fig := d.phasesFigure(1)
	if fig == nil {
		t.Fatal("no phase figure")
	}
	notes := strings.Join(fig.Notes, " ")
	for _, want := range []string{"No segment of their own (median not after the segment below; ms): urunc: first_byte 450.",
		"each bar stacks them in its own time order", "phases with equal medians share one (= in the legend)"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q: %q", want, notes)
		}
	}
	svg, err := fig.SVG()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		if !strings.Contains(string(svg), name+"<") {
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
	if _, err := Figures(set, Options{Scales: []int{3}}); err == nil || !strings.Contains(err.Error(), "N = 1, 5, 10") {
		t.Errorf("N = 3: %v", err)
	}
	figs, err := Figures(set, Options{Scales: []int{10, 5, 10}})
	if err != nil {
		t.Fatal(err)
	}
	if got := figureNames(figs); !slices.Equal(got, []string{"latency-vs-n", "responded",
		"latency-n10", "p99-n10", "cdf-n10", "phases-n10", "latency-n5", "p99-n5", "cdf-n5", "phases-n5"}) {
		t.Errorf("figures = %v", got)
	}
	if _, err := Figures(&results.Set{}, Options{}); err == nil {
		t.Error("no attempts: want an error")
	}
	dir := t.TempDir()
	if _, err := WriteDir(context.Background(), dir, set, Options{Formats: []string{"gif"}}); err == nil {
		t.Error("format gif: want an error")
	}
	paths, err := WriteDir(context.Background(), filepath.Join(dir, "new"), set, Options{Formats: []string{FormatSVG}})
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
	if _, _, err := WriteFiles(context.Background(), dir, []string{filepath.Join(dir, "missing.jsonl")}, Options{}, results.ReadOptions{}); err == nil {
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

// TestPhaseColours: every entry of a phase figure has a colour of its own,
// clearly different from the others (CIE76 ΔE ≥ 25, about the least
// difference within Tableau 10), for the lab's Knative phases and for as many
// phases as Knative records that never coincide.
func TestPhaseColours(t *testing.T) {
	check := func(what string, d *data, n int) {
		t.Helper()
		cells := d.cellsAt(n)
		groups := d.phaseGroups(cells, d.phaseOrder(cells))
		for i := range groups {
			for j := range i {
				a, b := d.phaseColor(groups[i]), d.phaseColor(groups[j])
				if de := deltaE(a, b); de < 25 {
					t.Errorf("%s N = %d: %s and %s look alike (ΔE %.0f: %v, %v)", what, n, groups[i].names[0], groups[j].names[0], de, a, b)
				}
			}
		}
	}
	for _, f := range []struct {
		path   string
		phases int
	}{{labBeforeAgent, len(knativePhases)}, {labRecords, len(knativePhases) + 6}} {
		lab := newData(readSet(t, f.path))
		if len(lab.phaseNames) != f.phases {
			t.Fatalf("%s: %d phases, want %d", f.path, len(lab.phaseNames), f.phases)
		}
		for _, n := range lab.scales {
			check(f.path, lab, n)
		}
	}
	set := &results.Set{}
	var phases []results.Phase
	for i := range len(knativePhases) {
		phases = append(phases, ph(fmt.Sprintf("phase_%02d", i), int64(100*(i+1))))
	}
	set.Attempts = append(set.Attempts, att("e", "runc", 1, 0, true, phases...))
	check("phases that never coincide", newData(set), 1)
}

// deltaE is the CIE76 colour difference of a and b (sRGB, D65).
func deltaE(a, b color.Color) float64 {
	lab := func(c color.Color) [3]float64 {
		r, g, b, _ := c.RGBA()
		lin := func(v uint32) float64 {
			c := float64(v) / 0xFFFF
			if c <= 0.04045 {
				return c / 12.92
			}
			return math.Pow((c+0.055)/1.055, 2.4)
		}
		R, G, B := lin(r), lin(g), lin(b)
		x := (0.4124*R + 0.3576*G + 0.1805*B) / 0.95047
		y := 0.2126*R + 0.7152*G + 0.0722*B
		z := (0.0193*R + 0.1192*G + 0.9505*B) / 1.08883
		f := func(t float64) float64 {
			if t > 0.008856 {
				return math.Cbrt(t)
			}
			return 7.787*t + 16.0/116
		}
		return [3]float64{116*f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))}
	}
	p, q := lab(a), lab(b)
	return math.Sqrt((p[0]-q[0])*(p[0]-q[0]) + (p[1]-q[1])*(p[1]-q[1]) + (p[2]-q[2])*(p[2]-q[2]))
}

// A phases figure with runtime-observed phases says which clock they are
// on, and who stamps each event: containerd /containers/create, the shim
// /tasks/start, possibly after the CRI call returned.
func TestPhaseNotesNameTheRuntimeClock(t *testing.T) {
	v := stats.ChoosePhaseView(nil)
	notes := phaseReadingNotes(v, nil, []string{results.PhaseRTSandboxCreated, results.PhaseSandboxReady, results.PhaseFunctionStart, results.PhaseFirstByte}, nil)
	if len(notes) != 3 || !strings.Contains(notes[2], "function_start is read from the function's own (wall) clock; rt_ phases are the wall-clock stamps") {
		t.Errorf("notes %q", notes)
	}
	for _, want := range []string{"containerd stamps /containers/create", "shim stamps /tasks/start", "after the CRI call returned"} {
		if len(notes) == 3 && !strings.Contains(notes[2], want) {
			t.Errorf("notes %q do not say %q", notes[2], want)
		}
	}
	if notes := phaseReadingNotes(v, nil, []string{results.PhaseSandboxReady, results.PhaseFirstByte}, nil); len(notes) != 2 {
		t.Errorf("notes without wall-clock phases: %q", notes)
	}
}

// With rt_ phases in every runtime at an N, its phase figure shows the
// runtime view: the rt_ phases and those before the pod, not the API
// server's sandbox_ready, over the attempts with rt_ phases only; its
// notes say so and name the medians out of causal order (function_start
// before rt_user_container_started), while each bar still stacks by median
// (no negative segment). Without them at another N, that N is as before.
func TestPhaseFigureRuntimeView(t *testing.T) {
	set := &results.Set{}
	for i := range 5 {
		for _, rt := range []string{"runc", "gvisor"} {
			d := int64(0)
			if rt == "gvisor" {
				d = 300
			}
			a := att("e", rt, 1, i, true, ph("pod_created", 10), ph(results.PhaseRTSandboxCreated, 30), ph(results.PhaseRTSandboxStarted, 60+d),
				ph(results.PhaseRTUserContainerCreated, 70+d), ph(results.PhaseFunctionStart, 80+d), ph(results.PhaseRTUserContainerStarted, 85+d),
				ph(results.PhaseRTQueueProxyCreated, 65+d), ph(results.PhaseRTQueueProxyStarted, 75+d),
				ph(results.PhaseSandboxReady, 200+d), ph(results.PhaseFirstByte, 100+d))
			a.RuntimePhases = results.RuntimePhasesFromAgent
			b := att("e", rt, 5, i, true, ph("pod_created", 10), ph(results.PhaseSandboxReady, 50), ph(results.PhaseFirstByte, 100))
			set.Attempts = append(set.Attempts, a, b)
		}
	}
	// A runc attempt without rt_ phases and a late first byte: left out.
	set.Attempts = append(set.Attempts, att("e", "runc", 1, 9, true, ph("pod_created", 10), ph(results.PhaseFirstByte, 5000)))
	d := newData(set)
	if !d.views[1].Runtime || d.views[5].Runtime {
		t.Fatalf("views %+v", d.views)
	}
	f := d.phasesFigure(1)
	notes := strings.Join(f.Notes, "\n")
	for _, want := range []string{"Runtime view: containerd's events (node agent)", "(runc at N=1: 5 of 6 successful attempts have all rt_ phases)",
		"Stacked by median, which is not the order the phases happen in (ms): runc: function_start 80.0 before rt_user_container_started 85.0",
		"the shim stamps /tasks/start"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	cells := d.cellsAt(1)
	order := d.phaseOrder(cells)
	if slices.Contains(order, results.PhaseSandboxReady) || !slices.Contains(order, "pod_created") {
		t.Errorf("runtime view order %v", order)
	}
	for _, c := range cells {
		top := 0.0
		for _, st := range c.phaseSteps(d.phaseGroups(cells, order)) {
			if st.to < st.from || st.from < top {
				t.Errorf("%s: segment %+v is negative or overlaps", c.series.label, st)
			}
			top = st.to
		}
		if fb := stats.Median(c.shown[results.PhaseFirstByte]); c.series.runtime == "runc" && fb != 100 {
			t.Errorf("runc's median first byte %g: the attempt without rt_ phases counted", fb)
		}
	}
	if f5 := strings.Join(d.phasesFigure(5).Notes, "\n"); !strings.Contains(f5, "API-server view: no rt_ phases in these records.") {
		t.Errorf("N=5 notes:\n%s", f5)
	}
}

// TestLabPhasesInCausalOrder is issue 15's acceptance on the lab's golden
// records (with the node agent): each N's phase figure shows the runtime's
// view, and no milestone that must come before the function's own start
// (the pod scheduled, its sandbox created and started, its user container
// created) has a median after function_start. The only inversions left
// are those of a late stamp: the shim stamps /tasks/start (rt_*_started)
// when it forwards the event, after the process may already run.
func TestLabPhasesInCausalOrder(t *testing.T) {
	d := newData(readSet(t, labRecords))
	mustPrecede := []string{results.PhasePodScheduled, results.PhaseRTSandboxCreated, results.PhaseRTSandboxStarted,
		results.PhaseRTUserContainerCreated}
	checked := 0
	for _, n := range d.scales {
		if v := d.views[n]; !v.Runtime {
			t.Errorf("N = %d: the %s view (%s), want the runtime's", n, v.Name, v.Why)
		}
		for _, c := range d.cellsAt(n) {
			checked++
			m := stats.Medians(c.shown)
			for _, name := range append(mustPrecede, results.PhaseFunctionStart) {
				if _, ok := m[name]; !ok {
					t.Errorf("%s at N = %d: no median of %s", c.series.label, n, name)
				}
			}
			for _, name := range mustPrecede {
				if m[name] > m[results.PhaseFunctionStart] {
					t.Errorf("%s at N = %d: %s median %.1f ms after function_start %.1f ms", c.series.label, n, name, m[name], m[results.PhaseFunctionStart])
				}
			}
			for _, x := range stats.Inversions(m) {
				if !strings.HasPrefix(x.Before, results.RuntimePhasePrefix) || !strings.HasSuffix(x.Before, "_started") {
					t.Errorf("%s at N = %d: %s (%.1f ms) before %s (%.1f ms), and %s is not a late shim stamp",
						c.series.label, n, x.After, x.AfterMedian, x.Before, x.BeforeMedian, x.Before)
				}
			}
		}
	}
	if checked != 6 {
		t.Errorf("%d cells checked, want 6 (runc and crun at N = 1, 5, 10)", checked)
	}
}
