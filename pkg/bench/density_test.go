package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/report"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// The "dense" platform keeps instances like a node: per runtime, an
// instance answers while fewer than spec.dense.capacity[runtime] run, its
// first byte takes 1 ms per instance running when it started, and each one
// kept takes spec.dense.perInstance bytes from MemAvailable.
func init() {
	bench.Register(bench.Backend{
		Name:       "dense",
		Summary:    "in memory, instances kept",
		NewSection: func() bench.Section { return &denseSpec{} },
		Density:    true,
		Open: func(exp *bench.Experiment, _ *slog.Logger) (bench.Platform, error) {
			s := exp.Spec.Section("dense").(*denseSpec)
			return &densePlatform{spec: *s}, nil
		},
	})
}

type denseSpec struct {
	Capacity    map[string]int `json:"capacity,omitempty"`
	Total       int64          `json:"total,omitempty"`
	PerInstance int64          `json:"perInstance,omitempty"`
}

func (*denseSpec) Complete()                {}
func (*denseSpec) Validate(*bench.Problems) {}

type densePlatform struct {
	spec denseSpec
	mu   sync.Mutex
	// running is the instances kept now; steps are the cells Add measured;
	// removed is what each RemoveKept removed, and the ctx error it saw.
	running  int
	steps    []bench.Cell
	removed  []int
	rmCtxErr []error
	// cancelAt, if set, runs at the start of Add call i.
	cancelAt func(i int)
	// lose[i] kept instances stop running after Add call i (OOM-killed).
	lose map[int]int
}

func (*densePlatform) Name() string                                            { return "dense" }
func (*densePlatform) Checks(context.Context, *bench.Experiment) []bench.Check { return nil }
func (p *densePlatform) Open(context.Context, *bench.Experiment, string, map[bench.CellKey]bool) (bench.Session, error) {
	return p, nil
}
func (*densePlatform) Clean(context.Context, string) (int, error) { return 0, nil }
func (*densePlatform) Close() error                               { return nil }
func (*densePlatform) Describe(context.Context, *results.Testbed) {}

func (p *densePlatform) attempts(ctx context.Context, cell bench.Cell, alive int) []results.Attempt {
	out := make([]results.Attempt, cell.Scale)
	for i := range out {
		a := results.Attempt{Instance: i, Start: time.Now(), Probes: 1}
		switch {
		case ctx.Err() != nil:
			a.ErrorClass, a.Error = results.ErrCanceled, ctx.Err().Error()
		case alive+i < p.spec.Capacity[cell.Runtime.Name]:
			ns := int64(alive+1) * int64(time.Millisecond)
			a.OK, a.HTTPStatus, a.TTFBNS, a.TotalNS = true, 200, ns, ns
		default:
			a.ErrorClass, a.Error = results.ErrTimeout, "node full"
		}
		out[i] = a
	}
	return out
}

// ColdStart serves the warm-ups: nothing is kept.
func (p *densePlatform) ColdStart(ctx context.Context, cell bench.Cell) []results.Attempt {
	return p.attempts(ctx, cell, 0)
}

func (p *densePlatform) Add(ctx context.Context, cell bench.Cell) []results.Attempt {
	p.mu.Lock()
	i := len(p.steps)
	p.steps = append(p.steps, cell)
	p.mu.Unlock()
	if p.cancelAt != nil {
		p.cancelAt(i)
	}
	out := p.attempts(ctx, cell, p.running)
	for _, a := range out {
		if a.OK {
			p.running++
		}
	}
	p.running -= p.lose[i]
	return out
}

func (p *densePlatform) KeptRunning(context.Context) (int, error) { return p.running, nil }

func (p *densePlatform) MemAvailable(context.Context) (int64, bool) {
	if p.spec.Total == 0 {
		return 0, false
	}
	return p.spec.Total - int64(p.running)*p.spec.PerInstance, true
}

func (p *densePlatform) RemoveKept(ctx context.Context) error {
	p.removed = append(p.removed, p.running)
	p.rmCtxErr = append(p.rmCtxErr, ctx.Err())
	p.running = 0
	return nil
}

func densityExp(t *testing.T, density, dense string) *bench.Experiment {
	t.Helper()
	exp, err := bench.Decode([]byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n" +
		"  platform: dense\n  runtimes: [{name: a, handler: a}, {name: b, handler: b}]\n" +
		"  requestTimeout: 10s\n  warmups: 1\n  density: " + density + "\n  dense: " + dense + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	return exp
}

// runDensity runs exp on p into a new file and returns the outcome and
// the records.
func runDensity(t *testing.T, ctx context.Context, exp *bench.Experiment, p *densePlatform) (bench.Outcome, []results.Attempt, string) {
	t.Helper()
	r := &bench.Runner{Exp: exp, ID: bench.NewExperimentID(time.Now()), Platform: p}
	h, err := r.Header(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "density.jsonl")
	w, err := results.OpenWithHeader(path, h)
	if err != nil {
		t.Fatal(err)
	}
	r.Out = w
	out, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	set, err := results.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return out, set.Attempts, path
}

// densitySteps summarises a runtime's recorded steps as "alive+n:answered".
func densitySteps(attempts []results.Attempt, runtime string) (steps []string, stop []string) {
	byStep := map[int][2]int{}
	var order []int
	for _, a := range attempts {
		if a.Runtime != runtime || a.Warmup {
			continue
		}
		v, seen := byStep[a.Iteration]
		if !seen {
			order = append(order, a.Iteration)
			v[0] = a.Density.Alive
		}
		if a.OK {
			v[1]++
		}
		byStep[a.Iteration] = v
		if len(a.Density.Stop) > 0 {
			stop = a.Density.Stop
		}
	}
	for _, it := range order {
		n := 0
		for _, a := range attempts {
			if a.Runtime == runtime && a.Iteration == it && !a.Warmup {
				n++
			}
		}
		steps = append(steps, fmt.Sprintf("%d+%d:%d", byStep[it][0], n, byStep[it][1]))
	}
	return steps, stop
}

func TestDensityStopsAtFirstFailureAndRemovesKept(t *testing.T) {
	exp := densityExp(t, "{step: 5, max: 100}", "{capacity: {a: 23, b: 12}}")
	p := &densePlatform{spec: *exp.Spec.Section("dense").(*denseSpec)}
	out, attempts, _ := runDensity(t, context.Background(), exp, p)
	steps, stop := densitySteps(attempts, "a")
	if want := []string{"0+5:5", "5+5:5", "10+5:5", "15+5:5", "20+5:3"}; !slices.Equal(steps, want) {
		t.Errorf("runtime a's steps %v, want %v", steps, want)
	}
	if len(stop) != 1 || !strings.Contains(stop[0], "failed 2/5") {
		t.Errorf("runtime a stopped because %q, want the failed share", stop)
	}
	steps, _ = densitySteps(attempts, "b")
	if want := []string{"0+5:5", "5+5:5", "10+5:2"}; !slices.Equal(steps, want) {
		t.Errorf("runtime b's steps %v, want %v", steps, want)
	}
	// Only the stopping step records the stop; warm-ups record no density.
	for _, a := range attempts {
		switch {
		case a.Warmup && a.Density != nil:
			t.Errorf("warm-up %+v has a density", a)
		case !a.Warmup && a.Density == nil:
			t.Errorf("step attempt %+v has no density", a)
		case !a.Warmup && len(a.Density.Stop) > 0 && a.Density.Alive != 20 && a.Density.Alive != 10:
			t.Errorf("a step that did not stop the run records a stop: %+v", a.Density)
		}
	}
	// Each runtime's kept instances are removed before the next starts.
	if !slices.Equal(p.removed, []int{23, 12}) {
		t.Errorf("RemoveKept removed %v, want [23 12]", p.removed)
	}
	if out.Interrupted || out.DeadlineHit || out.SkippedCells != 0 || out.CutCells != 0 {
		t.Errorf("outcome %+v: want a run that ended on its stop conditions", out)
	}
	if out.Failures != 2+3 {
		t.Errorf("%d failures, want 5", out.Failures)
	}
}

func TestDensityStopConditions(t *testing.T) {
	const gi = int64(1) << 30
	cases := []struct {
		name, density, dense string
		wantSteps            []string
		wantStop             string
	}{
		{"cap cuts the last step", "{step: 5, max: 12}", "{capacity: {a: 100, b: 100}}",
			[]string{"0+5:5", "5+5:5", "10+2:2"}, "cap of 12 instances reached"},
		{"failed share allowed", "{step: 10, max: 100, maxFailedShare: 0.3}", "{capacity: {a: 27, b: 27}}",
			[]string{"0+10:10", "10+10:10", "20+10:7", "27+10:0"}, "no instance of the step answered"},
		// 1 ms per running instance: the median passes 12 ms at alive 12.
		{"latency bound", "{step: 4, max: 100, maxLatency: 12ms}", "{capacity: {a: 100, b: 100}}",
			[]string{"0+4:4", "4+4:4", "8+4:4", "12+4:4"}, "median first byte 13ms, above maxLatency 12ms"},
		// 10 GiB, 1 GiB per instance, floor 4 GiB: after 5 (5 GiB left),
		// one more step like the last would leave 0.
		{"memory floor foreseen", "{step: 5, max: 100, minMemAvailable: 4Gi}", fmt.Sprintf("{capacity: {a: 100, b: 100}, total: %d, perInstance: %d}", 10*gi, gi),
			[]string{"0+5:5"}, "would fall below minMemAvailable 4096 MiB"},
		{"memory floor crossed", "{step: 3, max: 100, minMemAvailable: 4Gi}", fmt.Sprintf("{capacity: {a: 100, b: 100}, total: %d, perInstance: %d}", 10*gi, 3*gi),
			[]string{"0+3:3"}, "MemAvailable 1024 MiB, below minMemAvailable 4096 MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exp := densityExp(t, c.density, c.dense)
			p := &densePlatform{spec: *exp.Spec.Section("dense").(*denseSpec)}
			_, attempts, _ := runDensity(t, context.Background(), exp, p)
			steps, stop := densitySteps(attempts, "a")
			if !slices.Equal(steps, c.wantSteps) {
				t.Errorf("steps %v, want %v", steps, c.wantSteps)
			}
			if !strings.Contains(strings.Join(stop, "; "), c.wantStop) {
				t.Errorf("stopped because %q, want %q", stop, c.wantStop)
			}
		})
	}
}

// Kept instances that stop running (the OOM killer) are counted, stop the
// run, and are not in the capacity.
func TestDensityLostInstances(t *testing.T) {
	exp := densityExp(t, "{step: 5, max: 100}", "{capacity: {a: 100, b: 100}}")
	p := &densePlatform{spec: *exp.Spec.Section("dense").(*denseSpec), lose: map[int]int{1: 2}}
	_, attempts, path := runDensity(t, context.Background(), exp, p)
	steps, stop := densitySteps(attempts, "a")
	if want := []string{"0+5:5", "5+5:5"}; !slices.Equal(steps, want) || len(stop) != 1 || !strings.Contains(stop[0], "2 kept instance(s) no longer running") {
		t.Errorf("steps %v, stop %q; want %v and the loss", steps, stop, want)
	}
	m, err := stats.NewModel().Load(context.Background(), results.ReadOptions{}, path)
	if err != nil {
		t.Fatal(err)
	}
	if d := m.Densities()[0]; d.Capacity != 8 || d.Steps[1].Lost != 2 {
		t.Errorf("density %+v: want capacity 8, 2 lost at step 1", d)
	}
}

// A runtime none of whose instances answered is a broken set-up: the
// outcome names it (exit 4), it is not a capacity of 0.
func TestDensityNoAnswer(t *testing.T) {
	exp := densityExp(t, "{step: 5, max: 100}", "{capacity: {a: 0, b: 7}}")
	p := &densePlatform{spec: *exp.Spec.Section("dense").(*denseSpec)}
	out, _, _ := runDensity(t, context.Background(), exp, p)
	if out.DensityNoAnswer != "a" {
		t.Errorf("DensityNoAnswer %q, want a", out.DensityNoAnswer)
	}
}

func TestDensityInterruptRemovesKeptAndSkipsTheRest(t *testing.T) {
	exp := densityExp(t, "{step: 5, max: 100}", "{capacity: {a: 100, b: 100}}")
	p := &densePlatform{spec: *exp.Spec.Section("dense").(*denseSpec)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.cancelAt = func(i int) {
		if i == 3 {
			cancel() // Ctrl-C during runtime a's fourth step
		}
	}
	out, attempts, _ := runDensity(t, ctx, exp, p)
	steps, stop := densitySteps(attempts, "a")
	if want := []string{"0+5:5", "5+5:5", "10+5:5"}; !slices.Equal(steps, want) || stop != nil {
		t.Errorf("steps %v (stop %q), want %v recorded and the cut one not, no stop", steps, stop, want)
	}
	if s, _ := densitySteps(attempts, "b"); len(s) != 0 {
		t.Errorf("runtime b ran %v after the interrupt", s)
	}
	// The kept instances are removed with a context the interrupt did not
	// cancel.
	if len(p.removed) != 1 || p.removed[0] != 15 || p.rmCtxErr[0] != nil {
		t.Errorf("RemoveKept removed %v with ctx error %v; want 15 with a live context", p.removed, p.rmCtxErr)
	}
	if !out.Interrupted || out.CutCells != 1 || out.SkippedCells != 1 {
		t.Errorf("outcome %+v: want interrupted, one cell cut, runtime b skipped", out)
	}
}

func TestDensityRefusesResume(t *testing.T) {
	exp := densityExp(t, "{step: 5, max: 10}", "{capacity: {a: 100, b: 100}}")
	p := &densePlatform{spec: *exp.Spec.Section("dense").(*denseSpec)}
	_, _, path := runDensity(t, context.Background(), exp, p)
	_, err := bench.LoadResume(path, nil)
	if err == nil || !strings.Contains(err.Error(), "density run, which cannot be resumed") {
		t.Fatalf("LoadResume of a density run: %v, want a refusal saying why", err)
	}
}

func TestDensityValidation(t *testing.T) {
	cases := []struct{ spec, want string }{
		{"density: {step: 0, max: 10}\n  platform: dense", ""}, // step 0 is the default
		{"density: {step: -1}\n  platform: dense", "spec.density.step (--step): -1"},
		{"density: {step: 20, max: 10}\n  platform: dense", "spec.density.step (--step): 20 is above spec.density.max 10"},
		{"density: {max: 5000}\n  platform: dense", "spec.density.max (--max): 5000 is above the cap of 1000"},
		{"density: {maxFailedShare: 1}\n  platform: dense", "spec.density.maxFailedShare (--max-failed-share): 1"},
		{"density: {maxLatency: 10s}\n  platform: dense", "spec.density.maxLatency (--max-latency): 10s is not below spec.requestTimeout 10s"},
		{"density: {minMemAvailable: -1Gi}\n  platform: dense", "spec.density.minMemAvailable (--min-mem-available): -1Gi"},
		{"density: {step: 5}\n  scales: [1]\n  platform: dense", "spec.scales: [1] set with spec.density"},
		{"density: {step: 5}\n  platform: limits", "the limits platform does not run density experiments yet"},
	}
	for _, c := range cases {
		exp, err := bench.Decode([]byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n" +
			"  runtimes: [{name: a, handler: a}]\n  requestTimeout: 10s\n  " + c.spec + "\n"))
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		err = exp.CompleteAndValidate(false)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.spec, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error containing %q", c.spec, err, c.want)
		}
	}
}

// The report reads a density run from its records alone: each step against
// the density it met, and each runtime's capacity with the reason.
func TestDensityReport(t *testing.T) {
	exp := densityExp(t, "{step: 5, max: 100}", "{capacity: {a: 23, b: 12}}")
	p := &densePlatform{spec: *exp.Spec.Section("dense").(*denseSpec)}
	_, _, path := runDensity(t, context.Background(), exp, p)
	m, err := stats.NewModel().Load(context.Background(), results.ReadOptions{}, path)
	if err != nil {
		t.Fatal(err)
	}
	ds := m.Densities()
	if len(ds) != 2 || ds[0].Runtime != "a" || ds[0].Capacity != 23 || ds[1].Capacity != 12 || len(ds[0].Steps) != 5 {
		t.Fatalf("densities %+v: want a (capacity 23, 5 steps) and b (12)", ds)
	}
	if s := ds[0].Steps[4]; s.Alive != 20 || s.N != 5 || s.Answered != 3 || s.TTFB.P50 != 21e6 {
		t.Errorf("a's last step %+v: want 3/5 answered at alive 20, p50 21 ms", s)
	}
	var text, js bytes.Buffer
	if err := report.Write(&text, report.FormatTable, m, report.MetaFromModel(m, path)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"density", "a density run's rows pool its steps", "a (" + ds[0].ExperimentID + "): capacity 23 instances; stopped: failed 2/5", "b (" + ds[1].ExperimentID + "): capacity 12 instances"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	t.Logf("report:\n%s", text.String())
	if err := report.Write(&js, report.FormatJSON, m, report.MetaFromModel(m, path)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"capacity": 23`) || !strings.Contains(js.String(), `"alive_before": 20`) {
		t.Errorf("JSON report lacks the density section:\n%s", js.String())
	}
}
