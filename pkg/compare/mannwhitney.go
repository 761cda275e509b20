package compare

import (
	"math"
	"slices"
)

// ExactMaxN: the exact null distribution of U is used when both samples are
// smaller than this and there are no ties (as R's wilcox.test does);
// otherwise the normal approximation with tie and continuity correction.
const ExactMaxN = 50

// MannWhitney is the two-sided Mann–Whitney U (Wilcoxon rank-sum) test of
// x against y.
type MannWhitney struct {
	// U counts the pairs (x_i, y_j) with y_j > x_i, ties counting one half:
	// mn/2 under no difference, larger when y tends to be larger.
	U float64
	// P is the two-sided p-value.
	P float64
	// Exact: P is from the exact distribution of U (no ties, n < ExactMaxN
	// on both sides); otherwise from the normal approximation with the
	// variance corrected for ties and a continuity correction of 1/2.
	Exact bool
	// Ties: some values occur in both or within the samples.
	Ties bool
}

// MannWhitneyU tests whether x and y come from the same distribution
// against a shift in either direction. Both samples must be non-empty.
func MannWhitneyU(x, y []float64) MannWhitney {
	m, n := len(x), len(y)
	if m == 0 || n == 0 {
		return MannWhitney{P: math.NaN()}
	}
	// Ranks of the pooled sample, midranks for ties.
	type obs struct {
		v   float64
		isY bool
	}
	all := make([]obs, 0, m+n)
	for _, v := range x {
		all = append(all, obs{v, false})
	}
	for _, v := range y {
		all = append(all, obs{v, true})
	}
	slices.SortStableFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	N := float64(m + n)
	var rankSumY, tieTerm float64
	ties := false
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		t := float64(j - i)
		if t > 1 {
			ties = true
			tieTerm += t*t*t - t
		}
		mid := float64(i+j+1) / 2 // ranks i+1 … j
		for k := i; k < j; k++ {
			if all[k].isY {
				rankSumY += mid
			}
		}
		i = j
	}
	fm, fn := float64(m), float64(n)
	u := rankSumY - fn*(fn+1)/2
	r := MannWhitney{U: u, Ties: ties}
	if !ties && m < ExactMaxN && n < ExactMaxN {
		dist := uDistribution(m, n)
		k := int(math.Round(u))
		lower, upper := 0.0, 0.0
		for i := 0; i <= k; i++ {
			lower += dist[i]
		}
		for i := k; i < len(dist); i++ {
			upper += dist[i]
		}
		r.P = math.Min(1, 2*math.Min(lower, upper))
		r.Exact = true
		return r
	}
	sigma := math.Sqrt(fm * fn / 12 * ((N + 1) - tieTerm/(N*(N-1))))
	dev := math.Abs(u-fm*fn/2) - 0.5
	if sigma == 0 || dev <= 0 {
		r.P = 1
		return r
	}
	r.P = math.Min(1, math.Erfc(dev/sigma/math.Sqrt2))
	return r
}

// uDistribution returns P(U = u), u = 0 … m·n, for samples of sizes m and n
// without ties under the null hypothesis. It uses the recurrence on the
// largest observation: it is a y with probability n/(m+n), and then exceeds
// all m x's, so p(m, n, u) = n/(m+n)·p(m, n-1, u-m) + m/(m+n)·p(m-1, n, u).
// Only sums of non-negative terms, so no cancellation; O(m²n²) time.
func uDistribution(m, n int) []float64 {
	// prev[j] is the distribution for (i-1, j), cur[j] for (i, j).
	prev := make([][]float64, n+1)
	for j := range prev {
		prev[j] = []float64{1} // i = 0: U = 0
	}
	for i := 1; i <= m; i++ {
		cur := make([][]float64, n+1)
		cur[0] = []float64{1} // j = 0: U = 0
		for j := 1; j <= n; j++ {
			d := make([]float64, i*j+1)
			py := float64(j) / float64(i+j)
			px := float64(i) / float64(i+j)
			for u, p := range cur[j-1] { // largest is a y: U += i
				d[u+i] += py * p
			}
			for u, p := range prev[j] { // largest is an x
				d[u] += px * p
			}
			cur[j] = d
		}
		prev = cur
	}
	return prev[n]
}

// uQuantile is the smallest u with P(U <= u) >= p (R's qwilcox).
func uQuantile(dist []float64, p float64) int {
	cum := 0.0
	for u, q := range dist {
		cum += q
		if cum >= p*(1-1e-12) {
			return u
		}
	}
	return len(dist) - 1
}

// Shift is the Hodges–Lehmann estimate of the shift from x to y and its
// distribution-free confidence interval (Moses), from the m·n pairwise
// differences y_j - x_i.
type Shift struct {
	Estimate float64 // median of the pairwise differences
	Lo, Hi   float64 // confidence interval: order statistics of the differences
	// CIOK is false when the samples are too small for an interval at the
	// requested confidence (Lo, Hi are then the smallest and largest
	// difference, which cover less).
	CIOK bool
	// Coverage is the interval's actual coverage (exact case) or the
	// requested confidence (normal approximation).
	Coverage float64
}

// HodgesLehmann estimates the shift y - x. The interval's order statistics
// come from the exact distribution of U when there are no ties and both
// samples are smaller than ExactMaxN, else from its normal approximation
// with tie correction (so the interval excludes 0 exactly when the
// Mann–Whitney test rejects at 1 - confidence in the exact case, and nearly
// so otherwise).
func HodgesLehmann(x, y []float64, confidence float64) Shift {
	m, n := len(x), len(y)
	if m == 0 || n == 0 {
		return Shift{Estimate: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	xs, ys := slices.Clone(x), slices.Clone(y)
	slices.Sort(xs)
	slices.Sort(ys)
	mn := m * n
	s := Shift{}
	if mn%2 == 1 {
		s.Estimate = kthDiff(xs, ys, (mn+1)/2)
	} else {
		s.Estimate = (kthDiff(xs, ys, mn/2) + kthDiff(xs, ys, mn/2+1)) / 2
	}
	alpha := 1 - confidence
	var k int // the interval is [d_(k), d_(mn-k+1)]
	if !hasTies(xs, ys) && m < ExactMaxN && n < ExactMaxN {
		dist := uDistribution(m, n)
		k = uQuantile(dist, alpha/2)
		if k >= 1 {
			cum := 0.0
			for u := 0; u < k; u++ {
				cum += dist[u]
			}
			s.Coverage = 1 - 2*cum
			s.CIOK = true
		}
	} else {
		N := float64(m + n)
		sigma := math.Sqrt(float64(mn) / 12 * ((N + 1) - tieSum(xs, ys)/(N*(N-1))))
		z := math.Sqrt2 * math.Erfinv(1-alpha)
		k = int(math.Floor(float64(mn)/2 - z*sigma + 0.5))
		if k >= 1 {
			s.Coverage = confidence
			s.CIOK = true
		}
	}
	if k < 1 {
		k = 1
	}
	s.Lo = kthDiff(xs, ys, k)
	s.Hi = kthDiff(xs, ys, mn-k+1)
	return s
}

// hasTies reports whether any value occurs twice in the pooled samples.
func hasTies(xs, ys []float64) bool {
	pooled := append(slices.Clone(xs), ys...)
	slices.Sort(pooled)
	for i := 1; i < len(pooled); i++ {
		if pooled[i] == pooled[i-1] {
			return true
		}
	}
	return false
}

// tieSum is Σ(t³ - t) over groups of t equal values in the pooled sample.
func tieSum(xs, ys []float64) float64 {
	pooled := append(slices.Clone(xs), ys...)
	slices.Sort(pooled)
	sum := 0.0
	for i := 0; i < len(pooled); {
		j := i
		for j < len(pooled) && pooled[j] == pooled[i] {
			j++
		}
		t := float64(j - i)
		sum += t*t*t - t
		i = j
	}
	return sum
}

// countDiffsLE counts the pairs with ys[j] - xs[i] <= t (both ascending)
// and returns the smallest difference greater than t (+Inf if none).
// Floating-point subtraction is monotone, so for a fixed j the differences
// fall as i grows and rise with j: one pointer walks xs once.
func countDiffsLE(xs, ys []float64, t float64) (count int, nextAbove float64) {
	m := len(xs)
	nextAbove = math.Inf(1)
	i := 0 // first index with ys[j]-xs[i] <= t
	for _, yv := range ys {
		for i < m && yv-xs[i] > t {
			i++
		}
		count += m - i
		if i > 0 { // xs[i-1] gives the smallest difference above t for this y
			nextAbove = math.Min(nextAbove, yv-xs[i-1])
		}
	}
	return count, nextAbove
}

// kthDiff returns the k-th smallest (1-based) of the m·n differences
// ys[j] - xs[i] without forming them: bisection on the value with
// countDiffsLE, O((m+n)·log) time and O(1) extra memory, so large samples
// cost no m·n array.
func kthDiff(xs, ys []float64, k int) float64 {
	m, n := len(xs), len(ys)
	lo := ys[0] - xs[m-1] // the smallest difference
	hi := ys[n-1] - xs[0] // the largest
	if c, _ := countDiffsLE(xs, ys, lo); c >= k {
		return lo
	}
	// Invariant: count(lo) < k <= count(hi).
	for range 4096 {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break
		}
		if c, _ := countDiffsLE(xs, ys, mid); c >= k {
			hi = mid
		} else {
			lo = mid
		}
	}
	// No float lies strictly between lo and hi, so every difference in
	// (lo, hi] equals the smallest difference above lo, which is d_(k).
	_, next := countDiffsLE(xs, ys, lo)
	return next
}
