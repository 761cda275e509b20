package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coldbench/coldbench/pkg/host"
	"github.com/coldbench/coldbench/pkg/results"
)

// Labels every platform puts on what it creates; cleanup selects by them.
const (
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	LabelManagedByVal = "coldbench"
	LabelExperiment   = "coldbench.dev/experiment"
	LabelRuntime      = "coldbench.dev/runtime"
)

// Cell is one cold-start step: Scale instances of one runtime at once.
type Cell struct {
	ExperimentID string
	Runtime      Runtime
	Scale        int
	Iteration    int
	Warmup       bool
	// RequestTimeout bounds one attempt; ProbeInterval paces its GETs.
	RequestTimeout time.Duration
	ProbeInterval  time.Duration
}

// Platform is a backend that can cold-start functions (one package each
// under pkg/platform). A run checks it, opens one session, has the session
// measure the cells and closes it; doctor only checks, clean only cleans.
type Platform interface {
	Name() string
	// Checks runs every check exp depends on, for run's preflight and for
	// doctor: it creates nothing and sets nothing later calls rely on.
	// Failing checks name the problem and the fix (see Failed).
	Checks(ctx context.Context, exp *Experiment) []Check
	// Open sets the platform up for the run of exp under id (e.g. a
	// namespace, watches, the ingress, cluster settings) and returns the
	// session that measures its cells. done holds the cells earlier
	// sessions recorded (--resume): the session is not asked for them.
	Open(ctx context.Context, exp *Experiment, id string, done map[CellKey]bool) (Session, error)
	// Clean removes objects labelled by coldbench: those of experimentID, or
	// all of coldbench's when experimentID is empty. It returns how many.
	Clean(ctx context.Context, experimentID string) (int, error)
	// Close releases the platform's connections (after its session's Close).
	Close() error
}

// Session is one run on a platform, from Open to Close.
type Session interface {
	// Describe adds platform and runtime versions to the testbed.
	Describe(ctx context.Context, tb *results.Testbed)
	// ColdStart starts cell.Scale instances at once, measures each until its
	// first reply and tears them down (untimed, also on errors). It returns
	// exactly cell.Scale attempts: failures are attempts with a reason.
	// Cells may come in any order, each at most once.
	ColdStart(ctx context.Context, cell Cell) []results.Attempt
	// Close removes what is left of the run, restores what Open changed and
	// stops what it started. It is called once.
	Close() error
}

// Check is one finding of a platform's checks: what was checked, whether it
// holds, what was seen, and what to do about it.
type Check struct {
	Name string
	OK   bool
	// Warn, with OK: the experiment can run, but some of what it would
	// record will be missing (Detail says what, Fix how to have it). Never
	// a reason to refuse a run (Failed ignores it).
	Warn   bool
	Detail string
	Fix    string
}

// Failed joins the failing checks into one error naming each fix, or nil.
func Failed(checks []Check) error {
	var lines []string
	for _, c := range checks {
		if !c.OK {
			lines = append(lines, fmt.Sprintf("%s: %s; fix: %s", c.Name, c.Detail, c.Fix))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return errors.New(strings.Join(lines, "\n"))
}

// idSeq is the suffix of the next experiment id: random at the first call
// (distinct processes do not collide), then incremented, so that ids made by
// one process are unique even within one second (independent random suffixes
// of 24 bits collide by the birthday bound: ~3% over 1000 ids).
var idSeq = sync.OnceValue(func() *atomic.Uint32 {
	var b [4]byte
	rand.Read(b[:])
	var n atomic.Uint32
	n.Store(binary.BigEndian.Uint32(b[:]))
	return &n
})

// NewExperimentID returns a sortable, unique id like cb-20261126t053200-1a2b3c.
func NewExperimentID(now time.Time) string {
	n := idSeq().Add(1) & 0xffffff
	return fmt.Sprintf("cb-%s-%06x", now.UTC().Format("20060102t150405"), n)
}

// Version and Commit of this build, stamped by the Makefile and
// scripts/node-up.sh with -ldflags "-X ...bench.Version=$(git describe
// --always --dirty) -X ...bench.Commit=$(git rev-parse HEAD)". A plain
// go build/go install leaves them empty: Tool reads the build info instead.
var (
	Version = ""
	Commit  = ""
)

// Tool describes this build for the header and --version.
func Tool() results.ToolInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return toolInfo(Version, Commit, bi)
}

// toolInfo is Tool with the stamped values and the build info given (tests).
// Stamped values win; otherwise the main module's version (a go install of
// a tag, or go1.24+'s pseudo-version of a checkout) and the VCS settings
// (vcs.revision, vcs.modified) go build records in a checkout.
func toolInfo(version, commit string, bi *debug.BuildInfo) results.ToolInfo {
	t := results.ToolInfo{Name: "coldbench", Version: version, Commit: commit}
	modified := false
	if bi != nil {
		t.GoVersion = bi.GoVersion
		if t.Version == "" {
			t.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if t.Commit == "" {
					t.Commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if t.Version == "" || t.Version == "(devel)" {
		t.Version = "dev"
	}
	// A build of uncommitted changes is not the commit it names.
	if modified && version == "" && !strings.Contains(t.Version, "dirty") {
		t.Version += "+dirty"
	}
	return t
}

// Runner drives an experiment cell by cell and streams records to Out.
type Runner struct {
	Exp      *Experiment
	ID       string
	Platform Platform
	Out      *results.Writer
	Log      *slog.Logger // nil: nothing is logged (see LoggerOrDiscard)
	// OnAttempts is called after each cell (progress display); may be nil.
	OnAttempts func(done, total int, batch []results.Attempt)
	// Done holds cells already recorded (by an earlier session of a resumed
	// run); they are skipped. Session numbers the header.
	Done    map[CellKey]bool
	Session int
	// Answered holds, for each cell in Done, how many of its attempts
	// answered: what a resumed capacity search replays (search.go).
	Answered map[CellKey]int

	sess Session // from Open until Close
}

// CellKey identifies a cell across sessions of one experiment.
type CellKey struct {
	Runtime   string
	Scale     int
	Iteration int
}

// Outcome summarises a finished run.
type Outcome struct {
	Attempts     int
	Failures     int
	SkippedCells int // not started because of the deadline or an interrupt
	// CutCells were cut short by the interrupt or deadline: not recorded,
	// so that --resume measures them whole.
	CutCells    int
	ResumedFrom int // cells already recorded by earlier sessions
	// ResumedAnswered counts the attempts that answered in those cells
	// (measured ones, not warm-ups): a resumed capacity search whose
	// remaining probes all fail has still found something.
	ResumedAnswered int
	// DensityNoAnswer names the runtimes (comma-separated: Outcome stays
	// comparable) of a density run none of whose instances answered: a
	// broken set-up, not a capacity of 0.
	DensityNoAnswer string
	Interrupted     bool
	DeadlineHit     bool
}

// TotalAttempts is the number of attempts the experiment plans, warm-ups included.
func (e *Experiment) TotalAttempts() int {
	if e.Spec.Density != nil {
		return e.densityTotal()
	}
	per := 0
	for _, n := range e.Spec.Scales {
		per += n
	}
	return per * (e.Spec.Iterations + e.Spec.Warmups) * len(e.Spec.Runtimes)
}

// Open opens the platform's session for this run (Platform.Open), once:
// Header and Run open it when it is not yet open. Close ends it.
func (r *Runner) Open(ctx context.Context) error {
	if r.sess != nil {
		return nil
	}
	s, err := r.Platform.Open(ctx, r.Exp, r.ID, r.Done)
	if err != nil {
		return fmt.Errorf("opening the %s platform for %s: %w", r.Platform.Name(), r.ID, err)
	}
	r.sess = s
	return nil
}

// Close closes the session, if one is open: what is left of the run goes.
func (r *Runner) Close() error {
	if r.sess == nil {
		return nil
	}
	s := r.sess
	r.sess = nil
	return s.Close()
}

// WriteHeader writes the header record describing the run and the host.
func (r *Runner) WriteHeader(ctx context.Context) error {
	h, err := r.Header(ctx)
	if err != nil {
		return err
	}
	return r.Out.Write(h)
}

// Header is the header record describing the run and the host (for
// results.OpenWithHeader, which creates the file and writes it as one
// step). The session describes the platform: Header opens it if need be.
func (r *Runner) Header(ctx context.Context) (*results.Header, error) {
	if err := r.Open(ctx); err != nil {
		return nil, err
	}
	tb := host.Collect()
	r.sess.Describe(ctx, &tb)
	h := &results.Header{
		Type:         results.TypeHeader,
		Schema:       results.SchemaVersion,
		ExperimentID: r.ID,
		Session:      r.Session,
		Created:      time.Now().UTC(),
		Experiment:   r.Exp,
		Testbed:      tb,
		Tool:         Tool(),
	}
	return h, nil
}

// Cells lists the cells of the experiment run as id, in the order Run
// measures them: for each N, warm-ups then iterations, and within an
// iteration the runtimes in turn, so slow drift of the host (load, caches)
// spreads over all runtimes instead of biasing the last one.
func (e *Experiment) Cells(id string) []Cell {
	s := e.Spec
	var cells []Cell
	for _, n := range s.Scales {
		for it := -s.Warmups; it < s.Iterations; it++ {
			for _, rt := range s.Runtimes {
				cells = append(cells, Cell{ExperimentID: id, Runtime: rt, Scale: n, Iteration: it, Warmup: it < 0,
					RequestTimeout: s.RequestTimeout.Duration, ProbeInterval: s.ProbeInterval.Duration})
			}
		}
	}
	return cells
}

// Key identifies the cell across sessions.
func (c Cell) Key() CellKey { return CellKey{c.Runtime.Name, c.Scale, c.Iteration} }

// Run measures every cell (in the order of Exp.Cells) through the session,
// which it opens if need be; Close closes it. Failures of attempts are
// records, not errors; Run returns an error only when the session cannot
// be opened or records cannot be written.
func (r *Runner) Run(ctx context.Context) (Outcome, error) {
	if r.Exp.Spec.Search != nil {
		return r.runSearch(ctx) // search.go: the cells are chosen as it goes
	}
	if r.Exp.Spec.Density != nil {
		return r.runDensity(ctx) // density.go: instances kept between steps
	}
	var out Outcome
	if err := r.Open(ctx); err != nil {
		return out, err
	}
	log := LoggerOrDiscard(r.Log)
	deadline := time.Now().Add(r.Exp.Spec.Deadline.Duration)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	total := r.Exp.TotalAttempts()
	done := 0
	for _, cell := range r.Exp.Cells(r.ID) {
		if r.Done[cell.Key()] {
			out.ResumedFrom++
			if cell.Iteration >= 0 {
				out.ResumedAnswered += r.Answered[cell.Key()]
			}
			done += cell.Scale
			continue
		}
		if dctx.Err() != nil {
			out.SkippedCells++
			continue
		}
		batch, recorded, err := r.runCell(dctx, cell, &out, log)
		if err != nil {
			return out, err
		}
		if !recorded {
			continue // cut short: --resume measures it whole
		}
		done += len(batch)
		if r.OnAttempts != nil {
			r.OnAttempts(done, total, batch)
		}
		logCell(log, cell, batch)
	}
	if markEnd(ctx, dctx, &out) {
		r.sweep(ctx, log)
	}
	return out, nil
}

// markEnd records in out whether the run's ctx (an interrupt) or its
// deadline's dctx ended it, and says whether either did.
func markEnd(ctx, dctx context.Context, out *Outcome) bool {
	switch {
	case ctx.Err() != nil:
		out.Interrupted = true
	case dctx.Err() != nil:
		out.DeadlineHit = true
	}
	return out.Interrupted || out.DeadlineHit
}

// runCell measures one cell and records it, counting it in out. It returns
// the batch and whether it was recorded (not when the cell was cut short).
func (r *Runner) runCell(dctx context.Context, cell Cell, out *Outcome, log *slog.Logger) ([]results.Attempt, bool, error) {
	return r.measureCell(dctx, cell, out, log, r.sess.ColdStart)
}

// measureCell is runCell with the measuring call given (a density run's
// keeps its instances).
func (r *Runner) measureCell(dctx context.Context, cell Cell, out *Outcome, log *slog.Logger, measure func(context.Context, Cell) []results.Attempt) ([]results.Attempt, bool, error) {
	load := host.LoadAvg()
	meter := host.StartStep()
	began := time.Now()
	batch := measure(dctx, cell)
	step := stepFigures(batch, time.Since(began), meter)
	if dctx.Err() != nil && cutShort(batch) {
		out.CutCells++
		again := "--resume measures it again"
		if r.Exp.Spec.Density != nil {
			again = "a density run does not resume"
		}
		log.Warn("cell cut short by the interrupt or deadline: not recorded; "+again,
			"runtime", cell.Runtime.Name, "n", cell.Scale, "iteration", cell.Iteration)
		return batch, false, nil
	}
	recs := make([]any, len(batch))
	for i := range batch {
		a := &batch[i]
		a.Type = results.TypeAttempt
		a.ExperimentID, a.Platform = r.ID, r.Platform.Name()
		a.Runtime, a.Handler = cell.Runtime.Name, cell.Runtime.Handler
		a.Scale, a.Iteration, a.Warmup = cell.Scale, cell.Iteration, cell.Warmup
		a.LoadAvg = load
		a.Step = step
		recs[i] = a
	}
	// One write per cell: a cell is in the file whole or not at all.
	if err := r.Out.WriteBatch(recs...); err != nil {
		return batch, false, err
	}
	for _, a := range batch {
		out.Attempts++
		if !a.OK {
			out.Failures++
		}
	}
	return batch, true, nil
}

// stepFigures is the step record of a cell: the set-up and teardown times
// its session reported (on any attempt's Step) and what the harness used
// over the whole ColdStart call.
func stepFigures(batch []results.Attempt, wall time.Duration, meter *host.StepMeter) *results.Step {
	st := &results.Step{}
	for _, a := range batch {
		if a.Step != nil {
			*st = *a.Step
			break
		}
	}
	cpu, peak, scope := meter.End()
	st.WallNS = wall.Nanoseconds()
	st.HarnessCPUNS = cpu.Nanoseconds()
	st.HarnessPeakRSSBytes, st.HarnessPeakRSSScope = peak, scope
	return st
}

// sweep removes, after an interrupt or the deadline, whatever an interrupted
// CRI/API call may have created that the session never got an id for: all
// that carries this experiment's labels.
func (r *Runner) sweep(ctx context.Context, log *slog.Logger) {
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer ccancel()
	if n, err := r.Platform.Clean(cctx, r.ID); err != nil {
		log.Warn("cleaning up after interruption", "err", err)
	} else if n > 0 {
		log.Info("removed leftovers of the interrupted cell", "objects", n)
	}
}

// cutShort reports whether any attempt of the cell ended because the run
// was canceled rather than on its own.
func cutShort(batch []results.Attempt) bool {
	for _, a := range batch {
		if a.ErrorClass == results.ErrCanceled {
			return true
		}
	}
	return false
}

func logCell(log *slog.Logger, c Cell, batch []results.Attempt) {
	ok := 0
	var firstErr error
	for _, a := range batch {
		if a.OK {
			ok++
		} else if firstErr == nil {
			firstErr = errors.New(a.ErrorClass + ": " + a.Error)
		}
	}
	attrs := []any{"runtime", c.Runtime.Name, "n", c.Scale, "iteration", c.Iteration, "ok", fmt.Sprintf("%d/%d", ok, len(batch))}
	if c.Warmup {
		attrs = append(attrs, "warmup", true)
	}
	if firstErr != nil {
		attrs = append(attrs, "first_error", firstErr.Error())
		log.Warn("cell done", attrs...)
		return
	}
	log.Debug("cell done", attrs...)
}
