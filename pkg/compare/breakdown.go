package compare

import (
	"fmt"
	"math"
	"slices"

	"github.com/coldbench/coldbench/pkg/stats"
)

// The per-runtime breakdown: within one set of records, for each platform
// and N with two runtimes or more in the runtime view, where in the cold
// start each runtime spends more or less time than a baseline. A segment is
// a link of stats' causal chains (stats.CausalLinks: one phase of the
// runtime view and the next one of the same chain, so never two containers
// running side by side, as consecutive medians would give), taken attempt
// by attempt (that attempt's two offsets), so a runtime's segment is a
// sample of durations, never a difference of medians of offsets. The main
// chain's segments add up, in each attempt, to its first byte; the shim's
// report of the user container's start and Knative's queue-proxy follow
// as side segments. The
// difference from the baseline is the Hodges–Lehmann shift of those samples
// (the median of all pairwise differences) with Moses' distribution-free
// interval: the estimator compare already uses for TTFB (there on a log
// scale, here in ns, since a segment can be negative: an rt_ stamp that
// comes after the function started). Under a pure shift it is the
// difference of the medians.

// SegmentStart names the attempt's start (offset 0) as the first segment's
// beginning.
const SegmentStart = "start"

// SegmentSide is one runtime's sample of one segment.
type SegmentSide struct {
	N      int     // attempts with both ends of the segment
	Median float64 // ns; 0 when N = 0
}

// SegmentDiff is one segment of one runtime against the baseline.
type SegmentDiff struct {
	From, To    string
	Base, Other SegmentSide
	// Tested: both sides have the segment, so Diff is defined.
	Tested bool
	// Diff is the shift Other - Base (ns) at stats.CIConfidence.
	Diff Shift
}

// RuntimeDiff is one runtime against the baseline at one platform and N.
type RuntimeDiff struct {
	Runtime string
	// Attempts counts its successful attempts in the runtime view (stats.InRuntimeView).
	Attempts int
	Segments []SegmentDiff
}

// Breakdown is the per-runtime difference at one platform and N.
type Breakdown struct {
	Platform string
	Scale    int
	View     stats.PhaseView
	// Links are the segments, the causal links among the phases any of
	// the runtimes has (so every runtime has the same segments): the main
	// chain from the attempt's start to the first byte, then the side ones.
	Links []stats.Link
	// Baseline is runc when present, else the first runtime in the records.
	Baseline     string
	BaseAttempts int
	Runtimes     []RuntimeDiff // every other runtime, in record order
}

// BaselineRuntime is the runtime the others are compared with.
const BaselineRuntime = "runc"

// Breakdowns returns the breakdown of every platform and N of m that has at
// least two runtimes with successful attempts and whose cells are in the
// runtime view (stats.ChoosePhaseView), by platform then N. m must have
// been loaded without NoRuntimeView.
func Breakdowns(m *stats.Model) []Breakdown {
	type pn struct {
		platform string
		scale    int
	}
	groups := map[pn][]*stats.Cell{}
	var keys []pn
	platformAt := map[string]int{}
	for _, c := range m.Cells() { // by platform, runtime (record order), N
		if _, seen := platformAt[c.Key.Platform]; !seen {
			platformAt[c.Key.Platform] = len(platformAt)
		}
		if c.Successes == 0 {
			continue
		}
		k := pn{c.Key.Platform, c.Key.Scale}
		if _, seen := groups[k]; !seen {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], c)
	}
	slices.SortFunc(keys, func(a, b pn) int {
		if d := platformAt[a.platform] - platformAt[b.platform]; d != 0 {
			return d
		}
		return a.scale - b.scale
	})
	var out []Breakdown
	for _, k := range keys {
		if b, ok := breakdown(groups[k]); ok {
			out = append(out, b)
		}
	}
	return out
}

// breakdown is one platform and N's; ok is false when it has fewer than two
// runtimes or is not in the runtime view.
func breakdown(cells []*stats.Cell) (Breakdown, bool) {
	if len(cells) < 2 {
		return Breakdown{}, false
	}
	vcs := make([]stats.ViewCell, len(cells))
	offs := make([]map[string][]float64, len(cells))
	for i, c := range cells {
		vcs[i] = c.ViewCell()
	}
	v := stats.ChoosePhaseView(vcs)
	if !v.Runtime {
		return Breakdown{}, false
	}
	for i, c := range cells {
		offs[i] = v.Offsets(c)
	}
	base := slices.IndexFunc(cells, func(c *stats.Cell) bool { return c.Key.Runtime == BaselineRuntime })
	if base < 0 {
		base = 0
	}
	present := func(name string) bool {
		return slices.ContainsFunc(offs, func(o map[string][]float64) bool { return len(o[name]) > 0 })
	}
	b := Breakdown{Platform: cells[0].Key.Platform, Scale: cells[0].Key.Scale, View: v,
		Links: stats.CausalLinks(present), Baseline: cells[base].Key.Runtime, BaseAttempts: cells[base].WithRT}
	for i, c := range cells {
		if i == base {
			continue
		}
		rd := RuntimeDiff{Runtime: c.Key.Runtime, Attempts: c.WithRT}
		for _, l := range b.Links {
			from := l.From
			if from == "" {
				from = SegmentStart
			}
			rd.Segments = append(rd.Segments, segmentDiff(from, l.To, cells[base], c))
		}
		b.Runtimes = append(b.Runtimes, rd)
	}
	return b, true
}

// segmentDiff compares one segment of other with base.
func segmentDiff(from, to string, base, other *stats.Cell) SegmentDiff {
	x, y := durations(base, from, to), durations(other, from, to)
	d := SegmentDiff{From: from, To: to, Base: sideOf(x), Other: sideOf(y)}
	if len(x) > 0 && len(y) > 0 {
		d.Tested = true
		d.Diff = HodgesLehmann(x, y, stats.CIConfidence)
	}
	return d
}

// durations are the segment's durations (ns) in c's attempts that have
// both ends, ascending.
func durations(c *stats.Cell, from, to string) []float64 {
	end := c.RTPhases[to]
	begin := c.RTPhases[from] // nil for SegmentStart: offset 0
	var out []float64
	for i, t := range end {
		f := 0.0
		if from != SegmentStart {
			if i >= len(begin) {
				break
			}
			f = begin[i]
		}
		if !math.IsNaN(t) && !math.IsNaN(f) {
			out = append(out, t-f)
		}
	}
	slices.Sort(out)
	return out
}

func sideOf(sorted []float64) SegmentSide {
	s := SegmentSide{N: len(sorted)}
	if len(sorted) > 0 {
		s.Median = stats.Median(sorted)
	}
	return s
}

// Largest returns the index of the tested segment that grows most (the
// largest positive difference) and grows = true; when none grows, the one
// that shrinks most and grows = false; -1 when none was tested.
func (r RuntimeDiff) Largest() (i int, grows bool) {
	most, least := -1, -1
	for k, s := range r.Segments {
		if !s.Tested {
			continue
		}
		if most < 0 || s.Diff.Estimate > r.Segments[most].Diff.Estimate {
			most = k
		}
		if least < 0 || s.Diff.Estimate < r.Segments[least].Diff.Estimate {
			least = k
		}
	}
	if most >= 0 && r.Segments[most].Diff.Estimate > 0 {
		return most, true
	}
	return least, false
}

// Sentence says in one line where r differs most from the baseline:
// "gvisor vs runc at N=1: the largest growth is rt_sandbox_created→
// rt_sandbox_started, +412.000 ms [95% CI 380.000, 450.000]".
func (b Breakdown) Sentence(r RuntimeDiff) string {
	head := fmt.Sprintf("%s vs %s at N=%d: ", r.Runtime, b.Baseline, b.Scale)
	i, grows := r.Largest()
	if i < 0 {
		return head + "no segment has attempts on both sides to compare"
	}
	s := r.Segments[i]
	what := "the largest growth is"
	if !grows {
		what = "no segment grows; the largest shrink is"
	}
	out := head + what + " " + s.Name() + ", " + signedMS(s.Diff.Estimate) + " ms " + ciWords(s.Diff)
	if s.Diff.CIOK && s.Diff.Lo <= 0 && s.Diff.Hi >= 0 {
		// The largest point estimate is still not evidence of a change.
		out += ", an interval that includes 0"
	}
	return out
}

// Name is "from→to".
func (s SegmentDiff) Name() string { return s.From + "→" + s.To }

// ciWords is the interval in brackets, or why there is none.
func ciWords(d Shift) string {
	if !d.CIOK {
		return fmt.Sprintf("[too few attempts for a %g%% CI]", 100*stats.CIConfidence)
	}
	return fmt.Sprintf("[%g%% CI %s, %s]", 100*stats.CIConfidence, signedMS(d.Lo), signedMS(d.Hi))
}

// DiffText is the difference with its interval, as the tables print it:
// "+412.000 [380.000, 450.000]" (ms).
func (s SegmentDiff) DiffText() string {
	if !s.Tested {
		return "-"
	}
	if !s.Diff.CIOK {
		return signedMS(s.Diff.Estimate) + " [n/a]"
	}
	return signedMS(s.Diff.Estimate) + " [" + signedMS(s.Diff.Lo) + ", " + signedMS(s.Diff.Hi) + "]"
}

// signedMS renders ns as ms with 3 decimals and a sign.
func signedMS(ns float64) string { return fmt.Sprintf("%+.3f", ns/1e6) }
