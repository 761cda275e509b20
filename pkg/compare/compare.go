// Package compare puts two sets of coldbench records side by side (A, the
// baseline, and B): per runtime and N, the median time to first byte of
// each, the change from A to B with a distribution-free confidence
// interval, and the Mann–Whitney U test's p-value, flagged like benchstat.
//
// The change is the Hodges–Lehmann estimate on the log scale: the median of
// the m·n ratios b/a over all pairs of successful attempts, minus one, with
// Moses' distribution-free interval. Latency effects are multiplicative, so
// on a log scale "B is A shifted" is the natural model; under it the
// estimate is the change in median. The test is on the same pairs, so the
// interval excludes 0 % exactly when p < alpha (exact case; nearly so with
// the normal approximation). Like stats and report, this package imports no
// platform client.
package compare

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// Directions of change that a threshold applies to.
const (
	DirectionBoth   = "both"   // slower or faster
	DirectionSlower = "slower" // B slower than A (a regression)
	DirectionFaster = "faster" // B faster than A
)

// ExitThresholdExceeded is the exit status of `coldbench compare` when a
// significant change crosses --threshold. Errors exit with ExitError.
const (
	ExitThresholdExceeded = 1
	ExitError             = 2
)

// DefaultAlpha is the significance level unless set.
const DefaultAlpha = 0.05

// Pair compares runtime A of the first set with runtime B of the second
// (e.g. runc with crun in the same file).
type Pair struct{ A, B string }

// Options control the comparison.
type Options struct {
	// Alpha is the significance level (DefaultAlpha if 0); the confidence
	// interval of the change is at 1 - Alpha.
	Alpha float64
	// ThresholdPct, when > 0, marks a significant change whose estimate is
	// at least this many percent (in Direction) as exceeding it.
	ThresholdPct float64
	// Direction is DirectionBoth (default), DirectionSlower or
	// DirectionFaster.
	Direction string
	// Pairs, when given, compare these runtimes (A's runtime with B's)
	// instead of each runtime with its namesake.
	Pairs []Pair
	// Read says how Files treats inconsistent records.
	Read results.ReadOptions
}

func (o Options) withDefaults() (Options, error) {
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return o, fmt.Errorf("alpha %g: must be between 0 and 1, e.g. 0.05", o.Alpha)
	}
	if o.ThresholdPct < 0 || math.IsNaN(o.ThresholdPct) {
		return o, fmt.Errorf("threshold %g%%: must be a positive percentage, e.g. 10", o.ThresholdPct)
	}
	switch o.Direction {
	case "":
		o.Direction = DirectionBoth
	case DirectionBoth, DirectionSlower, DirectionFaster:
	default:
		return o, fmt.Errorf("direction %q: valid directions: %s, %s, %s", o.Direction, DirectionBoth, DirectionSlower, DirectionFaster)
	}
	for _, p := range o.Pairs {
		if p.A == "" || p.B == "" {
			return o, fmt.Errorf("pair %q=%q: both runtimes must be named, e.g. runc=crun", p.A, p.B)
		}
	}
	return o, nil
}

// Side describes one runtime at one N in one of the two sets.
type Side struct {
	Runtime   string
	Present   bool // the set has measured attempts of it
	Attempts  int  // measured (non-warm-up) attempts
	Successes int
	// Median of the successful attempts' TTFB in ns (0 when Successes = 0).
	Median float64
}

// Row is the comparison of one runtime (pair) at one N.
type Row struct {
	Platform string
	Scale    int
	A, B     Side
	// Tested: both sides have successful attempts, so the statistics below
	// are defined.
	Tested bool
	// Change is the Hodges–Lehmann estimate of B/A - 1 (0.1 = 10 % slower),
	// ChangeLo and ChangeHi its confidence interval at 1 - Alpha.
	Change, ChangeLo, ChangeHi float64
	// CIOK is false when the samples are too small for an interval at
	// 1 - Alpha (the bounds are then the extreme ratios).
	CIOK bool
	// Test is the Mann–Whitney U test of A against B, attempt by attempt.
	Test MannWhitney
	// CellTest (N > 1, at least two cells a side) is the Mann–Whitney U
	// test over cells: each cell's (iteration's) median one value. A
	// cell's N attempts start together on one node and are not
	// independent samples, so at N > 1 the attempt-level test can find a
	// change that the cells do not show (the footprint A/B runs did, in
	// both directions). CellsA and CellsB are the cells tested. Significant
	// and Exceeds stay the attempt-level test's; the table says when the
	// cells disagree.
	CellTest        *MannWhitney
	CellsA, CellsB  int
	CellSignificant bool // CellTest.P < Alpha
	// Significant is P < Alpha.
	Significant bool
	// Exceeds: Significant and the change crosses the threshold in the
	// direction asked for.
	Exceeds bool
	// Footprint compares the footprint figures (footprint.go); nil when
	// neither side recorded footprints. The threshold is the latency's
	// alone.
	Footprint []FootprintChange
}

// Result is a whole comparison.
type Result struct {
	Options Options // with defaults applied
	// FilesA and FilesB name the inputs, ExperimentsA/B their experiment ids.
	FilesA, FilesB             []string
	ExperimentsA, ExperimentsB []string
	Rows                       []Row
	// Warnings are the readers' (torn last lines, skipped records).
	Warnings []string
}

// Exceeded reports whether any row exceeds the threshold.
func (r *Result) Exceeded() bool {
	for _, row := range r.Rows {
		if row.Exceeds {
			return true
		}
	}
	return false
}

// measured indexes the model's cells that have measured attempts, and
// lists their runtimes and platforms in order of first appearance. The
// cells are the model's own: compare reads their counts and TTFB samples.
func measured(m *stats.Model) (cells map[stats.CellKey]*stats.Cell, runtimes, platforms []string) {
	cells = map[stats.CellKey]*stats.Cell{}
	for _, c := range m.MeasuredCells() {
		runtimes = appendNew(runtimes, c.Key.Runtime)
		platforms = appendNew(platforms, c.Key.Platform)
		cells[c.Key] = c
	}
	return cells, runtimes, platforms
}

// Compare compares set b against the baseline a.
func Compare(a, b *results.Set, opt Options) (*Result, error) {
	return CompareModels(stats.FromSet(a), stats.FromSet(b), opt)
}

// CompareModels compares the analysis model b against the baseline a.
func CompareModels(a, b *stats.Model, opt Options) (*Result, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	ca, rtA, plA := measured(a)
	cb, rtB, plB := measured(b)
	for side, cells := range map[string]map[stats.CellKey]*stats.Cell{"A": ca, "B": cb} {
		for _, c := range cells {
			if c.Row().DensitySteps > 0 {
				return nil, fmt.Errorf("%s holds a density run (%s): its steps met different densities, so a cell of it is no sample to compare; compare the density tables of `coldbench report`, or sweeps", side, c.Key.Runtime)
			}
		}
	}
	if len(ca) == 0 {
		return nil, fmt.Errorf("A has no measured attempts")
	}
	if len(cb) == 0 {
		return nil, fmt.Errorf("B has no measured attempts")
	}
	pairs := opt.Pairs
	if len(pairs) == 0 {
		for _, rt := range rtA {
			pairs = append(pairs, Pair{rt, rt})
		}
		for _, rt := range rtB {
			if !slices.Contains(rtA, rt) {
				pairs = append(pairs, Pair{rt, rt})
			}
		}
	} else {
		for _, p := range pairs {
			if !slices.Contains(rtA, p.A) {
				return nil, fmt.Errorf("pair %s=%s: A has no runtime %q (it has %s)", p.A, p.B, p.A, strings.Join(rtA, ", "))
			}
			if !slices.Contains(rtB, p.B) {
				return nil, fmt.Errorf("pair %s=%s: B has no runtime %q (it has %s)", p.A, p.B, p.B, strings.Join(rtB, ", "))
			}
		}
	}
	platforms := slices.Clone(plA)
	for _, p := range plB {
		if !slices.Contains(platforms, p) {
			platforms = append(platforms, p)
		}
	}
	var scales []int
	for k := range ca {
		scales = append(scales, k.Scale)
	}
	for k := range cb {
		scales = append(scales, k.Scale)
	}
	slices.Sort(scales)
	scales = slices.Compact(scales)

	res := &Result{Options: opt}
	for _, h := range a.Headers {
		res.ExperimentsA = appendNew(res.ExperimentsA, h.ExperimentID)
	}
	for _, h := range b.Headers {
		res.ExperimentsB = appendNew(res.ExperimentsB, h.ExperimentID)
	}
	for _, pl := range platforms {
		for _, p := range pairs {
			for _, n := range scales {
				sa, sb := ca[stats.CellKey{Platform: pl, Runtime: p.A, Scale: n}], cb[stats.CellKey{Platform: pl, Runtime: p.B, Scale: n}]
				if sa == nil && sb == nil {
					continue
				}
				res.Rows = append(res.Rows, compareCell(pl, n, p, sa, sb, opt))
			}
		}
	}
	return res, nil
}

// appendNew appends s unless it is there already; "" is never appended
// (an experiment id may be missing).
func appendNew(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func side(rt string, c *stats.Cell) Side {
	sd := Side{Runtime: rt}
	if c == nil {
		return sd
	}
	sd.Present, sd.Attempts, sd.Successes = true, c.Attempts, len(c.TTFB)
	if len(c.TTFB) > 0 {
		sorted := make([]float64, len(c.TTFB))
		for i, v := range c.TTFB {
			sorted[i] = float64(v)
		}
		slices.Sort(sorted)
		sd.Median = stats.Median(sorted)
	}
	return sd
}

func compareCell(platform string, n int, p Pair, sa, sb *stats.Cell, opt Options) Row {
	r := Row{Platform: platform, Scale: n, A: side(p.A, sa), B: side(p.B, sb)}
	if r.A.Successes == 0 || r.B.Successes == 0 {
		return r
	}
	r.Footprint = compareFootprints(sa, sb, opt)
	r.Tested = true
	la, lb := logs(sa.TTFB), logs(sb.TTFB)
	r.Test = MannWhitneyU(la, lb)
	if n > 1 {
		ca, cb := cellMedians(sa), cellMedians(sb)
		if len(ca) >= 2 && len(cb) >= 2 {
			t := MannWhitneyU(ca, cb)
			r.CellTest, r.CellsA, r.CellsB = &t, len(ca), len(cb)
			r.CellSignificant = t.P < opt.Alpha
		}
	}
	sh := HodgesLehmann(la, lb, 1-opt.Alpha)
	r.Change, r.ChangeLo, r.ChangeHi = math.Expm1(sh.Estimate), math.Expm1(sh.Lo), math.Expm1(sh.Hi)
	r.CIOK = sh.CIOK
	r.Significant = r.Test.P < opt.Alpha
	if r.Significant && opt.ThresholdPct > 0 {
		t := opt.ThresholdPct / 100
		slower, faster := r.Change >= t, r.Change <= -t
		switch opt.Direction {
		case DirectionSlower:
			r.Exceeds = slower
		case DirectionFaster:
			r.Exceeds = faster
		default:
			r.Exceeds = slower || faster
		}
	}
	return r
}

// cellMedians is, per cell (iteration) with a successful attempt, the
// median of its attempts' log TTFB, in the cells' order.
func cellMedians(c *stats.Cell) []float64 {
	byIter := make([][]float64, len(c.Responded))
	for i, v := range logs(c.TTFB) {
		if i < len(c.TTFBIter) {
			it := c.TTFBIter[i]
			byIter[it] = append(byIter[it], v)
		}
	}
	var out []float64
	for _, vs := range byIter {
		if len(vs) > 0 {
			slices.Sort(vs)
			out = append(out, stats.Median(vs))
		}
	}
	return out
}

// logs returns the natural logarithms of latencies (ns > 0; a value <= 0,
// which a successful attempt never has, is clamped to 1 ns).
func logs(v []int64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Log(math.Max(float64(x), 1))
	}
	return out
}

// Files streams and validates (with opt.Read) the results files a and b
// and compares them; with pairs in opt and b == "", the runtimes of a are
// compared with each other. A file given as both A and B is read once.
// A and B are separate inputs (a file compared with itself is no
// duplicate), each validated on its own.
func Files(ctx context.Context, a, b string, opt Options) (*Result, error) {
	if b == "" {
		if len(opt.Pairs) == 0 {
			return nil, fmt.Errorf("compare needs two results files, or one with --pair A=B")
		}
		b = a
	}
	// Compare reads TTFB samples and counts only: no phase offsets.
	load := func(path string) (*stats.Model, error) {
		m := stats.NewModel()
		m.NoPhases, m.NoRuntimeView = true, true
		return m.Load(ctx, opt.Read, path)
	}
	ma, err := load(a)
	if err != nil {
		return nil, err
	}
	mb := ma
	if b != a {
		if mb, err = load(b); err != nil {
			return nil, err
		}
	}
	res, err := CompareModels(ma, mb, opt)
	if err != nil {
		return nil, err
	}
	res.FilesA, res.FilesB = []string{a}, []string{b}
	res.Warnings = append(prefixed("A", ma.Warnings), prefixed("B", mb.Warnings)...)
	return res, nil
}

func prefixed(side string, w []string) []string {
	out := make([]string, len(w))
	for i, s := range w {
		out[i] = side + ": " + s
	}
	return out
}
