// Package capacity holds the capacity search's rules: from what has been
// recorded for one runtime, which N (and which iteration of it) to measure
// next, and what the recorded probes say the capacity is.
//
// It is pure (no I/O, no clock, no order): the decisions are a function of
// the set of recorded outcomes, so a resumed run replays the records of its
// file into the same state and continues where the last session stopped,
// and the report derives the same answer from the same records. It imports
// only the standard library so that pkg/stats (which must stay light) can
// use it as pkg/bench does.
//
// The rules:
//   - A probe is N instances cold-started at once, Iterations times (cells
//     of iterations 0..Iterations-1). An iteration passes when at least
//     Required(N) = ⌈Share·N⌉ instances answered; a probe passes when every
//     iteration passes (the worst iteration decides: a capacity that holds
//     only sometimes is not one), and fails at its first failing iteration
//     (the remaining ones are not measured: they cannot change the verdict).
//   - Growth: StartN first, then double the largest passing N (capped at
//     MaxN) until a probe fails or MaxN passes.
//   - Bisection: between lo, the largest passing N below the smallest
//     failing N hi (0 when none passed: N = 0 passes trivially), probe the
//     midpoint until hi − lo ≤ max(1, ⌊Resolution·lo⌋). Resolution 0 asks
//     for the exact N.
//   - Every probe lies strictly between lo and hi, where nothing is
//     recorded, so no N is probed twice, and the search ends after at most
//     log2(MaxN/StartN)+1 growth and log2(MaxN)+1 bisection probes.
//   - Outcomes that are not monotone in N (a pass above a failure) cannot
//     come out of one search following these rules, but a file can hold
//     them (edited or merged records). The smallest failure then bounds the
//     capacity, passes above it are ignored for the decisions and listed
//     (Result.NonMonotone) so that a reader sees them: the answer is the
//     conservative one.
package capacity

import (
	"fmt"
	"math"
	"slices"
)

// Defaults of a Search's fields left at zero (Complete).
const (
	DefaultStartN     = 1
	DefaultShare      = 1.0
	DefaultIterations = 1
	// MaxIterations bounds the iterations per probe: a probe is meant to
	// decide pass or fail, not to be a study.
	MaxIterations = 100
)

// Search is spec.search: the capacity search's parameters (recorded in the
// header with the rest of the experiment, so a reader and a resume know it
// was a search, and with which rules).
type Search struct {
	// StartN is the first N probed (growth starts there).
	StartN int `json:"startN"`
	// MaxN is the largest N probed: passing there ends the search
	// ("capacity ≥ MaxN").
	MaxN int `json:"maxN"`
	// Share is the share of the N instances that must answer within the
	// request timeout for an iteration to pass: 1 = all of them.
	Share float64 `json:"share"`
	// Resolution is relative: the search stops when the smallest failing N
	// and the largest passing N differ by at most max(1, Resolution × the
	// largest passing N). 0 = exact (they differ by 1).
	Resolution float64 `json:"resolution"`
	// Iterations per probe; a probe passes when every iteration passes.
	Iterations int `json:"iterations"`
}

// Complete fills the fields left at zero; maxN is the default MaxN (the
// caller's sane cap). Resolution 0 is meaningful (exact) and stays.
func (s *Search) Complete(maxN int) {
	if s.StartN == 0 {
		s.StartN = DefaultStartN
	}
	if s.MaxN == 0 {
		s.MaxN = maxN
	}
	if s.Share == 0 {
		s.Share = DefaultShare
	}
	if s.Iterations == 0 {
		s.Iterations = DefaultIterations
	}
}

// Problems lists what is wrong with the (completed) parameters, each naming
// the field, its flag on `coldbench capacity`, and the fix. capN is the
// largest MaxN allowed (the caller's cap, which --force may lift).
func (s *Search) Problems(capN int, capFix string) []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if s.StartN < 1 {
		add("spec.search.startN (--start-n): %d; the first N probed must be at least 1", s.StartN)
	}
	switch {
	case s.MaxN < 1:
		add("spec.search.maxN (--max-n): %d; must be at least 1", s.MaxN)
	case s.StartN >= 1 && s.MaxN < s.StartN:
		add("spec.search.maxN (--max-n): %d is below spec.search.startN (--start-n) %d; raise maxN or lower startN", s.MaxN, s.StartN)
	case s.MaxN > capN:
		add("spec.search.maxN (--max-n): %d is above %d; %s", s.MaxN, capN, capFix)
	}
	if math.IsNaN(s.Share) || s.Share <= 0 || s.Share > 1 {
		add("spec.search.share (--share): %v; the share of the N instances that must answer is above 0 and at most 1 (1 = all)", s.Share)
	}
	if math.IsNaN(s.Resolution) || s.Resolution < 0 || s.Resolution >= 1 {
		add("spec.search.resolution (--resolution): %v; a relative resolution is at least 0 (0 = exact N) and below 1, e.g. 0.1 for within 10%%", s.Resolution)
	}
	if s.Iterations < 1 || s.Iterations > MaxIterations {
		add("spec.search.iterations (--iterations): %d; iterations per probe must be between 1 and %d", s.Iterations, MaxIterations)
	}
	return p
}

// Required is how many of n instances must answer for an iteration at N =
// n to pass: ⌈Share·n⌉, at least 1. (The small tolerance keeps 0.9 × 10
// at 9 despite floating point.)
func (s *Search) Required(n int) int {
	r := int(math.Ceil(s.Share*float64(n) - 1e-9))
	return min(max(r, 1), n)
}

// Outcomes are one runtime's recorded probes: N → iteration → instances
// that answered. Warm-ups are not outcomes (their iterations, negative,
// are ignored if present).
type Outcomes map[int]map[int]int

// Add records that iteration it at N = n had answered instances answer.
func (o Outcomes) Add(n, it, answered int) {
	if o[n] == nil {
		o[n] = map[int]int{}
	}
	o[n][it] = answered
}

// Verdict is a probe's state.
type Verdict int

const (
	// Pending: no iteration failed, some are not recorded yet.
	Pending Verdict = iota
	Pass
	Fail
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	}
	return "pending"
}

// Verdict says whether the probe at N = n with the recorded iterations its
// passed, failed, or is pending, and for a pending one the next iteration
// to measure (the smallest not recorded).
func (s *Search) Verdict(n int, its map[int]int) (Verdict, int) {
	next := -1
	for it := range s.Iterations {
		answered, ok := its[it]
		switch {
		case ok && answered < s.Required(n):
			return Fail, -1
		case !ok && next < 0:
			next = it
		}
	}
	if next >= 0 {
		return Pending, next
	}
	return Pass, -1
}

// Step is the search's next move for one runtime.
type Step struct {
	Done      bool
	N         int
	Iteration int
}

// Result is what the recorded probes say.
type Result struct {
	// Done: the search has nothing left to measure.
	Done bool
	// Largest is the largest passing N below SmallestFailing (0: none
	// passed). SmallestFailing is 0 when no probe failed (then Largest is
	// MaxN once Done: the capacity is at least MaxN).
	Largest, SmallestFailing int
	// NonMonotone lists passing N above SmallestFailing, ascending (see the
	// package comment); empty for one search that followed the rules.
	NonMonotone []int
}

// Result derives the bracket from the outcomes.
func (s *Search) Result(o Outcomes) Result {
	var r Result
	for n, its := range o {
		if v, _ := s.Verdict(n, its); v == Fail && (r.SmallestFailing == 0 || n < r.SmallestFailing) {
			r.SmallestFailing = n
		}
	}
	for n, its := range o {
		if v, _ := s.Verdict(n, its); v != Pass {
			continue
		}
		if r.SmallestFailing == 0 || n < r.SmallestFailing {
			r.Largest = max(r.Largest, n)
		} else {
			r.NonMonotone = append(r.NonMonotone, n)
		}
	}
	slices.Sort(r.NonMonotone)
	r.Done = s.Next(o).Done
	return r
}

// Next is the search's next move given the outcomes so far: continue a
// pending probe inside the bracket, else grow, else bisect, else stop.
func (s *Search) Next(o Outcomes) Step {
	lo, hi := s.bracket(o)
	inside := func(n int) bool { return n > lo && (hi == 0 || n < hi) }
	var pending []int
	for n, its := range o {
		if v, _ := s.Verdict(n, its); v == Pending && inside(n) {
			pending = append(pending, n)
		}
	}
	if len(pending) > 0 {
		n := slices.Min(pending)
		_, it := s.Verdict(n, o[n])
		return Step{N: n, Iteration: it}
	}
	if hi == 0 { // growing
		if lo >= s.MaxN {
			return Step{Done: true}
		}
		return Step{N: min(s.MaxN, max(s.StartN, 2*lo))}
	}
	if s.closeEnough(lo, hi) {
		return Step{Done: true}
	}
	return Step{N: lo + (hi-lo)/2}
}

// bracket is (largest passing N below the smallest failing, smallest
// failing N); 0 for none.
func (s *Search) bracket(o Outcomes) (lo, hi int) {
	for n, its := range o {
		if v, _ := s.Verdict(n, its); v == Fail && (hi == 0 || n < hi) {
			hi = n
		}
	}
	for n, its := range o {
		if v, _ := s.Verdict(n, its); v == Pass && (hi == 0 || n < hi) {
			lo = max(lo, n)
		}
	}
	return lo, hi
}

// closeEnough: the bracket is within the resolution (exact: adjacent).
func (s *Search) closeEnough(lo, hi int) bool {
	return hi-lo <= max(1, int(s.Resolution*float64(lo)))
}
