package bench_test

import (
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
	"github.com/coldbench/coldbench/pkg/capacity"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// The "limits" platform answers every instance of a cell up to its
// runtime's limit (spec.limits.<runtime>) and only that many above it: a
// lab whose capacity per runtime is known, for the capacity search.
func init() {
	bench.Register(bench.Backend{
		Name:       "limits",
		Summary:    "in memory, a capacity per runtime",
		NewSection: func() bench.Section { return &limitsSpec{} },
		Open: func(exp *bench.Experiment, _ *slog.Logger) (bench.Platform, error) {
			return &limitsPlatform{limits: exp.Spec.Section("limits").(*limitsSpec).Limits}, nil
		},
	})
}

type limitsSpec struct {
	Limits map[string]int `json:"limits,omitempty"`
}

func (*limitsSpec) Complete()                {}
func (*limitsSpec) Validate(*bench.Problems) {}

// limitsPlatform is its own session; it records the cells it measured.
// cancelAt, if set, is called with the number of the call (0-based) at the
// start of each ColdStart (an interrupt mid-cell).
type limitsPlatform struct {
	limits   map[string]int
	mu       sync.Mutex
	cells    []bench.Cell
	cancelAt func(i int)
}

func (*limitsPlatform) Name() string                                            { return "limits" }
func (*limitsPlatform) Checks(context.Context, *bench.Experiment) []bench.Check { return nil }
func (p *limitsPlatform) Open(context.Context, *bench.Experiment, string, map[bench.CellKey]bool) (bench.Session, error) {
	return p, nil
}
func (*limitsPlatform) Clean(context.Context, string) (int, error) { return 0, nil }
func (*limitsPlatform) Close() error                               { return nil }
func (*limitsPlatform) Describe(context.Context, *results.Testbed) {}

func (p *limitsPlatform) ColdStart(ctx context.Context, cell bench.Cell) []results.Attempt {
	p.mu.Lock()
	i := len(p.cells)
	p.cells = append(p.cells, cell)
	p.mu.Unlock()
	if p.cancelAt != nil {
		p.cancelAt(i)
	}
	out := make([]results.Attempt, cell.Scale)
	for inst := range out {
		a := results.Attempt{Instance: inst, Start: time.Now(), Probes: 1}
		switch {
		case ctx.Err() != nil:
			a.ErrorClass, a.Error = results.ErrCanceled, ctx.Err().Error()
		case inst < p.limits[cell.Runtime.Name]:
			a.OK, a.HTTPStatus, a.TTFBNS, a.TotalNS = true, 200, int64(inst+1), int64(inst+1)
		default:
			a.ErrorClass, a.Error = results.ErrTimeout, "over the limit"
		}
		out[inst] = a
	}
	return out
}

// searchExp is a search over runtimes a (capacity 37) and b (capacity 300)
// from N = 1 to 1000, exact, two iterations per probe, one warm-up.
func searchExp(t *testing.T) *bench.Experiment {
	t.Helper()
	exp, err := bench.Decode([]byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n" +
		"  platform: limits\n  runtimes: [{name: a, handler: a}, {name: b, handler: b}]\n" +
		"  warmups: 1\n  search: {startN: 1, maxN: 1000, iterations: 2}\n  limits: {limits: {a: 37, b: 300}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	return exp
}

// runSession runs one session of the search on p into path (a new file,
// or appended to on resume) and returns its outcome.
func runSession(t *testing.T, ctx context.Context, exp *bench.Experiment, id string, p *limitsPlatform, path string, res *bench.Resumption) bench.Outcome {
	t.Helper()
	r := &bench.Runner{Exp: exp, ID: id, Platform: p}
	if res != nil {
		r.Done, r.Answered, r.Session = res.Done, res.Answered, res.Session
	}
	h, err := r.Header(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w, err := results.OpenWithHeader(path, h)
	if err != nil {
		t.Fatal(err)
	}
	r.Out = w
	out, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// recordedResult replays the file's cells of runtime rt through the
// search's rules, as --resume and the report do.
func recordedResult(t *testing.T, exp *bench.Experiment, path, rt string) capacity.Result {
	t.Helper()
	set, err := results.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	o := capacity.Outcomes{}
	counts := map[[2]int]int{}
	for _, a := range set.Attempts {
		if a.Runtime != rt || a.Warmup {
			continue
		}
		k := [2]int{a.Scale, a.Iteration}
		counts[k] += 0
		if a.OK {
			counts[k]++
		}
	}
	for k, answered := range counts {
		o.Add(k[0], k[1], answered)
	}
	return exp.Spec.Search.Result(o)
}

func cellName(c bench.Cell) string {
	return fmt.Sprintf("%s/%d/%d", c.Runtime.Name, c.Scale, c.Iteration)
}

func TestCapacitySearchEndToEnd(t *testing.T) {
	exp := searchExp(t)
	p := &limitsPlatform{limits: map[string]int{"a": 37, "b": 300}}
	path := filepath.Join(t.TempDir(), "search.jsonl")
	out := runSession(t, context.Background(), exp, bench.NewExperimentID(time.Now()), p, path, nil)
	if out.Interrupted || out.DeadlineHit || out.SkippedCells+out.CutCells > 0 {
		t.Fatalf("outcome %+v", out)
	}
	// Warm-ups first (at the start N), then the runtimes take turns.
	if got := cellName(p.cells[0]) + " " + cellName(p.cells[1]); got != "a/1/-1 b/1/-1" || !p.cells[0].Warmup {
		t.Errorf("first cells %s, want the warm-ups a/1/-1 b/1/-1", got)
	}
	if got := cellName(p.cells[2]) + " " + cellName(p.cells[3]); got != "a/1/0 b/1/0" {
		t.Errorf("cells 3 and 4: %s, want a/1/0 b/1/0", got)
	}
	seen := map[string]bool{}
	for _, c := range p.cells {
		if seen[cellName(c)] {
			t.Errorf("cell %s measured twice", cellName(c))
		}
		seen[cellName(c)] = true
	}
	for rt, want := range map[string]int{"a": 37, "b": 300} {
		r := recordedResult(t, exp, path, rt)
		if !r.Done || r.Largest != want || r.SmallestFailing != want+1 {
			t.Errorf("runtime %s: %+v, want capacity %d exactly", rt, r, want)
		}
	}
	set, err := results.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Attempts) != out.Attempts {
		t.Errorf("%d records, outcome says %d attempts", len(set.Attempts), out.Attempts)
	}
	// The report reads the same answer from the file.
	m, err := stats.Load(context.Background(), results.ReadOptions{}, path)
	if err != nil {
		t.Fatal(err)
	}
	caps := m.Capacities()
	if len(caps) != 2 || caps[0].Runtime != "a" || caps[0].Result.Largest != 37 || caps[1].Result.SmallestFailing != 301 {
		t.Errorf("report's capacities %+v", caps)
	}
	// The header says it was a search, with its rules.
	if !strings.Contains(fmt.Sprint(set.Headers[0].Experiment), "search:map[iterations:2 maxN:1000 resolution:0 share:1 startN:1]") {
		t.Errorf("header's experiment lacks spec.search: %v", set.Headers[0].Experiment)
	}
}

// An interrupted search, resumed from its records file, ends with the same
// answer and measures exactly the cells an uninterrupted search measures,
// never one its file already holds: for an interrupt at every cell.
func TestCapacitySearchResumed(t *testing.T) {
	exp := searchExp(t)
	whole := &limitsPlatform{limits: map[string]int{"a": 37, "b": 300}}
	runSession(t, context.Background(), exp, bench.NewExperimentID(time.Now()), whole, filepath.Join(t.TempDir(), "whole.jsonl"), nil)
	var want []string
	for _, c := range whole.cells {
		want = append(want, cellName(c))
	}
	slices.Sort(want)

	step := 3
	if testing.Short() {
		step = 11
	}
	for stop := 0; stop < len(whole.cells); stop += step {
		path := filepath.Join(t.TempDir(), "cut.jsonl")
		ctx, cancel := context.WithCancel(context.Background())
		first := &limitsPlatform{limits: whole.limits, cancelAt: func(i int) {
			if i == stop {
				cancel() // during cell i: it is cut short, not recorded
			}
		}}
		id := bench.NewExperimentID(time.Now())
		out := runSession(t, ctx, exp, id, first, path, nil)
		cancel()
		if !out.Interrupted || out.CutCells != 1 {
			t.Fatalf("stop %d: outcome %+v, want interrupted with one cell cut", stop, out)
		}
		res, err := bench.LoadResume(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		second := &limitsPlatform{limits: whole.limits}
		out2 := runSession(t, context.Background(), res.Exp, res.ID, second, path, res)
		if out2.Interrupted || out2.ResumedFrom != stop {
			t.Fatalf("stop %d: resumed outcome %+v, want %d cells replayed", stop, out2, stop)
		}
		var got []string
		for _, c := range first.cells[:stop] {
			got = append(got, cellName(c))
		}
		for _, c := range second.cells {
			if res.Done[bench.CellKey{Runtime: c.Runtime.Name, Scale: c.Scale, Iteration: c.Iteration}] {
				t.Errorf("stop %d: resumed session measured recorded cell %s again", stop, cellName(c))
			}
			got = append(got, cellName(c))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("stop %d: cells %v, want those of the uninterrupted search %v", stop, got, want)
		}
		for rt, limit := range whole.limits {
			if r := recordedResult(t, exp, path, rt); r.Largest != limit || r.SmallestFailing != limit+1 {
				t.Errorf("stop %d: runtime %s: %+v, want capacity %d", stop, rt, r, limit)
			}
		}
	}
}

// A probe where nothing answered (every instance timed out, say) is an
// outcome like any other: a search resumed after it goes on, to the same
// answer, for an interrupt at every cell.
func TestCapacitySearchResumedAfterAProbeNobodyAnswered(t *testing.T) {
	exp := searchExp(t)
	limits := map[string]int{"a": 0, "b": 5}
	whole := &limitsPlatform{limits: limits}
	runSession(t, context.Background(), exp, bench.NewExperimentID(time.Now()), whole, filepath.Join(t.TempDir(), "whole.jsonl"), nil)
	for stop := 1; stop < len(whole.cells); stop++ {
		path := filepath.Join(t.TempDir(), "cut.jsonl")
		ctx, cancel := context.WithCancel(context.Background())
		first := &limitsPlatform{limits: limits, cancelAt: func(i int) {
			if i == stop {
				cancel()
			}
		}}
		runSession(t, ctx, exp, bench.NewExperimentID(time.Now()), first, path, nil)
		cancel()
		res, err := bench.LoadResume(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		second := &limitsPlatform{limits: limits}
		runSession(t, context.Background(), res.Exp, res.ID, second, path, res) // fails t if the resume does
		for rt, limit := range limits {
			if got := recordedResult(t, exp, path, rt); got.Largest != limit || got.SmallestFailing != limit+1 {
				t.Errorf("stop %d: runtime %s: %+v, want capacity %d", stop, rt, got, limit)
			}
		}
	}
}

// spec.search's problems name the field, its flag and the fix.
func TestCapacitySearchValidation(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"scales: [1, 4]\n  search: {maxN: 10}", "spec.scales: [1 4] set with spec.search"},
		{"search: {maxN: 5000}", "spec.search.maxN (--max-n): 5000 is above 1000; pass --force"},
		{"search: {startN: 8, maxN: 4}", "spec.search.maxN (--max-n): 4 is below spec.search.startN (--start-n) 8"},
		{"search: {share: 2}", "spec.search.share (--share): 2"},
		{"search: {maxN: 10, stepN: 3}", `unknown field "spec.search.stepN"`},
	} {
		exp, err := bench.Decode([]byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n" +
			"  platform: limits\n  runtimes: [{name: a, handler: a}]\n  " + c.yaml + "\n"))
		if err == nil {
			err = exp.CompleteAndValidate(false)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.yaml, err, c.want)
		}
	}
}
