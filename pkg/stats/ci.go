package stats

import "math"

// coverageSlack absorbs floating-point error in the binomial sums, so that a
// pair whose exact coverage equals the requested confidence is not rejected
// for a rounding error in the last bits. It is far below any difference that
// matters (coverage steps are >= ~1e-3 for n <= 1e5 near the 95% boundary).
const coverageSlack = 1e-12

// MedianCIIndices returns the 1-based ranks (j, k = n-j+1) of the order
// statistics x_(j), x_(k) that form the narrowest symmetric distribution-free
// confidence interval for the median of a continuous distribution from n
// samples, at the given confidence (0 < confidence < 1).
//
// For B ~ Binomial(n, 1/2), P(x_(j) <= median <= x_(n-j+1)) >= 1 - 2·P(B <= j-1),
// exactly, whatever the distribution; the largest j that still reaches the
// confidence gives the narrowest such interval. ok is false when even
// [x_(1), x_(n)] falls short (at 95%: n < 6, since 1 - 2·2^-5 = 0.9375).
//
// The binomial CDF is summed from pmf terms computed in log space with
// math.Lgamma, so it neither underflows (2^-n) nor overflows (C(n,k)) for
// large n; n = 100000 takes a few milliseconds.
func MedianCIIndices(n int, confidence float64) (j, k int, ok bool) {
	if n < 1 || !(confidence > 0 && confidence < 1) {
		return 0, 0, false
	}
	// Each tail may hold at most alpha/2 of the probability.
	tail := (1 - confidence) / 2
	lgN1, _ := math.Lgamma(float64(n) + 1)
	logHalfN := float64(n) * math.Ln2

	cdf := 0.0 // P(B <= i-1) for candidate j = i
	best := 0
	// j never needs to pass the middle: j <= n-j+1.
	for i := 1; i <= (n+1)/2; i++ {
		cdf += binomHalfPMF(n, i-1, lgN1, logHalfN)
		if cdf > tail+coverageSlack/2 {
			break
		}
		best = i
	}
	if best == 0 {
		return 0, 0, false
	}
	return best, n - best + 1, true
}

// binomHalfPMF is P(B = k) for B ~ Binomial(n, 1/2), via log-gamma.
func binomHalfPMF(n, k int, lgN1, logHalfN float64) float64 {
	lk, _ := math.Lgamma(float64(k) + 1)
	lnk, _ := math.Lgamma(float64(n-k) + 1)
	return math.Exp(lgN1 - lk - lnk - logHalfN) // underflows harmlessly to 0
}

// MedianCICoverage returns the exact coverage 1 - 2·P(B <= j-1) of the
// interval [x_(j), x_(n-j+1)] for n samples, B ~ Binomial(n, 1/2).
func MedianCICoverage(n, j int) float64 {
	if n < 1 || j < 1 || j > (n+1)/2 {
		return math.NaN()
	}
	lgN1, _ := math.Lgamma(float64(n) + 1)
	logHalfN := float64(n) * math.Ln2
	cdf := 0.0
	for i := 0; i <= j-1; i++ {
		cdf += binomHalfPMF(n, i, lgN1, logHalfN)
	}
	return 1 - 2*cdf
}

// MedianCI returns the distribution-free confidence interval for the median
// of sorted (ascending) at the given confidence: [x_(j), x_(n-j+1)] with j
// from MedianCIIndices. ok is false (and lo, hi are 0) when the sample is too
// small for that confidence; see MinNForMedianCI.
func MedianCI(sorted []float64, confidence float64) (lo, hi float64, ok bool) {
	j, k, ok := MedianCIIndices(len(sorted), confidence)
	if !ok {
		return 0, 0, false
	}
	return sorted[j-1], sorted[k-1], true
}

// MinNForMedianCI is the smallest sample size for which MedianCI can give an
// interval at this confidence: the smallest n with 1 - 2^(1-n) >= confidence
// (6 at 95%, 8 at 99%). It returns 0 for a confidence outside (0, 1).
func MinNForMedianCI(confidence float64) int {
	if !(confidence > 0 && confidence < 1) {
		return 0
	}
	for n := 1; ; n++ {
		if 1-math.Ldexp(1, 1-n) >= confidence-coverageSlack {
			return n
		}
	}
}
