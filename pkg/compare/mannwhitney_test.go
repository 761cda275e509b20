package compare

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// enumerateU counts U over every arrangement of m x's and n y's (all
// C(m+n, m) equally likely under the null hypothesis).
func enumerateU(m, n int) []float64 {
	counts := make([]float64, m*n+1)
	total := 0.0
	var rec func(xLeft, yLeft, u, xsSeen int)
	// Build the sequence from the smallest value up: a y placed now exceeds
	// every x already placed.
	rec = func(xLeft, yLeft, u, xsSeen int) {
		if xLeft == 0 && yLeft == 0 {
			counts[u]++
			total++
			return
		}
		if xLeft > 0 {
			rec(xLeft-1, yLeft, u, xsSeen+1)
		}
		if yLeft > 0 {
			rec(xLeft, yLeft-1, u+xsSeen, xsSeen)
		}
	}
	rec(m, n, 0, 0)
	for i := range counts {
		counts[i] /= total
	}
	return counts
}

func TestUDistributionMatchesEnumeration(t *testing.T) {
	for m := 1; m <= 6; m++ {
		for n := 1; n <= 6; n++ {
			got, want := uDistribution(m, n), enumerateU(m, n)
			if len(got) != len(want) {
				t.Fatalf("m=%d n=%d: %d values, want %d", m, n, len(got), len(want))
			}
			for u := range got {
				if math.Abs(got[u]-want[u]) > 1e-12 {
					t.Errorf("m=%d n=%d: P(U=%d) = %g, want %g", m, n, u, got[u], want[u])
				}
			}
		}
	}
	// m = n = 3: P(U = 0) = 1/C(6,3) = 1/20.
	if p := uDistribution(3, 3)[0]; math.Abs(p-0.05) > 1e-15 {
		t.Errorf("P(U=0 | 3,3) = %g, want 0.05", p)
	}
	// Sums to 1 for the largest exact size.
	sum := 0.0
	for _, p := range uDistribution(ExactMaxN-1, ExactMaxN-1) {
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("distribution for n = %d sums to %v", ExactMaxN-1, sum)
	}
}

// R's ?wilcox.test example (Hollander & Wolfe 1973, p. 69): permeability
// constants; wilcox.test(x, y, alternative = "greater") gives W = 35,
// p = 0.1272, so the two-sided exact p is 0.2544.
func TestMannWhitneyExactReference(t *testing.T) {
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	r := MannWhitneyU(y, x) // U counts x > y, R's W
	if r.U != 35 || !r.Exact || r.Ties {
		t.Fatalf("got %+v, want U=35, exact, no ties", r)
	}
	if math.Abs(r.P-0.2544) > 0.0005 {
		t.Errorf("p = %.4f, want 0.2544", r.P)
	}
	// Swapping the samples mirrors U and keeps p.
	s := MannWhitneyU(x, y)
	if s.U != 50-35 || math.Abs(s.P-r.P) > 1e-12 {
		t.Errorf("swapped: U=%v p=%v, want U=15 p=%v", s.U, s.P, r.P)
	}
}

// With ties: normal approximation with tie-corrected variance and
// continuity correction, worked by hand:
// pooled 1x 2x 2x 2y 3x 3y 3y 4y 5y → midranks 1, 3, 3, 3, 6, 6, 6, 8, 9;
// rank sum of y = 3+6+6+8+9 = 32, U = 32 - 15 = 17, mn/2 = 10;
// σ² = 20/12 · (10 - 2·(27-3)/(9·8)) = 140/9; p = 2·(1 - Φ((7 - 0.5)/σ)).
func TestMannWhitneyTiesNormal(t *testing.T) {
	r := MannWhitneyU([]float64{1, 2, 2, 3}, []float64{2, 3, 3, 4, 5})
	if r.U != 17 || r.Exact || !r.Ties {
		t.Fatalf("got %+v, want U=17, normal approximation, ties", r)
	}
	want := math.Erfc(6.5 / math.Sqrt(140.0/9) / math.Sqrt2)
	if math.Abs(r.P-want) > 1e-12 {
		t.Errorf("p = %v, want %v", r.P, want)
	}
	// All values equal: no evidence at all.
	if r := MannWhitneyU([]float64{5, 5, 5}, []float64{5, 5}); r.P != 1 {
		t.Errorf("all tied: p = %v, want 1", r.P)
	}
}

// Large samples use the normal approximation; a clear shift is detected and
// identical distributions are not.
func TestMannWhitneyLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b, c []float64
	for range 200 {
		a = append(a, rng.ExpFloat64())
		b = append(b, rng.ExpFloat64()+0.5)
		c = append(c, rng.ExpFloat64())
	}
	if r := MannWhitneyU(a, b); r.Exact || r.P > 1e-6 {
		t.Errorf("shifted: %+v, want normal approximation and p < 1e-6", r)
	}
	if r := MannWhitneyU(a, c); r.P < 0.01 {
		t.Errorf("same distribution: p = %v", r.P)
	}
}

func bruteDiffs(x, y []float64) []float64 {
	var d []float64
	for _, a := range x {
		for _, b := range y {
			d = append(d, b-a)
		}
	}
	slices.Sort(d)
	return d
}

func TestKthDiffMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		m, n := 1+rng.IntN(12), 1+rng.IntN(12)
		x, y := make([]float64, m), make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64() * 100
			if trial%3 == 0 {
				x[i] = math.Round(x[i] / 50) // many ties
			}
		}
		for i := range y {
			y[i] = rng.NormFloat64()*100 + 20
			if trial%3 == 0 {
				y[i] = math.Round(y[i] / 50)
			}
		}
		xs, ys := slices.Clone(x), slices.Clone(y)
		slices.Sort(xs)
		slices.Sort(ys)
		want := bruteDiffs(x, y)
		for k := 1; k <= m*n; k++ {
			if got := kthDiff(xs, ys, k); got != want[k-1] {
				t.Fatalf("trial %d m=%d n=%d k=%d: %v, want %v", trial, m, n, k, got, want[k-1])
			}
		}
	}
}

func TestHodgesLehmann(t *testing.T) {
	// Estimate: median of the pairwise differences.
	x := []float64{1, 2, 3}
	y := []float64{4, 6, 9}
	// differences: 3,2,1, 5,4,3, 8,7,6 → sorted 1..8 with 3 twice → median 4
	if s := HodgesLehmann(x, y, 0.95); s.Estimate != 4 {
		t.Errorf("estimate = %v, want 4", s.Estimate)
	}
	// Too small for a 95% interval (P(U=0) = 0.05 > 0.025): CIOK false.
	if s := HodgesLehmann(x, y, 0.95); s.CIOK || s.Lo != 1 || s.Hi != 8 {
		t.Errorf("3 vs 3: %+v, want no CI and the extreme differences", s)
	}
	// A pure shift is recovered exactly.
	a := []float64{10, 13, 17, 22, 30, 31, 40, 41}
	b := make([]float64, len(a))
	for i, v := range a {
		b[i] = v + 7
	}
	if s := HodgesLehmann(a, b, 0.95); s.Estimate != 7 || !s.CIOK || !(s.Lo < 7 && s.Hi > 7) {
		t.Errorf("shift 7: %+v", s)
	}
}

// In the exact case the interval excludes 0 exactly when the test rejects
// at alpha = 1 - confidence, and its coverage is at least the confidence.
func TestCIAgreesWithTest(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 400 {
		m, n := 4+rng.IntN(20), 4+rng.IntN(20)
		shift := rng.Float64() * 1.5
		x, y := make([]float64, m), make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		for i := range y {
			y[i] = rng.NormFloat64() + shift
		}
		for _, conf := range []float64{0.9, 0.95, 0.99} {
			s := HodgesLehmann(x, y, conf)
			r := MannWhitneyU(x, y)
			if !r.Exact || !s.CIOK {
				continue
			}
			if s.Coverage < conf-1e-12 {
				t.Errorf("trial %d: coverage %v < %v", trial, s.Coverage, conf)
			}
			excludes := s.Lo > 0 || s.Hi < 0
			if rejects := r.P < 1-conf; excludes != rejects {
				t.Errorf("trial %d m=%d n=%d conf=%v: CI [%v, %v] excludes 0 = %v but p = %v", trial, m, n, conf, s.Lo, s.Hi, excludes, r.P)
			}
		}
	}
}
