package bench

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coldbench/coldbench/pkg/capacity"
	"github.com/coldbench/coldbench/pkg/results"
)

// A capacity search (spec.search) is a run whose cells are chosen as it
// goes: per runtime, pkg/capacity's rules pick the next N (and iteration)
// from the outcomes recorded so far. Every probe step is an ordinary cell,
// measured by Session.ColdStart and written by runCell exactly as a sweep's
// (so report, plot and --resume read it unchanged), and the decisions depend
// on nothing but the recorded outcomes: a resumed run replays the file's
// cells (Runner.Done, Runner.Answered) into the same state and continues; a
// cell cut short is not recorded, so it is chosen, and measured, again.
//
// Warm-ups (spec.warmups) run once per runtime at the start N, before its
// first probe, and do not count for the search. Runtimes take turns cell by
// cell, as in a sweep, so slow drift of the host spreads over all of them;
// each runtime's search is independent of the others'.

// validateSearch checks spec.search, and that the sweep's N are not given
// alongside (a search chooses N itself).
func (s *Spec) validateSearch(errs *Problems, force bool) {
	if len(s.Scales) > 0 {
		errs.Add("spec.scales: %v set with spec.search; a capacity search chooses N itself: remove spec.scales from the file, or spec.search for a sweep of fixed N", s.Scales)
	}
	capN, fix := MaxScale, "pass --force if you mean it"
	if force {
		capN, fix = HardMaxScale, "that is the hard limit"
	}
	for _, p := range s.Search.Problems(capN, fix) {
		errs.Add("%s", p)
	}
	if sc, ok := s.Section(s.Platform).(SearchChecker); ok {
		sc.ValidateSearch(errs)
	}
}

// SearchChecker is implemented by platform sections with settings a
// capacity search cannot run with (knative: a protocol that keeps each
// probed N's services until the run ends).
type SearchChecker interface {
	ValidateSearch(errs *Problems)
}

// searchTurn is one runtime's search: its warm-ups still to run, then its
// probes' outcomes.
type searchTurn struct {
	exp      *Experiment
	rt       Runtime
	warmups  []int // iterations of the warm-ups not yet recorded, in order
	outcomes capacity.Outcomes
}

// next is the runtime's next cell, or false when its search is over.
func (t *searchTurn) next(id string) (Cell, bool) {
	s := t.exp.Spec
	cell := Cell{ExperimentID: id, Runtime: t.rt, RequestTimeout: s.RequestTimeout.Duration, ProbeInterval: s.ProbeInterval.Duration}
	if len(t.warmups) > 0 {
		cell.Scale, cell.Iteration, cell.Warmup = s.Search.StartN, t.warmups[0], true
		return cell, true
	}
	st := s.Search.Next(t.outcomes)
	if st.Done {
		return Cell{}, false
	}
	cell.Scale, cell.Iteration = st.N, st.Iteration
	return cell, true
}

// record adds a recorded cell's outcome and logs a probe's verdict once
// it is known.
func (t *searchTurn) record(cell Cell, batch []results.Attempt, log *slog.Logger) {
	if cell.Warmup {
		t.warmups = t.warmups[1:]
		return
	}
	ok := answered(batch) // density.go
	t.outcomes.Add(cell.Scale, cell.Iteration, ok)
	search := t.exp.Spec.Search
	if v, _ := search.Verdict(cell.Scale, t.outcomes[cell.Scale]); v != capacity.Pending {
		r := search.Result(t.outcomes)
		log.Info("capacity probe", "runtime", t.rt.Name, "n", cell.Scale, "verdict", v.String(),
			"answered", fmt.Sprintf("%d/%d", ok, cell.Scale), "required", search.Required(cell.Scale),
			"largest_passing", r.Largest, "smallest_failing", r.SmallestFailing)
	}
}

// searchTurns builds each runtime's search from the cells earlier sessions
// recorded. It returns the attempts those cells hold.
func (r *Runner) searchTurns(out *Outcome) ([]*searchTurn, int, error) {
	s := r.Exp.Spec
	resumed := 0
	var turns []*searchTurn
	for _, rt := range s.Runtimes {
		t := &searchTurn{exp: r.Exp, rt: rt, outcomes: capacity.Outcomes{}}
		for it := -s.Warmups; it < 0; it++ {
			if !r.Done[CellKey{rt.Name, s.Search.StartN, it}] {
				t.warmups = append(t.warmups, it)
			}
		}
		turns = append(turns, t)
	}
	for k := range r.Done {
		t := findTurn(turns, k.Runtime)
		if t == nil {
			continue
		}
		out.ResumedFrom++
		resumed += k.Scale
		if k.Iteration < 0 {
			continue // a warm-up: no outcome
		}
		answered, ok := r.Answered[k]
		if !ok {
			return nil, 0, fmt.Errorf("resuming the capacity search %s: cell runtime=%s n=%d iteration=%d is recorded but its answered count is not known (Runner.Answered; LoadResume provides it)", r.ID, k.Runtime, k.Scale, k.Iteration)
		}
		t.outcomes.Add(k.Scale, k.Iteration, answered)
		out.ResumedAnswered += answered
	}
	return turns, resumed, nil
}

func findTurn(turns []*searchTurn, runtime string) *searchTurn {
	for _, t := range turns {
		if t.rt.Name == runtime {
			return t
		}
	}
	return nil
}

// runSearch is Run for a capacity search: runtimes take turns, each
// measuring the cell its search chooses, until every search is over, the
// deadline passes or ctx is cancelled. OnAttempts gets total 0: the
// number of attempts is not known in advance.
func (r *Runner) runSearch(ctx context.Context) (Outcome, error) {
	var out Outcome
	if err := r.Open(ctx); err != nil {
		return out, err
	}
	log := LoggerOrDiscard(r.Log)
	dctx, cancel := context.WithDeadline(ctx, time.Now().Add(r.Exp.Spec.Deadline.Duration))
	defer cancel()
	turns, done, err := r.searchTurns(&out)
	if err != nil {
		return out, err
	}
	for active := true; active && dctx.Err() == nil; {
		active = false
		for _, t := range turns {
			cell, ok := t.next(r.ID)
			if !ok || dctx.Err() != nil {
				continue
			}
			active = true
			batch, recorded, err := r.runCell(dctx, cell, &out, log)
			if err != nil {
				return out, err
			}
			if !recorded {
				continue // cut short: chosen and measured again on --resume
			}
			t.record(cell, batch, log)
			done += len(batch)
			if r.OnAttempts != nil {
				r.OnAttempts(done, 0, batch)
			}
			logCell(log, cell, batch)
		}
	}
	r.endSearch(ctx, dctx, turns, &out, log)
	return out, nil
}

// endSearch sets how the search ended, cleans up after an interrupt or the
// deadline, and logs each runtime's result.
func (r *Runner) endSearch(ctx, dctx context.Context, turns []*searchTurn, out *Outcome, log *slog.Logger) {
	unfinished := 0
	for _, t := range turns {
		if _, more := t.next(r.ID); more {
			unfinished++
		}
	}
	if markEnd(ctx, dctx, out) {
		// At least one cell per unfinished runtime was not run (the cut
		// one, if any, is counted in CutCells).
		out.SkippedCells = max(0, unfinished-out.CutCells)
		r.sweep(ctx, log)
	}
	for _, t := range turns {
		res := r.Exp.Spec.Search.Result(t.outcomes)
		attrs := []any{"runtime", t.rt.Name, "largest_passing", res.Largest, "smallest_failing", res.SmallestFailing, "done", res.Done}
		if len(res.NonMonotone) > 0 {
			attrs = append(attrs, "passed_above_a_failure", res.NonMonotone)
		}
		log.Info("capacity search", attrs...)
	}
}
