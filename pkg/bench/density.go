package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// A density run (spec.density, coldbench density) keeps instances running
// instead of tearing each step down: per runtime, steps of spec.density.step
// instances are started at once, the ones that answered stay, and the next
// step starts among them, until a stop condition holds. Each attempt records
// the density it met (results.Density.Alive), so latency and footprint are
// read against it, and the runtime's capacity is how many answered before
// the run stopped.
//
// Runtimes run one after the other, not in turns: the density one runtime
// built would be the background of the other's starts. Warm-ups (ordinary
// cells, torn down) run before each runtime's first step.
//
// A density run cannot be resumed (LoadResume refuses it): its instances are
// removed when it stops, so a continued run would start on an empty node
// while its records say otherwise.

// DensitySpec is spec.density.
type DensitySpec struct {
	// Step is how many instances each step starts at once.
	Step int `json:"step"`
	// Max caps the instances kept per runtime: the run stops once this many
	// answered (the last step is cut to fit).
	Max int `json:"max"`
	// MaxFailedShare stops the run after a step in which more than this
	// share of the instances failed. 0 (the default): any failure stops it,
	// so the capacity is the density at which every start still answered.
	MaxFailedShare float64 `json:"maxFailedShare"`
	// MaxLatency stops the run after a step whose median time to first
	// byte exceeds it; 0: no latency bound.
	MaxLatency Duration `json:"maxLatency"`
	// MinMemAvailable stops the run when the node's MemAvailable is below
	// it after a step, or would be after one more step like the last: a
	// floor that keeps the node out of the OOM killer's reach. "0" turns it
	// off; nil means DefaultMinMemAvailable.
	MinMemAvailable *resource.Quantity `json:"minMemAvailable,omitempty"`
}

// Defaults of spec.density.
const (
	DefaultDensityStep = 10
	// DefaultMinMemAvailable leaves room for the node's own processes (and,
	// here, the harness and a build) when the instances fill the rest.
	DefaultMinMemAvailable = "2Gi"
)

// Complete fills the fields left at zero (MaxFailedShare and MaxLatency
// are meaningful at zero and stay).
func (d *DensitySpec) Complete() {
	if d.Step == 0 {
		d.Step = DefaultDensityStep
	}
	if d.Max == 0 {
		d.Max = MaxScale
	}
	if d.MinMemAvailable == nil {
		q := resource.MustParse(DefaultMinMemAvailable)
		d.MinMemAvailable = &q
	}
}

// floor is MinMemAvailable in bytes (0: none).
func (d *DensitySpec) floor() int64 {
	if d.MinMemAvailable == nil {
		return 0
	}
	return d.MinMemAvailable.Value()
}

// validateDensity checks spec.density, that neither spec.scales nor
// spec.search is set beside it, and that the platform can keep instances.
func (s *Spec) validateDensity(errs *Problems, force bool) {
	d := s.Density
	if len(s.Scales) > 0 {
		errs.Add("spec.scales: %v set with spec.density; a density run adds spec.density.step instances per step: remove spec.scales, or spec.density for a sweep", s.Scales)
	}
	if s.Search != nil {
		errs.Add("spec.search: set with spec.density; a run is a sweep, a capacity search or a density run: remove one of them")
	}
	if b := LookupBackend(s.Platform); b != nil && !b.Density {
		errs.Add("spec.density: the %s platform does not run density experiments yet; use --platform node", s.Platform)
	}
	capN, fix := MaxScale, "pass --force if you mean it"
	if force {
		capN, fix = HardMaxScale, "that is the hard limit"
	}
	switch {
	case d.Step < 1:
		errs.Add("spec.density.step (--step): %d; must be at least 1 (instances started at once per step)", d.Step)
	case d.Max < 1:
		errs.Add("spec.density.max (--max): %d; must be at least 1 (instances kept per runtime)", d.Max)
	case d.Max > capN:
		errs.Add("spec.density.max (--max): %d is above the cap of %d; %s", d.Max, capN, fix)
	case d.Step > d.Max:
		errs.Add("spec.density.step (--step): %d is above spec.density.max %d; a step cannot start more than the cap", d.Step, d.Max)
	}
	if d.MaxFailedShare < 0 || d.MaxFailedShare >= 1 {
		errs.Add("spec.density.maxFailedShare (--max-failed-share): %g; must be in [0, 1): the share of a step's instances that may fail before the run stops", d.MaxFailedShare)
	}
	if l := d.MaxLatency.Duration; l < 0 {
		errs.Add("spec.density.maxLatency (--max-latency): %v; must be positive, or 0 for no bound", l)
	} else if l > 0 && s.RequestTimeout.Duration > 0 && l >= s.RequestTimeout.Duration {
		errs.Add("spec.density.maxLatency (--max-latency): %v is not below spec.requestTimeout %v, so it can never stop the run; lower it, or set 0 for no bound", l, s.RequestTimeout.Duration)
	}
	if q := d.MinMemAvailable; q != nil && q.Sign() < 0 {
		errs.Add("spec.density.minMemAvailable (--min-mem-available): %s; must be a size such as 2Gi, or 0 for no floor", q)
	}
	if dc, ok := s.Section(s.Platform).(DensityChecker); ok {
		dc.ValidateDensity(errs, s)
	}
}

// DensityChecker is implemented by platform sections with settings a
// density run cannot run with (knative: a protocol that is not fresh; a
// deadline longer than Knative keeps an idle pod).
type DensityChecker interface {
	ValidateDensity(errs *Problems, s *Spec)
}

// DensitySession is a Session that can keep instances running between
// cells: what a density run needs of its platform (Backend.Density).
type DensitySession interface {
	Session
	// Add starts cell.Scale instances at once and measures each as
	// ColdStart does, but keeps those that answered running; the others
	// are removed before it returns. It returns exactly cell.Scale attempts.
	Add(ctx context.Context, cell Cell) []results.Attempt
	// MemAvailable is the node's available memory now, in bytes; false
	// where the platform cannot read it.
	MemAvailable(ctx context.Context) (int64, bool)
	// KeptRunning counts the instances Add kept that still run (one the
	// OOM killer took does not).
	KeptRunning(ctx context.Context) (int, error)
	// RemoveKept removes every instance Add kept and returns once they are
	// gone, retrying what fails until ctx ends; the error names what is
	// left.
	RemoveKept(ctx context.Context) error
}

// removeKeptTimeout bounds the removal of a runtime's kept instances after
// an interrupt, the deadline or a stop (Ctrl-C does not cut it: the run's
// context is already cancelled then); Session.Close's clean-up and the
// leftovers report come after it. It grows with the cap of instances kept:
// this 2-core node removed 721 runc instances in 10 min 47 s (0.9 s each,
// testdata/node/density.jsonl), so a fixed 15 min would cut a run of 1000.
func removeKeptTimeout(maxKept int) time.Duration {
	return max(15*time.Minute, time.Duration(maxKept)*removeKeptPerInstance)
}

// removeKeptPerInstance is twice the 0.9 s an instance took (above).
const removeKeptPerInstance = 2 * time.Second

// densityTotal is the attempts a density run can make at most (OnAttempts'
// total): every runtime's cap, reached without a failure, plus warm-ups.
func (e *Experiment) densityTotal() int {
	d := e.Spec.Density
	return (d.Max + e.Spec.Warmups*d.Step) * len(e.Spec.Runtimes)
}

// runDensity is Run for a density run: each runtime in turn, warm-ups, then
// steps until a stop condition, then its instances removed.
func (r *Runner) runDensity(ctx context.Context) (Outcome, error) {
	var out Outcome
	if len(r.Done) > 0 {
		return out, fmt.Errorf("density run %s: cannot continue recorded cells (a density run does not resume)", r.ID)
	}
	if err := r.Open(ctx); err != nil {
		return out, err
	}
	ds, ok := r.sess.(DensitySession)
	if !ok {
		return out, fmt.Errorf("density run %s: the %s platform cannot keep instances between steps", r.ID, r.Platform.Name())
	}
	log := LoggerOrDiscard(r.Log)
	dctx, cancel := context.WithDeadline(ctx, time.Now().Add(r.Exp.Spec.Deadline.Duration))
	defer cancel()
	total, done := r.Exp.densityTotal(), 0
	progress := func(cell Cell, batch []results.Attempt) {
		done += len(batch)
		if r.OnAttempts != nil {
			r.OnAttempts(done, total, batch)
		}
		logCell(log, cell, batch)
	}
	s := r.Exp.Spec
	for _, rt := range s.Runtimes {
		if dctx.Err() != nil {
			out.SkippedCells++
			continue
		}
		for it := -s.Warmups; it < 0 && dctx.Err() == nil; it++ {
			cell := r.densityCell(rt, s.Density.Step, it)
			batch, recorded, err := r.runCell(dctx, cell, &out, log)
			if err != nil {
				return out, err
			}
			if recorded {
				progress(cell, batch)
			}
		}
		var err error
		if dctx.Err() == nil { // a cut warm-up is counted in CutCells already
			err = r.densitySteps(dctx, ds, rt, &out, log, progress)
		}
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), removeKeptTimeout(r.Exp.Spec.Density.Max))
		began := time.Now()
		rerr := ds.RemoveKept(rctx)
		rcancel()
		if rerr != nil {
			log.Warn("removing the kept instances", "runtime", rt.Name, "err", rerr)
		} else {
			log.Info("kept instances removed", "runtime", rt.Name, "took", time.Since(began).Round(time.Millisecond))
		}
		if err != nil {
			return out, err
		}
	}
	if markEnd(ctx, dctx, &out) {
		r.sweep(ctx, log)
	}
	return out, nil
}

func (r *Runner) densityCell(rt Runtime, n, it int) Cell {
	s := r.Exp.Spec
	return Cell{ExperimentID: r.ID, Runtime: rt, Scale: n, Iteration: it, Warmup: it < 0,
		RequestTimeout: s.RequestTimeout.Duration, ProbeInterval: s.ProbeInterval.Duration}
}

// densitySteps runs one runtime's steps until a stop condition holds or
// ctx ends.
func (r *Runner) densitySteps(ctx context.Context, ds DensitySession, rt Runtime, out *Outcome, log *slog.Logger, progress func(Cell, []results.Attempt)) error {
	d := r.Exp.Spec.Density
	alive, everAnswered := 0, false
	before, hasBefore := ds.MemAvailable(ctx)
	for step := 0; ctx.Err() == nil; step++ {
		cell := r.densityCell(rt, min(d.Step, d.Max-alive), step)
		var stop []string
		var kept int
		measure := func(ctx context.Context, c Cell) []results.Attempt {
			batch := ds.Add(ctx, c)
			if r.Exp.Spec.Footprint == nil || r.Exp.Spec.Footprint.Off {
				// The footprint's settle did not run: let the new
				// instances reach their idle size before MemAvailable is
				// read for the floor.
				_ = Sleep(ctx, DefaultFootprintSettle) // an interrupt ends the run just after
			}
			st := densityState{alive: alive, batch: batch, next: min(d.Step, d.Max-alive-answered(batch))}
			kept = alive + answered(batch)
			if running, err := ds.KeptRunning(ctx); err != nil {
				log.Warn("counting the density run's running instances", "runtime", rt.Name, "err", err)
			} else if running < kept {
				st.lost, kept = kept-running, running
			}
			after, hasAfter := ds.MemAvailable(ctx)
			if hasAfter {
				st.memAvailable = &after
				if hasBefore {
					st.lastDrop = before - after
				}
			}
			before, hasBefore = after, hasAfter
			stop = d.stops(st)
			for i := range batch {
				batch[i].Density = &results.Density{Alive: alive, Lost: st.lost, MemAvailableBytes: st.memAvailable, Stop: stop}
			}
			return batch
		}
		batch, recorded, err := r.measureCell(ctx, cell, out, log, measure)
		if err != nil {
			return err
		}
		if !recorded {
			return nil // cut short: the run ends (RemoveKept follows)
		}
		progress(cell, batch)
		everAnswered = everAnswered || answered(batch) > 0
		alive = kept
		if len(stop) > 0 {
			if !everAnswered {
				out.DensityNoAnswer = strings.TrimPrefix(out.DensityNoAnswer+", "+rt.Name, ", ")
			}
			log.Info("density run stopped", "runtime", rt.Name, "alive", alive, "steps", step+1, "because", stop)
			return nil
		}
	}
	out.SkippedCells++ // ended between steps, before a stop condition held
	return nil
}

// Sleep waits d, or until ctx ends (then it returns ctx's error): the
// settles of the footprint measurements and of a density run.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func answered(batch []results.Attempt) int {
	n := 0
	for _, a := range batch {
		if a.OK {
			n++
		}
	}
	return n
}

// densityState is what a step's stop conditions look at.
type densityState struct {
	alive int // kept before the step
	batch []results.Attempt
	// lost: kept instances (earlier ones or the step's) found not running
	// after the step; next: the size of the step that would follow.
	lost, next int
	// memAvailable after the step (nil: not known); lastDrop is how much
	// the step took from it (0: not known).
	memAvailable *int64
	lastDrop     int64
}

// stops returns the stop conditions that hold after a step, each as a
// reason a reader can check against the step's records; none: go on.
func (d *DensitySpec) stops(st densityState) []string {
	var why []string
	n := len(st.batch)
	ok := answered(st.batch)
	failed := n - ok
	if ok == 0 {
		why = append(why, fmt.Sprintf("no instance of the step answered (0/%d)", n))
	} else if float64(failed) > d.MaxFailedShare*float64(n) {
		why = append(why, fmt.Sprintf("failed %d/%d, above the %g%% allowed (maxFailedShare %g)", failed, n, 100*d.MaxFailedShare, d.MaxFailedShare))
	}
	if d.MaxLatency.Duration > 0 && ok > 0 {
		var ttfb []float64
		for _, a := range st.batch {
			if a.OK {
				ttfb = append(ttfb, float64(a.TTFBNS))
			}
		}
		slices.Sort(ttfb)
		// The report's median (pkg/stats): the reason can be checked there.
		if med := time.Duration(stats.Median(ttfb)); med > d.MaxLatency.Duration {
			why = append(why, fmt.Sprintf("median first byte %v, above maxLatency %v", med.Round(time.Millisecond), d.MaxLatency.Duration))
		}
	}
	if st.lost > 0 {
		why = append(why, fmt.Sprintf("%d kept instance(s) no longer running or ready after the step (OOM-killed, crashed, failing its readiness probe on a starved node, or scaled away by the platform)", st.lost))
	}
	if floor := d.floor(); floor > 0 && st.memAvailable != nil {
		// The next step's cost, foreseen from what each instance kept by
		// this one took: a step with failures kept fewer than the next
		// will start.
		next := int64(0)
		if ok > 0 && st.lastDrop > 0 {
			next = st.lastDrop / int64(ok) * int64(st.next)
		}
		switch avail := *st.memAvailable; {
		case avail < floor:
			why = append(why, fmt.Sprintf("MemAvailable %s, below minMemAvailable %s", mib(avail), mib(floor)))
		case next > 0 && avail-next < floor:
			why = append(why, fmt.Sprintf("MemAvailable %s would fall below minMemAvailable %s after the next step of %d (this one took %s for %d kept)", mib(avail), mib(floor), st.next, mib(st.lastDrop), ok))
		}
	}
	if st.alive+ok-st.lost >= d.Max {
		why = append(why, fmt.Sprintf("cap of %d instances reached (spec.density.max)", d.Max))
	}
	return why
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
