package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coldbench/coldbench/internal/testenv/globallog"
	"github.com/coldbench/coldbench/pkg/results"
)

// fakePlatform is an in-memory Platform: ColdStart returns scripted attempts
// and every call is recorded.
type fakePlatform struct {
	mu        sync.Mutex
	cells     []Cell
	ctxErrs   []error // ctx.Err() seen at the start of each ColdStart
	deadlines []time.Time
	cleaned   []string
	cleanErr  []error // ctx.Err() of the context Clean got
	described int
	// hook, if set, runs at the start of ColdStart call i (0-based) with its
	// context; it may block or cancel things.
	hook func(ctx context.Context, i int, cell Cell)
	// step, if set, is the step figures ColdStart reports on its attempts.
	step *results.Step
}

func (f *fakePlatform) Name() string { return "fake" }

func (f *fakePlatform) Checks(context.Context, *Experiment) []Check { return nil }

// Open returns the platform itself: it is its own session.
func (f *fakePlatform) Open(context.Context, *Experiment, string, map[CellKey]bool) (Session, error) {
	return f, nil
}

func (f *fakePlatform) Describe(_ context.Context, tb *results.Testbed) {
	f.mu.Lock()
	f.described++
	f.mu.Unlock()
	if tb.PlatformVersion == nil {
		tb.PlatformVersion = map[string]string{}
	}
	tb.PlatformVersion["fake"] = "1.2.3"
	tb.RuntimeVersions = map[string]string{"a": "a-1"}
}

// failing says whether scripted attempt inst of call i fails.
func failing(i, inst int) bool { return (i+inst)%3 == 0 }

func (f *fakePlatform) ColdStart(ctx context.Context, cell Cell) []results.Attempt {
	f.mu.Lock()
	i := len(f.cells)
	f.cells = append(f.cells, cell)
	f.ctxErrs = append(f.ctxErrs, ctx.Err())
	dl, _ := ctx.Deadline()
	f.deadlines = append(f.deadlines, dl)
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(ctx, i, cell)
	}
	out := make([]results.Attempt, cell.Scale)
	for inst := range out {
		// Fields the runner owns are set to junk: it must overwrite them.
		a := results.Attempt{
			Type: "junk", ExperimentID: "junk", Platform: "junk", Runtime: "junk", Handler: "junk",
			Scale: -7, Iteration: 9999, Warmup: cell.Iteration >= 0,
			LoadAvg: [3]float64{-1, -1, -1},

			Instance: inst,
			Start:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			TTFBNS:   int64(1000*i + inst + 1),
			TotalNS:  int64(2000*i + inst + 1),
			Probes:   1,
			Cold:     results.Cold{SandboxID: fmt.Sprintf("sb-%d-%d", i, inst)},
			Step:     f.step,
		}
		if ctx.Err() != nil {
			a.ErrorClass, a.Error = results.ErrCanceled, ctx.Err().Error()
		} else if failing(i, inst) {
			a.ErrorClass, a.Error = results.ErrTimeout, "scripted failure"
		} else {
			a.OK, a.HTTPStatus = true, 200
		}
		out[inst] = a
	}
	return out
}

func (f *fakePlatform) Clean(ctx context.Context, id string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleaned = append(f.cleaned, id)
	f.cleanErr = append(f.cleanErr, ctx.Err())
	return 2, nil
}

func (f *fakePlatform) Close() error { return nil }

var (
	_ Platform = (*fakePlatform)(nil)
	_ Session  = (*fakePlatform)(nil)
)

// testExp: scales 1 and 3, one warm-up, two iterations, two runtimes.
// 12 cells, (1+3) * (2+1) * 2 = 24 attempts.
func testExp(deadline time.Duration) *Experiment {
	e := Default()
	e.Metadata.Name = "runner-test"
	e.Spec.Runtimes = []Runtime{
		{Name: "a", Handler: "ha"},
		{Name: "b", Handler: ""},
	}
	e.Spec.Scales = []int{1, 3}
	e.Spec.Warmups = 1
	e.Spec.Iterations = 2
	e.Spec.RequestTimeout = Duration{7 * time.Second}
	e.Spec.ProbeInterval = Duration{3 * time.Millisecond}
	e.Spec.Deadline = Duration{deadline}
	return e
}

type cellKey struct {
	Runtime   string
	Handler   string
	Scale     int
	Iteration int
	Warmup    bool
}

// wantOrder is the documented order for testExp, written out by hand.
var wantOrder = []cellKey{
	{"a", "ha", 1, -1, true}, {"b", "", 1, -1, true},
	{"a", "ha", 1, 0, false}, {"b", "", 1, 0, false},
	{"a", "ha", 1, 1, false}, {"b", "", 1, 1, false},
	{"a", "ha", 3, -1, true}, {"b", "", 3, -1, true},
	{"a", "ha", 3, 0, false}, {"b", "", 3, 0, false},
	{"a", "ha", 3, 1, false}, {"b", "", 3, 1, false},
}

func keyOf(c Cell) cellKey {
	return cellKey{c.Runtime.Name, c.Runtime.Handler, c.Scale, c.Iteration, c.Warmup}
}

type harness struct {
	r    *Runner
	fp   *fakePlatform
	path string
	prog []int // done values passed to OnAttempts
	tot  []int
}

func newHarness(t *testing.T, exp *Experiment) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.jsonl")
	w, err := results.OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	h := &harness{fp: &fakePlatform{}, path: path}
	h.r = &Runner{
		Exp:      exp,
		ID:       "cb-20260101t000000-abcdef",
		Platform: h.fp,
		Out:      w,
		Log:      slog.New(slog.DiscardHandler),
		OnAttempts: func(done, total int, batch []results.Attempt) {
			h.prog = append(h.prog, done)
			h.tot = append(h.tot, total)
		},
	}
	return h
}

// read decodes the records the runner wrote, line by line. Not through
// results.ReadFile: some tests run the runner without WriteHeader, and
// the reader refuses attempts that no header introduces.
func (h *harness) read(t *testing.T) *results.Set {
	t.Helper()
	b, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	s := &results.Set{}
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var typ struct{ Type string }
		if err := json.Unmarshal([]byte(l), &typ); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		var err error
		if typ.Type == results.TypeHeader {
			var hd results.Header
			err = json.Unmarshal([]byte(l), &hd)
			s.Headers = append(s.Headers, hd)
		} else {
			var a results.Attempt
			err = json.Unmarshal([]byte(l), &a)
			s.Attempts = append(s.Attempts, a)
		}
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	return s
}

func TestTotalAttempts(t *testing.T) {
	if got := testExp(time.Hour).TotalAttempts(); got != 24 {
		t.Errorf("TotalAttempts = %d, want 24", got)
	}
}

func TestRunFullOrderAndRecords(t *testing.T) {
	exp := testExp(time.Hour)
	h := newHarness(t, exp)
	ctx := context.Background()
	if err := h.r.WriteHeader(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := h.r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Order of cells.
	fp := h.fp
	if len(fp.cells) != len(wantOrder) {
		t.Fatalf("ColdStart called %d times, want %d", len(fp.cells), len(wantOrder))
	}
	for i, c := range fp.cells {
		if got := keyOf(c); got != wantOrder[i] {
			t.Errorf("cell %d = %+v, want %+v", i, got, wantOrder[i])
		}
		if c.ExperimentID != h.r.ID || c.RequestTimeout != 7*time.Second || c.ProbeInterval != 3*time.Millisecond {
			t.Errorf("cell %d: id %q timeout %v probe %v", i, c.ExperimentID, c.RequestTimeout, c.ProbeInterval)
		}
		if fp.ctxErrs[i] != nil {
			t.Errorf("cell %d started with a done context: %v", i, fp.ctxErrs[i])
		}
		// ColdStart runs under the experiment's deadline.
		if d := fp.deadlines[i]; d.IsZero() || d.Before(start.Add(59*time.Minute)) || d.After(time.Now().Add(time.Hour)) {
			t.Errorf("cell %d: context deadline %v, want about start+1h", i, d)
		}
	}

	// File: header first, then exactly TotalAttempts attempts, nothing else.
	b, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 1+exp.TotalAttempts() {
		t.Fatalf("%d lines, want 1 header + %d attempts", len(lines), exp.TotalAttempts())
	}
	var first struct{ Type string }
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Type != results.TypeHeader {
		t.Errorf("first line is not the header: %.100s", lines[0])
	}
	s := h.read(t)
	if len(s.Headers) != 1 || len(s.Attempts) != exp.TotalAttempts() {
		t.Fatalf("%d headers, %d attempts", len(s.Headers), len(s.Attempts))
	}

	hd := s.Headers[0]
	if hd.Schema != results.SchemaVersion || hd.ExperimentID != h.r.ID || hd.Tool.Name != "coldbench" || hd.Tool.Version == "" {
		t.Errorf("header: %+v", hd)
	}
	if hd.Created.IsZero() || hd.Created.After(time.Now()) {
		t.Errorf("header created %v", hd.Created)
	}
	if hd.Testbed.PlatformVersion["fake"] != "1.2.3" || hd.Testbed.Cores <= 0 || fp.described != 1 {
		t.Errorf("testbed not collected/described: %+v (described %d times)", hd.Testbed, fp.described)
	}
	em, ok := hd.Experiment.(map[string]any)
	if !ok {
		t.Fatalf("header experiment is %T", hd.Experiment)
	}
	if md, _ := em["metadata"].(map[string]any); md["name"] != "runner-test" {
		t.Errorf("header experiment metadata: %v", em["metadata"])
	}
	if sp, _ := em["spec"].(map[string]any); sp["deadline"] != "1h0m0s" || sp["iterations"] != float64(2) {
		t.Errorf("header experiment spec: %v", em["spec"])
	}

	// Every attempt carries the runner's fields, in cell order.
	failures := 0
	k := 0
	for ci, want := range wantOrder {
		var load [3]float64
		for inst := 0; inst < want.Scale; inst++ {
			a := s.Attempts[k]
			k++
			if a.Type != results.TypeAttempt || a.ExperimentID != h.r.ID || a.Platform != "fake" {
				t.Errorf("attempt %d: type %q id %q platform %q", k, a.Type, a.ExperimentID, a.Platform)
			}
			got := cellKey{a.Runtime, a.Handler, a.Scale, a.Iteration, a.Warmup}
			if got != want {
				t.Errorf("attempt %d (cell %d): %+v, want %+v", k, ci, got, want)
			}
			if a.Instance != inst || a.Cold.SandboxID != fmt.Sprintf("sb-%d-%d", ci, inst) {
				t.Errorf("attempt %d: platform fields lost: instance %d cold %+v", k, a.Instance, a.Cold)
			}
			for _, v := range a.LoadAvg {
				if v < 0 {
					t.Errorf("attempt %d: LoadAvg %v not filled by the runner", k, a.LoadAvg)
				}
			}
			if inst == 0 {
				load = a.LoadAvg
			} else if a.LoadAvg != load {
				t.Errorf("attempt %d: LoadAvg %v differs within a cell (%v)", k, a.LoadAvg, load)
			}
			if a.OK == failing(ci, inst) {
				t.Errorf("attempt %d: OK=%v, script says failing=%v", k, a.OK, failing(ci, inst))
			}
			if !a.OK {
				failures++
			}
		}
	}
	if failures == 0 {
		t.Fatal("script produced no failures; the test would not check counting")
	}

	want := Outcome{Attempts: exp.TotalAttempts(), Failures: failures}
	if out != want {
		t.Errorf("outcome %+v, want %+v", out, want)
	}
	if len(fp.cleaned) != 0 {
		t.Errorf("Clean called on a complete run: %v", fp.cleaned)
	}

	// Progress: once per cell, cumulative, against the planned total.
	if len(h.prog) != len(wantOrder) {
		t.Fatalf("OnAttempts called %d times", len(h.prog))
	}
	done := 0
	for i, c := range wantOrder {
		done += c.Scale
		if h.prog[i] != done || h.tot[i] != exp.TotalAttempts() {
			t.Errorf("progress %d: %d/%d, want %d/%d", i, h.prog[i], h.tot[i], done, exp.TotalAttempts())
		}
	}
}

func TestRunInterrupted(t *testing.T) {
	exp := testExp(time.Hour)
	h := newHarness(t, exp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const cancelAt = 4 // the 5th cell is cut short by the interrupt
	h.fp.hook = func(cctx context.Context, i int, _ Cell) {
		if i == cancelAt {
			cancel()
			<-cctx.Done()
		}
	}
	out, err := h.r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fp := h.fp
	if len(fp.cells) != cancelAt+1 {
		t.Fatalf("ColdStart called %d times after an interrupt in call %d", len(fp.cells), cancelAt+1)
	}
	for i, c := range fp.cells {
		if keyOf(c) != wantOrder[i] {
			t.Errorf("cell %d = %+v, want %+v", i, keyOf(c), wantOrder[i])
		}
	}
	// The cell cut by the interrupt is not recorded (--resume redoes it).
	attempts, failures := 0, 0
	for i := 0; i < cancelAt; i++ {
		for inst := 0; inst < wantOrder[i].Scale; inst++ {
			attempts++
			if failing(i, inst) {
				failures++
			}
		}
	}
	want := Outcome{
		Attempts:     attempts,
		Failures:     failures,
		SkippedCells: len(wantOrder) - (cancelAt + 1),
		CutCells:     1,
		Interrupted:  true,
	}
	if out != want {
		t.Errorf("outcome %+v, want %+v", out, want)
	}
	if len(fp.cleaned) != 1 || fp.cleaned[0] != h.r.ID {
		t.Errorf("Clean calls %q, want one with %q", fp.cleaned, h.r.ID)
	} else if fp.cleanErr[0] != nil {
		t.Errorf("Clean got a done context (%v); cleanup must outlive the interrupt", fp.cleanErr[0])
	}
	s := h.read(t)
	if len(s.Headers) != 0 || len(s.Attempts) != attempts {
		t.Errorf("file holds %d headers, %d attempts; want 0, %d", len(s.Headers), len(s.Attempts), attempts)
	}
	for _, a := range s.Attempts {
		if a.ErrorClass == results.ErrCanceled {
			t.Errorf("an attempt of the cut cell was recorded: %+v", a)
		}
	}
}

func TestRunCanceledBeforeStart(t *testing.T) {
	h := newHarness(t, testExp(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := h.r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.fp.cells) != 0 {
		t.Errorf("ColdStart called %d times with a canceled context", len(h.fp.cells))
	}
	if want := (Outcome{SkippedCells: len(wantOrder), Interrupted: true}); out != want {
		t.Errorf("outcome %+v, want %+v", out, want)
	}
	if len(h.fp.cleaned) != 1 || h.fp.cleaned[0] != h.r.ID {
		t.Errorf("Clean calls %q", h.fp.cleaned)
	}
}

func TestRunDeadline(t *testing.T) {
	exp := testExp(50 * time.Millisecond)
	h := newHarness(t, exp)
	var sawErr error
	h.fp.hook = func(cctx context.Context, i int, _ Cell) {
		if i == 0 {
			// The first cell runs into the experiment's deadline.
			select {
			case <-cctx.Done():
				sawErr = cctx.Err()
			case <-time.After(10 * time.Second):
				t.Error("ColdStart's context has no deadline")
			}
		}
	}
	start := time.Now()
	out, err := h.r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("run took %v with a 50ms deadline", el)
	}
	if !errors.Is(sawErr, context.DeadlineExceeded) {
		t.Errorf("ColdStart's context ended with %v, want deadline exceeded", sawErr)
	}
	if len(h.fp.cells) != 1 {
		t.Errorf("ColdStart called %d times after the deadline", len(h.fp.cells))
	}
	want := Outcome{SkippedCells: len(wantOrder) - 1, CutCells: 1, DeadlineHit: true}
	if out != want {
		t.Errorf("outcome %+v, want %+v", out, want)
	}
	if len(h.fp.cleaned) != 1 || h.fp.cleaned[0] != h.r.ID || h.fp.cleanErr[0] != nil {
		t.Errorf("Clean calls %q (ctx errs %v), want one with %q and a live context", h.fp.cleaned, h.fp.cleanErr, h.r.ID)
	}
	if s := h.read(t); len(s.Attempts) != 0 {
		t.Errorf("the cell cut by the deadline was recorded: %+v", s.Attempts)
	}
}

func TestRunWriteError(t *testing.T) {
	h := newHarness(t, testExp(time.Hour))
	h.r.Out.Close()
	out, err := h.r.Run(context.Background())
	if err == nil {
		t.Fatal("Run succeeded although records cannot be written")
	}
	if len(h.fp.cells) != 1 || out.Attempts != 0 {
		t.Errorf("Run went on after a write error: %d cells, outcome %+v", len(h.fp.cells), out)
	}
}

var idRE = regexp.MustCompile(`^cb-\d{8}t\d{6}-[0-9a-f]{6}$`)

func TestNewExperimentID(t *testing.T) {
	// Timestamp is UTC whatever the zone of now.
	now := time.Date(2026, 11, 26, 6, 32, 5, 999, time.FixedZone("CET", 3600))
	id := NewExperimentID(now)
	if !idRE.MatchString(id) {
		t.Fatalf("id %q does not match %s", id, idRE)
	}
	if !strings.HasPrefix(id, "cb-20261126t053205-") {
		t.Errorf("id %q: want the UTC time 20261126t053205", id)
	}
	if id2 := NewExperimentID(now.Add(time.Second)); id2 <= id {
		t.Errorf("ids do not sort by time: %q then %q", id, id2)
	}

	// Unique even when created in the same second.
	seen := map[string]bool{}
	for range 1000 {
		id := NewExperimentID(now)
		if !idRE.MatchString(id) {
			t.Fatalf("id %q does not match %s", id, idRE)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q after %d calls", id, len(seen))
		}
		seen[id] = true
	}
	for range 1000 {
		id := NewExperimentID(time.Now())
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

// The runner logs through the logger it is given, and through nothing else:
// the process-wide logger gets no line, also when the runner has none.
func TestRunnerLogsOnlyThroughItsLogger(t *testing.T) {
	_, global := globallog.Capture(t)
	var buf bytes.Buffer
	h := newHarness(t, testExp(time.Hour))
	h.r.Log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, err := h.r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), `msg="cell done"`); n != 12 {
		t.Errorf("%d cell lines in the runner's logger, want 12:\n%s", n, &buf)
	}
	h = newHarness(t, testExp(time.Hour))
	h.r.Log = nil
	if _, err := h.r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if global.Len() > 0 {
		t.Errorf("the runner logged through slog.Default:\n%s", global)
	}
}

// Every attempt of a cell carries the cell's step figures: the set-up and
// teardown its session reported, the step's wall time around them, and the
// CPU the harness burned in it (here, a 30 ms spin in one cell only).
func TestRunRecordsStepFigures(t *testing.T) {
	exp := testExp(time.Hour)
	exp.Spec.Scales, exp.Spec.Warmups, exp.Spec.Iterations = []int{3}, 0, 1
	exp.Spec.Runtimes = exp.Spec.Runtimes[:1]
	h := newHarness(t, exp)
	const setup, teardown = 7 * time.Millisecond, 11 * time.Millisecond
	h.fp.hook = func(_ context.Context, _ int, _ Cell) {
		time.Sleep(setup + teardown)
		for t0 := time.Now(); time.Since(t0) < 30*time.Millisecond; {
		}
	}
	h.fp.step = &results.Step{SetupNS: setup.Nanoseconds(), TeardownNS: teardown.Nanoseconds()}
	if _, err := h.r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	atts := h.read(t).Attempts
	if len(atts) != 3 {
		t.Fatalf("%d attempts, want 3", len(atts))
	}
	first := atts[0].Step
	for i, a := range atts {
		s := a.Step
		if s == nil {
			t.Fatalf("attempt %d has no step", i)
		}
		if *s != *first {
			t.Errorf("attempt %d step %+v differs from attempt 0's %+v: one step, one set of figures", i, *s, *first)
		}
	}
	if first.SetupNS != setup.Nanoseconds() || first.TeardownNS != teardown.Nanoseconds() {
		t.Errorf("setup %d teardown %d: the session's figures were not kept", first.SetupNS, first.TeardownNS)
	}
	if first.WallNS < (setup + teardown + 30*time.Millisecond).Nanoseconds() {
		t.Errorf("wall %v shorter than the step's sleep and spin", time.Duration(first.WallNS))
	}
	if first.HarnessCPUNS <= 0 || first.HarnessCPUNS > first.WallNS*int64(runtime.NumCPU()) {
		t.Errorf("harness CPU %v over a wall of %v on %d CPUs", time.Duration(first.HarnessCPUNS), time.Duration(first.WallNS), runtime.NumCPU())
	}
	if first.HarnessPeakRSSBytes <= 0 || first.HarnessPeakRSSScope == "" {
		t.Errorf("peak RSS %d scope %q", first.HarnessPeakRSSBytes, first.HarnessPeakRSSScope)
	}
}
