package stats

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// MaxSignedRankPairs bounds SignedRank's exact distribution, computed over
// the sums of doubled ranks (n² cells and n·n² steps, and 2^n, the count of
// sign assignments, within float64): far more pairs than an A/B here has.
const MaxSignedRankPairs = 500

// SignedRank is the Wilcoxon signed-rank test of paired differences d
// against a median of 0, exact (the distribution of W+ over every
// assignment of signs to the ranks, ties given their average rank: the
// exact conditional test): the test for an A/B whose
// samples come in pairs that share their conditions, as adjacent cells of
// an interleaved run do. Zeros are dropped. It returns W+ (the sum of the
// positive differences' ranks), the two-sided p and the pairs used.
func SignedRank(d []float64) (wPlus, p float64, n int, err error) {
	var nz []float64
	for _, v := range d {
		if math.IsNaN(v) {
			return 0, 0, 0, fmt.Errorf("signed-rank test: a difference is NaN")
		}
		if v != 0 {
			nz = append(nz, v)
		}
	}
	n = len(nz)
	if n == 0 {
		return 0, 1, 0, nil
	}
	if n > MaxSignedRankPairs {
		return 0, 0, n, fmt.Errorf("signed-rank test: %d pairs, above the exact test's %d", n, MaxSignedRankPairs)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return math.Abs(nz[idx[a]]) < math.Abs(nz[idx[b]]) })
	// Ranks doubled, so that tied averages stay integers for the
	// enumeration below.
	rank2 := make([]int, n)
	for i := 0; i < n; {
		j := i
		for j+1 < n && math.Abs(nz[idx[j+1]]) == math.Abs(nz[idx[i]]) {
			j++
		}
		for k := i; k <= j; k++ {
			rank2[idx[k]] = i + j + 2 // (i+1 + j+1) / 2, doubled
		}
		i = j + 1
	}
	w2, total2 := 0, 0
	for i, v := range nz {
		total2 += rank2[i]
		if v > 0 {
			w2 += rank2[i]
		}
	}
	// Distribution of 2·W+ under the null: each rank's sign a fair coin.
	counts := make([]float64, total2+1)
	counts[0] = 1
	for _, r := range rank2 {
		for s := total2; s >= r; s-- {
			counts[s] += counts[s-r]
		}
	}
	all := math.Ldexp(1, n)
	// Two-sided: the tail at least as far from the centre as observed.
	dev := math.Abs(float64(2*w2 - total2))
	tail := 0.0
	for s, c := range counts {
		if math.Abs(float64(2*s-total2)) >= dev-1e-9 {
			tail += c
		}
	}
	return float64(w2) / 2, min(1, tail/all), n, nil
}

// PairedMedianRatio is the median of b[i]/a[i] − 1 over the pairs: the
// typical change from A to B when each pair shares its conditions.
func PairedMedianRatio(a, b []float64) float64 {
	r := make([]float64, 0, len(a))
	for i := range a {
		if i < len(b) && a[i] > 0 {
			r = append(r, b[i]/a[i]-1)
		}
	}
	if len(r) == 0 {
		return math.NaN()
	}
	slices.Sort(r)
	return Median(r)
}
