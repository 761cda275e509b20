package capacity

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"testing"
)

// oracle says how many of n instances answer at iteration it.
type oracle func(n, it int) int

// run drives the search with the oracle until it is done, failing the test
// if it probes a (N, iteration) twice or an N outside [1, MaxN], or does not
// end within the bound of the package comment. It returns the probes in
// order ("N/iteration") and the outcomes.
func run(t *testing.T, s Search, answer oracle) ([]string, Outcomes) {
	t.Helper()
	o := Outcomes{}
	var seq []string
	limit := s.Iterations * (2*bits.Len(uint(s.MaxN)) + 2)
	for range limit + 1 {
		st := s.Next(o)
		if st.Done {
			return seq, o
		}
		if st.N < 1 || st.N > s.MaxN {
			t.Fatalf("%+v: probes N = %d outside [1, %d] after %v", s, st.N, s.MaxN, seq)
		}
		if _, seen := o[st.N][st.Iteration]; seen {
			t.Fatalf("%+v: probes N = %d iteration %d again after %v", s, st.N, st.Iteration, seq)
		}
		if st.Iteration < 0 || st.Iteration >= s.Iterations {
			t.Fatalf("%+v: iteration %d out of range", s, st.Iteration)
		}
		o.Add(st.N, st.Iteration, answer(st.N, st.Iteration))
		seq = append(seq, fmt.Sprintf("%d/%d", st.N, st.Iteration))
	}
	t.Fatalf("%+v: not done after %d probes: %v", s, limit, seq)
	return nil, nil
}

// With a monotone oracle (everything up to capacity c answers, nothing
// above), the search finds exactly the largest passing N within the
// resolution, for every start, bound, resolution and capacity in a range.
func TestSearchFindsTheLargestPassingN(t *testing.T) {
	for startN := 1; startN <= 9; startN++ {
		for maxN := startN; maxN <= 70; maxN++ {
			for _, res := range []float64{0, 0.1, 0.25, 0.5} {
				for _, iters := range []int{1, 3} {
					for c := 0; c <= maxN+1; c++ {
						s := Search{StartN: startN, MaxN: maxN, Share: 1, Resolution: res, Iterations: iters}
						checkMonotone(t, s, c)
					}
				}
			}
		}
	}
}

func checkMonotone(t *testing.T, s Search, c int) {
	t.Helper()
	seq, o := run(t, s, func(n, _ int) int {
		if n <= c {
			return n
		}
		return n - 1 // one instance short: fails at share 1
	})
	r := s.Result(o)
	if !r.Done || len(r.NonMonotone) > 0 {
		t.Fatalf("%+v c=%d: result %+v", s, c, r)
	}
	if c >= s.MaxN {
		if r.Largest != s.MaxN || r.SmallestFailing != 0 {
			t.Fatalf("%+v c=%d: %+v, want capacity ≥ MaxN (%v)", s, c, r, seq)
		}
		return
	}
	tol := max(1, int(s.Resolution*float64(r.Largest)))
	if r.Largest > c || r.SmallestFailing <= c || r.SmallestFailing-r.Largest > tol {
		t.Fatalf("%+v c=%d: bracket [%d, %d) does not hold c within %d (%v)", s, c, r.Largest, r.SmallestFailing, tol, seq)
	}
	if s.Resolution == 0 && (r.Largest != c || r.SmallestFailing != c+1) {
		t.Fatalf("%+v c=%d: exact search found [%d, %d) (%v)", s, c, r.Largest, r.SmallestFailing, seq)
	}
	// Passing probes measure every iteration, failing ones stop at the
	// first (here iteration 0).
	for n, its := range o {
		want := s.Iterations
		if n > c {
			want = 1
		}
		if len(its) != want {
			t.Fatalf("%+v c=%d: N = %d has %d iterations recorded, want %d", s, c, n, len(its), want)
		}
	}
}

// Outcomes that are not monotone (a pseudo-random oracle) still end the
// search within the bound, without repeats, at a boundary the records show:
// a pass at Largest (or nothing passed), a failure at SmallestFailing, within
// the resolution.
func TestSearchNonMonotoneOracleEnds(t *testing.T) {
	for seed := uint32(1); seed <= 3000; seed++ {
		s := Search{StartN: 1 + int(seed%5), MaxN: 40 + int(seed%300), Share: 1, Resolution: []float64{0, 0.2}[seed%2], Iterations: 1 + int(seed%2)}
		seq, o := run(t, s, func(n, it int) int {
			h := (uint32(n)*2654435761 ^ uint32(it)*40503 ^ seed*97) >> 7
			if h%3 == 0 {
				return 0
			}
			return n
		})
		r := s.Result(o)
		if !r.Done || len(r.NonMonotone) > 0 {
			t.Fatalf("seed %d: %+v (%v)", seed, r, seq)
		}
		if r.SmallestFailing == 0 {
			if r.Largest != s.MaxN {
				t.Fatalf("seed %d: no failure but largest %d ≠ MaxN (%v)", seed, r.Largest, seq)
			}
			continue
		}
		if v, _ := s.Verdict(r.SmallestFailing, o[r.SmallestFailing]); v != Fail {
			t.Fatalf("seed %d: smallest failing %d is %v", seed, r.SmallestFailing, v)
		}
		if r.Largest > 0 {
			if v, _ := s.Verdict(r.Largest, o[r.Largest]); v != Pass {
				t.Fatalf("seed %d: largest %d is %v", seed, r.Largest, v)
			}
		}
		if !s.closeEnough(r.Largest, r.SmallestFailing) {
			t.Fatalf("seed %d: stopped at [%d, %d)", seed, r.Largest, r.SmallestFailing)
		}
	}
}

// Records holding a pass above a failure (pass at 100, fail at 50: an
// edited or merged file) are read conservatively: the failure bounds the
// capacity, the pass is listed, and the search bisects below the failure.
func TestSearchNonMonotoneRecords(t *testing.T) {
	s := Search{StartN: 1, MaxN: 1000, Share: 1, Iterations: 1}
	o := Outcomes{}
	o.Add(100, 0, 100)
	o.Add(50, 0, 10)
	r := s.Result(o)
	if r.Largest != 0 || r.SmallestFailing != 50 || !slices.Equal(r.NonMonotone, []int{100}) || r.Done {
		t.Fatalf("result %+v", r)
	}
	if st := s.Next(o); st != (Step{N: 25}) {
		t.Fatalf("next %+v, want N = 25", st)
	}
	o.Add(25, 0, 25)
	o.Add(200, 0, 200)
	if r := s.Result(o); r.Largest != 25 || r.SmallestFailing != 50 || !slices.Equal(r.NonMonotone, []int{100, 200}) {
		t.Fatalf("result %+v", r)
	}
}

// The documented sequence for a lab-like case: capacity 300 from 1 to 1000.
func TestSearchSequence(t *testing.T) {
	s := Search{StartN: 1, MaxN: 1000, Share: 1, Resolution: 0.1, Iterations: 1}
	seq, o := run(t, s, func(n, _ int) int {
		if n <= 300 {
			return n
		}
		return 0
	})
	want := "1/0 2/0 4/0 8/0 16/0 32/0 64/0 128/0 256/0 512/0 384/0 320/0 288/0 304/0"
	if got := strings.Join(seq, " "); got != want {
		t.Errorf("probes %s, want %s", got, want)
	}
	if r := s.Result(o); r.Largest != 288 || r.SmallestFailing != 304 {
		t.Errorf("result %+v", r)
	}
}

// A pending probe (a resumed run cut between iterations) is continued at
// its first missing iteration before anything else; a failing iteration
// ends the probe even with earlier ones missing.
func TestSearchPendingProbe(t *testing.T) {
	s := Search{StartN: 4, MaxN: 64, Share: 1, Iterations: 3}
	o := Outcomes{}
	o.Add(4, 0, 4)
	if st := s.Next(o); st != (Step{N: 4, Iteration: 1}) {
		t.Fatalf("next %+v", st)
	}
	o.Add(4, 2, 4)
	if st := s.Next(o); st != (Step{N: 4, Iteration: 1}) {
		t.Fatalf("next %+v", st)
	}
	o.Add(4, 1, 4)
	if st := s.Next(o); st != (Step{N: 8}) {
		t.Fatalf("next %+v", st)
	}
	o.Add(8, 1, 0) // iteration 0 missing, 1 failed: the probe failed
	if v, _ := s.Verdict(8, o[8]); v != Fail {
		t.Fatalf("verdict %v", v)
	}
	if st := s.Next(o); st != (Step{N: 6}) {
		t.Fatalf("next %+v", st)
	}
}

func TestRequired(t *testing.T) {
	for _, c := range []struct {
		share float64
		n     int
		want  int
	}{{1, 10, 10}, {0.9, 10, 9}, {0.95, 10, 10}, {0.5, 1, 1}, {0.01, 10, 1}, {0.3, 10, 3}, {0.7, 10, 7}, {1, 1, 1}} {
		s := Search{Share: c.share}
		if got := s.Required(c.n); got != c.want {
			t.Errorf("share %v, N %d: required %d, want %d", c.share, c.n, got, c.want)
		}
	}
}

func TestProblemsNameFieldAndFlag(t *testing.T) {
	for _, c := range []struct {
		s    Search
		want []string
	}{
		{Search{StartN: 0, MaxN: 10, Share: 1, Iterations: 1}, []string{"spec.search.startN (--start-n): 0"}},
		{Search{StartN: 20, MaxN: 10, Share: 1, Iterations: 1}, []string{"spec.search.maxN (--max-n): 10 is below spec.search.startN (--start-n) 20"}},
		{Search{StartN: 1, MaxN: 2000, Share: 1, Iterations: 1}, []string{"spec.search.maxN (--max-n): 2000 is above 1000; pass --force"}},
		{Search{StartN: 1, MaxN: 10, Share: 1.5, Iterations: 1}, []string{"spec.search.share (--share): 1.5"}},
		{Search{StartN: 1, MaxN: 10, Share: 1, Resolution: 1, Iterations: 1}, []string{"spec.search.resolution (--resolution): 1"}},
		{Search{StartN: 1, MaxN: 10, Share: 1, Iterations: 0}, []string{"spec.search.iterations (--iterations): 0"}},
		{Search{StartN: 1, MaxN: 10, Share: 1, Iterations: 1}, nil},
	} {
		got := c.s.Problems(1000, "pass --force if you mean it")
		if len(got) != len(c.want) {
			t.Errorf("%+v: problems %q, want %q", c.s, got, c.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], c.want[i]) {
				t.Errorf("%+v: problem %q, want it to start with %q", c.s, got[i], c.want[i])
			}
		}
	}
}

func TestCompleteKeepsResolutionZero(t *testing.T) {
	s := Search{}
	s.Complete(1000)
	if s != (Search{StartN: 1, MaxN: 1000, Share: 1, Iterations: 1}) {
		t.Errorf("completed %+v", s)
	}
}
