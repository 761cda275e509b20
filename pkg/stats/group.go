package stats

import (
	"slices"

	"github.com/coldbench/coldbench/pkg/results"
)

// Unclassified is the failure class of a failed attempt that carries no
// ErrorClass, so such failures are still counted and visible.
const Unclassified = "unclassified"

// Row is one line of a report: every measured attempt of one runtime at one
// scale on one platform.
type Row struct {
	Platform string
	Runtime  string
	Scale    int // N instances cold-started at once

	// Attempts counts measured (non-warm-up) attempts;
	// Successes + Failures == Attempts always.
	Attempts        int
	Successes       int
	Failures        int
	FailuresByClass map[string]int // never nil; empty ErrorClass -> Unclassified
	// Warmups counts warm-up attempts; they never enter any other field.
	Warmups int

	// TTFB summarizes time to first byte (Attempt.TTFBNS) over successful
	// attempts only.
	TTFB Summary
}

type groupKey struct {
	platform, runtime string
	scale             int
}

// Group splits set's attempts into rows by (Platform, Runtime, Scale).
//
// Rows are ordered by platform, then runtime, each in order of first
// appearance in the set (so the report follows the experiment's runtime
// order rather than the alphabet), then by Scale ascending. A group that has
// only warm-ups still gets a row (Attempts = 0), so an interrupted run is
// visible rather than silently missing. Canceled attempts count as failures
// of class results.ErrCanceled.
func Group(set *results.Set) []Row {
	if set == nil {
		return nil
	}
	platformOrder := map[string]int{}
	runtimeOrder := map[string]int{}
	rows := map[groupKey]*Row{}
	ttfb := map[groupKey][]int64{}
	var keys []groupKey

	for i := range set.Attempts {
		a := &set.Attempts[i]
		if _, seen := platformOrder[a.Platform]; !seen {
			platformOrder[a.Platform] = len(platformOrder)
		}
		if _, seen := runtimeOrder[a.Runtime]; !seen {
			runtimeOrder[a.Runtime] = len(runtimeOrder)
		}
		k := groupKey{a.Platform, a.Runtime, a.Scale}
		r := rows[k]
		if r == nil {
			r = &Row{Platform: a.Platform, Runtime: a.Runtime, Scale: a.Scale, FailuresByClass: map[string]int{}}
			rows[k] = r
			keys = append(keys, k)
		}
		switch {
		case a.Warmup:
			r.Warmups++
		case a.OK:
			r.Attempts++
			r.Successes++
			ttfb[k] = append(ttfb[k], a.TTFBNS)
		default:
			r.Attempts++
			r.Failures++
			class := a.ErrorClass
			if class == "" {
				class = Unclassified
			}
			r.FailuresByClass[class]++
		}
	}

	slices.SortFunc(keys, func(x, y groupKey) int {
		if d := platformOrder[x.platform] - platformOrder[y.platform]; d != 0 {
			return d
		}
		if d := runtimeOrder[x.runtime] - runtimeOrder[y.runtime]; d != 0 {
			return d
		}
		return x.scale - y.scale
	})
	out := make([]Row, 0, len(keys))
	for _, k := range keys {
		r := rows[k]
		r.TTFB = Summarize(ttfb[k])
		out = append(out, *r)
	}
	return out
}
