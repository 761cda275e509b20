package stats

import (
	"math"
	"testing"
)

// Exact p-values, by hand: with ranks 1..6, P(W+ ≥ 17) counts the 7 subsets
// summing to ≤ 4 (R's wilcox.test gives the same without ties or zeros;
// with them it falls back to a normal approximation, where these are the
// exact conditional values).
func TestSignedRank(t *testing.T) {
	for _, c := range []struct {
		name  string
		d     []float64
		wPlus float64
		p     float64
		n     int
	}{
		{"all positive", []float64{1, 2, 3, 4, 5, 6}, 21, 2.0 / 64, 6},
		{"one negative", []float64{1, 2, 3, -4, 5, 6}, 17, 14.0 / 64, 6},
		{"signs swapped give the same p", []float64{-1, -2, -3, 4, -5, -6}, 4, 14.0 / 64, 6},
		{"zeros dropped", []float64{0, 0.5, -0.25, 0}, 2, 1, 2},
		{"balanced", []float64{1, -1, 2, -2}, 5, 1, 4},
		// |2| twice shares rank 2.5: W+ = 1 + 2.5 + 4 = 7.5 of 10; of the 16
		// subset sums of the doubled ranks {2, 5, 5, 8}, 8 are as far from
		// 10 as 15 (≤ 5 or ≥ 15).
		{"ties averaged", []float64{1, 2, -2, 3}, 7.5, 8.0 / 16, 4},
		{"none", nil, 0, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, p, n, err := SignedRank(c.d)
			if err != nil {
				t.Fatal(err)
			}
			if w != c.wPlus || math.Abs(p-c.p) > 1e-12 || n != c.n {
				t.Errorf("SignedRank(%v) = W+ %v, p %v, n %d; want %v, %v, %d", c.d, w, p, n, c.wPlus, c.p, c.n)
			}
		})
	}
	if _, p, _, err := SignedRank(make([]float64, 30)); err != nil || p != 1 {
		t.Errorf("zeros only: p %v, %v: want 1 (they are dropped)", p, err)
	}
	// 60 pairs all positive: p = 2/2^60, beyond any enumeration of signs.
	sixty := make([]float64, 60)
	for i := range sixty {
		sixty[i] = float64(i + 1)
	}
	if _, p, _, err := SignedRank(sixty); err != nil || math.Abs(p-math.Ldexp(2, -60)) > 1e-30 {
		t.Errorf("60 positive pairs: p %v, %v; want 2^-59", p, err)
	}
	many := make([]float64, MaxSignedRankPairs+1)
	for i := range many {
		many[i] = float64(i + 1)
	}
	if _, _, _, err := SignedRank(many); err == nil {
		t.Error("more pairs than the exact test enumerates: want an error")
	}
	if _, _, _, err := SignedRank([]float64{1, math.NaN()}); err == nil {
		t.Error("NaN: want an error")
	}
}

func TestPairedMedianRatio(t *testing.T) {
	if got := PairedMedianRatio([]float64{100, 200, 400}, []float64{110, 180, 440}); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("got %v, want +0.1 (the median of +10 %%, −10 %%, +10 %%)", got)
	}
	if got := PairedMedianRatio(nil, nil); !math.IsNaN(got) {
		t.Errorf("no pair: got %v, want NaN", got)
	}
}
