package stats

import (
	"math"
	"slices"
)

// CIConfidence is the confidence level of the median interval in a Summary.
const CIConfidence = 0.95

// P99MinN is the sample size below which P99 is flagged unreliable. With
// n < 100 (type-7 definition) the p99 lies between the two largest samples,
// so it says little more than "about the max". The threshold is the usual
// rule of thumb of at least 1/(1-p) samples; note that at n = 100 the p99
// still lies in the top interval (h = 98.01), from n = 101 on it does not.
const P99MinN = 100

// Summary describes one sample of latencies. All values are nanoseconds.
// For N = 0 every value is 0 (never NaN, so a Summary always encodes as JSON).
type Summary struct {
	N     int
	Mean  float64
	Stdev float64 // sample standard deviation (n-1 denominator); 0 for N < 2
	Min   float64
	Max   float64
	P50   float64 // median, Quantile type 7
	P90   float64
	P95   float64
	P99   float64
	// P99Reliable is N >= P99MinN; when false, P99 is only an interpolation
	// between the two largest samples.
	P99Reliable bool

	// Distribution-free interval for the median at CIConfidence; see
	// MedianCI. CIOK is false (and Lo, Hi are 0) when N is too small.
	MedianCILo float64
	MedianCIHi float64
	CIOK       bool
}

// Summarize computes a Summary of latencies in nanoseconds. The input is not
// modified; values are expected to be finite.
func Summarize[T ~int64 | ~float64](latenciesNS []T) Summary {
	n := len(latenciesNS)
	s := Summary{N: n}
	if n == 0 {
		return s
	}
	x := make([]float64, n)
	for i, v := range latenciesNS {
		x[i] = float64(v)
	}
	slices.Sort(x)

	s.Mean, s.Stdev = meanStdev(x)
	s.Min, s.Max = x[0], x[n-1]
	s.P50 = Quantile(x, 0.50)
	s.P90 = Quantile(x, 0.90)
	s.P95 = Quantile(x, 0.95)
	s.P99 = Quantile(x, 0.99)
	s.P99Reliable = n >= P99MinN
	s.MedianCILo, s.MedianCIHi, s.CIOK = MedianCI(x, CIConfidence)
	return s
}

// meanStdev uses two passes plus the compensation term (the "corrected
// two-pass algorithm"), which stays accurate when the spread is tiny
// compared with the values — typical for nanosecond latencies.
func meanStdev(x []float64) (mean, stdev float64) {
	n := float64(len(x))
	var sum float64
	for _, v := range x {
		sum += v
	}
	mean = sum / n
	if len(x) < 2 {
		return mean, 0
	}
	var ss, comp float64
	for _, v := range x {
		d := v - mean
		ss += d * d
		comp += d
	}
	variance := (ss - comp*comp/n) / (n - 1)
	if variance < 0 { // rounding on constant input
		variance = 0
	}
	return mean, math.Sqrt(variance)
}
