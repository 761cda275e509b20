package stats

import (
	"math"
	"slices"
	"testing"
)

func approx(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestQuantileOneToTen(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	// Hand computation, h = (n-1)p = 9p:
	//   p=.25 h=2.25 -> 3 + .25*1 = 3.25
	//   p=.5  h=4.5  -> 5 + .5*1  = 5.5
	//   p=.9  h=8.1  -> 9 + .1*1  = 9.1
	//   p=.95 h=8.55 -> 9.55, p=.99 h=8.91 -> 9.91
	cases := []struct{ p, want float64 }{
		{0, 1}, {0.25, 3.25}, {0.5, 5.5}, {0.9, 9.1}, {0.95, 9.55}, {0.99, 9.91}, {1, 10},
	}
	for _, c := range cases {
		if got := Quantile(x, c.p); !approx(got, c.want) {
			t.Errorf("Quantile(1..10, %v) = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestQuantilePi(t *testing.T) {
	// {3,1,4,1,5,9,2,6} sorted = {1,1,2,3,4,5,6,9}, h = 7p:
	//   p=.25 h=1.75 -> 1 + .75*(2-1) = 1.75
	//   p=.5  h=3.5  -> 3 + .5*(4-3)  = 3.5 (mean of the two middle values)
	//   p=.75 h=5.25 -> 5 + .25*(6-5) = 5.25
	//   p=.9  h=6.3  -> 6 + .3*(9-6)  = 6.9
	//   p=.99 h=6.93 -> 6 + .93*3     = 8.79
	// (numpy.percentile agrees: [1.75, 3.5, 5.25, 6.9, 8.79].)
	x := []float64{1, 1, 2, 3, 4, 5, 6, 9}
	cases := []struct{ p, want float64 }{
		{0.25, 1.75}, {0.5, 3.5}, {0.75, 5.25}, {0.9, 6.9}, {0.99, 8.79},
	}
	for _, c := range cases {
		if got := Quantile(x, c.p); !approx(got, c.want) {
			t.Errorf("Quantile(pi digits, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Median(x); !approx(got, 3.5) {
		t.Errorf("Median = %v, want 3.5", got)
	}
}

func TestQuantileEdges(t *testing.T) {
	if got := Quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("Quantile(empty) = %v, want NaN", got)
	}
	for _, p := range []float64{-0.1, 1.1, math.NaN()} {
		if got := Quantile([]float64{1, 2}, p); !math.IsNaN(got) {
			t.Errorf("Quantile(p=%v) = %v, want NaN", p, got)
		}
	}
	for _, p := range []float64{0, 0.3, 0.5, 0.99, 1} {
		if got := Quantile([]float64{7}, p); got != 7 {
			t.Errorf("Quantile({7}, %v) = %v, want 7", p, got)
		}
	}
	// n=2: straight line between the two.
	if got := Quantile([]float64{10, 20}, 0.99); !approx(got, 19.9) {
		t.Errorf("Quantile({10,20}, .99) = %v, want 19.9", got)
	}
	// Ties and infinities at an exact position must not produce NaN.
	if got := Quantile([]float64{1, 2, math.Inf(1)}, 0.5); got != 2 {
		t.Errorf("Quantile({1,2,+Inf}, .5) = %v, want 2", got)
	}
}

func TestMedianCIIndicesKnownTables(t *testing.T) {
	// 95%: n=10 and n=30, n=100 as in Le Boudec, "Performance Evaluation of
	// Computer and Communication Systems", Table A.1. The rest were checked
	// with exact rational arithmetic (sum of C(n,i)/2^n).
	cases := []struct {
		n     int
		conf  float64
		j, k  int
		valid bool
	}{
		{5, 0.95, 0, 0, false},
		{6, 0.95, 1, 6, true},
		{7, 0.95, 1, 7, true},
		{10, 0.95, 2, 9, true},
		{20, 0.95, 6, 15, true},
		{30, 0.95, 10, 21, true},
		{50, 0.95, 18, 33, true},
		{100, 0.95, 40, 61, true},
		{1000, 0.95, 469, 532, true},
		{10000, 0.95, 4902, 5099, true},
		{7, 0.99, 0, 0, false},
		{8, 0.99, 1, 8, true},
		{10, 0.99, 1, 10, true},
		{30, 0.99, 8, 23, true},
		{100, 0.99, 37, 64, true},
	}
	for _, c := range cases {
		j, k, ok := MedianCIIndices(c.n, c.conf)
		if j != c.j || k != c.k || ok != c.valid {
			t.Errorf("MedianCIIndices(%d, %v) = %d, %d, %v; want %d, %d, %v", c.n, c.conf, j, k, ok, c.j, c.k, c.valid)
		}
	}
}

func TestMedianCICoverage(t *testing.T) {
	// n=10, j=2: 1 - 2*(C(10,0)+C(10,1))/2^10 = 1 - 22/1024.
	if got, want := MedianCICoverage(10, 2), 1-22.0/1024; !approx(got, want) {
		t.Errorf("coverage(10,2) = %v, want %v", got, want)
	}
	// n=10, j=3: 1 - 2*56/1024 = 0.890625 < .95, hence j=2 above.
	if got, want := MedianCICoverage(10, 3), 1-112.0/1024; !approx(got, want) {
		t.Errorf("coverage(10,3) = %v, want %v", got, want)
	}
	// n=6, j=1: 1 - 2/64.
	if got, want := MedianCICoverage(6, 1), 1-2.0/64; !approx(got, want) {
		t.Errorf("coverage(6,1) = %v, want %v", got, want)
	}
	// n=30, j=10: 1 - 2*sum_{i<10} C(30,i)/2^30 = 513906825/536870912.
	if got, want := MedianCICoverage(30, 10), 513906825.0/536870912; !approx(got, want) {
		t.Errorf("coverage(30,10) = %v, want %v", got, want)
	}
}

func TestMedianCILargeN(t *testing.T) {
	// Exact big-integer arithmetic (largest j with 40*sum_{i<j} C(n,i) <= 2^n)
	// gives j = 49690 at n = 100000, 95%; the normal approximation
	// n/2 - 1.96*sqrt(n)/2 = 49690.1 agrees.
	const largeNJ = 49690
	j, k, ok := MedianCIIndices(100000, 0.95)
	if !ok || j != largeNJ || k != 100000-largeNJ+1 {
		t.Errorf("MedianCIIndices(100000, .95) = %d, %d, %v; want %d, %d, true", j, k, ok, largeNJ, 100000-largeNJ+1)
	}
	if c := MedianCICoverage(100000, j); !(c >= 0.95) || c > 0.955 {
		t.Errorf("coverage at n=100000, j=%d = %v; want just above 0.95", j, c)
	}
	if c := MedianCICoverage(100000, j+1); !(c < 0.95) {
		t.Errorf("coverage at n=100000, j+1=%d = %v; want below 0.95", j+1, c)
	}
}

func TestMedianCIValues(t *testing.T) {
	x := make([]float64, 30)
	for i := range x {
		x[i] = float64(10 * (i + 1)) // x_(i) = 10*i, 1-based
	}
	lo, hi, ok := MedianCI(x, 0.95)
	if !ok || lo != 100 || hi != 210 {
		t.Errorf("MedianCI(10..300) = %v, %v, %v; want 100, 210, true", lo, hi, ok)
	}
	for n := 0; n < 6; n++ {
		if lo, hi, ok := MedianCI(x[:n], 0.95); ok || lo != 0 || hi != 0 {
			t.Errorf("MedianCI(n=%d) = %v, %v, %v; want 0, 0, false", n, lo, hi, ok)
		}
	}
	for _, conf := range []float64{0, 1, -1, math.NaN()} {
		if _, _, ok := MedianCI(x, conf); ok {
			t.Errorf("MedianCI(confidence=%v) ok; want false", conf)
		}
	}
}

func TestMinNForMedianCI(t *testing.T) {
	cases := map[float64]int{0.95: 6, 0.99: 8, 0.9: 5, 0.5: 2}
	for conf, want := range cases {
		if got := MinNForMedianCI(conf); got != want {
			t.Errorf("MinNForMedianCI(%v) = %d, want %d", conf, got, want)
		}
		// Consistent with MedianCIIndices.
		if _, _, ok := MedianCIIndices(want, conf); !ok {
			t.Errorf("MedianCIIndices(%d, %v) not ok", want, conf)
		}
		if _, _, ok := MedianCIIndices(want-1, conf); ok {
			t.Errorf("MedianCIIndices(%d, %v) ok", want-1, conf)
		}
	}
}

func TestSummarizeHand(t *testing.T) {
	// {2,4,4,4,5,5,7,9}: mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32,
	// sample variance 32/7, stdev sqrt(32/7) = 2.138089935299395.
	in := []int64{9, 4, 2, 5, 4, 7, 4, 5} // unsorted on purpose
	s := Summarize(in)
	if in[0] != 9 || in[7] != 5 {
		t.Fatalf("Summarize modified its input: %v", in)
	}
	// h = 7p: p50 h=3.5 -> 4.5; p90 h=6.3 -> 7+.3*2 = 7.6;
	// p95 h=6.65 -> 7+.65*2 = 8.3; p99 h=6.93 -> 7+.93*2 = 8.86.
	want := Summary{N: 8, Mean: 5, Stdev: 2.138089935299395, Min: 2, Max: 9,
		P50: 4.5, P90: 7.6, P95: 8.3, P99: 8.86, P99Reliable: false,
		MedianCILo: 2, MedianCIHi: 9, CIOK: true} // n=8 at 95%: j=1, k=8
	checkSummary(t, s, want)
}

func TestSummarizeSmall(t *testing.T) {
	checkSummary(t, Summarize([]int64{}), Summary{})
	checkSummary(t, Summarize[float64](nil), Summary{})
	checkSummary(t, Summarize([]int64{42}), Summary{N: 1, Mean: 42, Min: 42, Max: 42, P50: 42, P90: 42, P95: 42, P99: 42})
	// n=2: {10,20}: mean 15, stdev sqrt(50) = 7.0710678118654755,
	// p90 = 10+.9*10 = 19, p95 = 19.5, p99 = 19.9.
	checkSummary(t, Summarize([]float64{20, 10}), Summary{N: 2, Mean: 15, Stdev: 7.0710678118654755,
		Min: 10, Max: 20, P50: 15, P90: 19, P95: 19.5, P99: 19.9})
	// Constant input: stdev exactly 0, not a rounding residue or NaN.
	c := Summarize([]int64{1_000_000_007, 1_000_000_007, 1_000_000_007})
	if c.Stdev != 0 {
		t.Errorf("stdev of constant = %v, want 0", c.Stdev)
	}
}

func TestSummarizeP99Reliable(t *testing.T) {
	mk := func(n int) []int64 {
		x := make([]int64, n)
		for i := range x {
			x[i] = int64(i + 1)
		}
		return x
	}
	if Summarize(mk(99)).P99Reliable {
		t.Error("n=99: P99Reliable = true")
	}
	s := Summarize(mk(100))
	if !s.P99Reliable {
		t.Error("n=100: P99Reliable = false")
	}
	// 1..100: h = 99*.99 = 98.01 -> 99 + .01 = 99.01; median CI ranks 40, 61.
	if !approx(s.P99, 99.01) || s.MedianCILo != 40 || s.MedianCIHi != 61 || !s.CIOK {
		t.Errorf("1..100: p99=%v ci=[%v,%v] ok=%v; want 99.01 [40,61] true", s.P99, s.MedianCILo, s.MedianCIHi, s.CIOK)
	}
}

func TestStdevAccuracyLargeOffset(t *testing.T) {
	// Latencies around 10 s with a spread of a few ns: the naive
	// sum-of-squares formula loses everything here.
	base := int64(10_000_000_000)
	s := Summarize([]int64{base + 1, base + 2, base + 3, base + 4})
	// {1,2,3,4}: variance (2.25+.25+.25+2.25)/3 = 5/3.
	if want := math.Sqrt(5.0 / 3); !approx(s.Stdev, want) {
		t.Errorf("stdev = %v, want %v", s.Stdev, want)
	}
}

func checkSummary(t *testing.T, got, want Summary) {
	t.Helper()
	fs := []struct {
		name string
		g, w float64
	}{
		{"Mean", got.Mean, want.Mean}, {"Stdev", got.Stdev, want.Stdev},
		{"Min", got.Min, want.Min}, {"Max", got.Max, want.Max},
		{"P50", got.P50, want.P50}, {"P90", got.P90, want.P90},
		{"P95", got.P95, want.P95}, {"P99", got.P99, want.P99},
		{"MedianCILo", got.MedianCILo, want.MedianCILo}, {"MedianCIHi", got.MedianCIHi, want.MedianCIHi},
	}
	for _, f := range fs {
		if math.IsNaN(f.g) || !approx(f.g, f.w) {
			t.Errorf("%s = %v, want %v", f.name, f.g, f.w)
		}
	}
	if got.N != want.N || got.P99Reliable != want.P99Reliable || got.CIOK != want.CIOK {
		t.Errorf("N/P99Reliable/CIOK = %d/%v/%v, want %d/%v/%v", got.N, got.P99Reliable, got.CIOK, want.N, want.P99Reliable, want.CIOK)
	}
}

func TestPhaseOrder(t *testing.T) {
	cells := []map[string][]float64{
		{"b": {30, 10, 20}, "a": {5}, "c": {20}},
		{"b": {40}, "c": {20}, "d": {1}},
	}
	// means of medians: a 5, b (20+40)/2 = 30, c 20, d 1; e is never reached;
	// x and y tie and keep the order of names.
	cells = append(cells, map[string][]float64{"y": {7}, "x": {7}})
	got := PhaseOrder([]string{"y", "b", "a", "e", "c", "d", "x"}, cells)
	want := []string{"d", "a", "y", "x", "c", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("PhaseOrder = %v, want %v", got, want)
	}
}
