// Package stats holds the pure statistics coldbench reports: quantiles,
// a distribution-free confidence interval for the median, per-group
// summaries, and the grouping of result records into report rows.
//
// It depends only on the standard library and pkg/results, so any tool that
// reads results files can use it without pulling in platform clients.
package stats

import "math"

// Quantile returns the p-quantile (0 <= p <= 1) of sorted, which must be in
// ascending order, using Hyndman & Fan's definition 7 — the default of R's
// quantile(), numpy.percentile and Excel's PERCENTILE.INC:
//
//	h = (n-1)·p          (0-based position)
//	Q(p) = x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋])
//
// So Quantile(x, 0) is the minimum, Quantile(x, 1) the maximum and
// Quantile(x, 0.5) the usual median (the mean of the two middle values when
// n is even). It returns NaN for an empty slice or p outside [0, 1].
func Quantile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 || !(p >= 0 && p <= 1) { // the negated form also rejects NaN
		return math.NaN()
	}
	h := float64(n-1) * p
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	frac := h - float64(lo)
	if frac == 0 {
		// Exact hit: avoid 0·(±Inf) = NaN and needless rounding.
		return sorted[lo]
	}
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// Median is Quantile(sorted, 0.5).
func Median(sorted []float64) float64 { return Quantile(sorted, 0.5) }
