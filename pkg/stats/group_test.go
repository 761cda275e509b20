package stats

import (
	"maps"
	"strconv"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

func att(platform, runtime string, scale int, warmup, ok bool, ttfbMS int64, class string) results.Attempt {
	return results.Attempt{Type: results.TypeAttempt, Platform: platform, Runtime: runtime, Scale: scale,
		Warmup: warmup, OK: ok, TTFBNS: ttfbMS * 1_000_000, ErrorClass: class}
}

func TestGroup(t *testing.T) {
	set := &results.Set{Attempts: []results.Attempt{
		// First appearance: runc, kata, crun — the reverse of the alphabet.
		att("cri", "runc", 4, true, true, 999, ""), // warm-up: never in stats
		att("cri", "runc", 4, false, true, 100, ""),
		att("cri", "runc", 4, false, true, 300, ""),
		att("cri", "runc", 4, false, false, 0, results.ErrTimeout),
		att("cri", "runc", 1, false, true, 50, ""),
		att("cri", "kata", 1, false, false, 0, results.ErrTimeout),
		att("cri", "kata", 1, false, false, 0, results.ErrHTTPStatus),
		att("cri", "kata", 1, false, false, 0, results.ErrTimeout),
		att("cri", "kata", 1, false, false, 0, ""), // unclassified
		att("cri", "runc", 4, false, true, 200, ""),
		att("cri", "runc", 1, true, false, 0, results.ErrTimeout), // failed warm-up: not a failure
		att("cri", "crun", 2, true, true, 10, ""),                 // only warm-ups
	}}
	rows := Group(set)
	type want struct {
		runtime                  string
		scale                    int
		attempts, ok, fail, warm int
		byClass                  map[string]int
		n                        int
		mean, min, max, p50      float64
	}
	wants := []want{
		{"runc", 1, 1, 1, 0, 1, map[string]int{}, 1, 50e6, 50e6, 50e6, 50e6},
		// TTFBs 100, 300, 200 ms -> mean 200, median 200.
		{"runc", 4, 4, 3, 1, 1, map[string]int{"timeout": 1}, 3, 200e6, 100e6, 300e6, 200e6},
		{"kata", 1, 4, 0, 4, 0, map[string]int{"timeout": 2, "http_status": 1, Unclassified: 1}, 0, 0, 0, 0, 0},
		{"crun", 2, 0, 0, 0, 1, map[string]int{}, 0, 0, 0, 0, 0},
	}
	if len(rows) != len(wants) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(wants), rows)
	}
	for i, w := range wants {
		r := rows[i]
		if r.Platform != "cri" || r.Runtime != w.runtime || r.Scale != w.scale {
			t.Errorf("row %d: %s/%s/%d, want cri/%s/%d", i, r.Platform, r.Runtime, r.Scale, w.runtime, w.scale)
			continue
		}
		if r.Attempts != w.attempts || r.Successes != w.ok || r.Failures != w.fail || r.Warmups != w.warm {
			t.Errorf("row %d (%s/%d): attempts/ok/fail/warm = %d/%d/%d/%d, want %d/%d/%d/%d", i, r.Runtime, r.Scale,
				r.Attempts, r.Successes, r.Failures, r.Warmups, w.attempts, w.ok, w.fail, w.warm)
		}
		if r.Successes+r.Failures != r.Attempts {
			t.Errorf("row %d: invariant broken: %d + %d != %d", i, r.Successes, r.Failures, r.Attempts)
		}
		if r.FailuresByClass == nil || !maps.Equal(r.FailuresByClass, w.byClass) {
			t.Errorf("row %d: FailuresByClass = %v, want %v", i, r.FailuresByClass, w.byClass)
		}
		s := r.TTFB
		if s.N != w.n || s.Mean != w.mean || s.Min != w.min || s.Max != w.max || s.P50 != w.p50 {
			t.Errorf("row %d: TTFB n/mean/min/max/p50 = %d/%v/%v/%v/%v, want %d/%v/%v/%v/%v", i,
				s.N, s.Mean, s.Min, s.Max, s.P50, w.n, w.mean, w.min, w.max, w.p50)
		}
	}
}

func TestGroupPlatformsAndEmpty(t *testing.T) {
	if rows := Group(nil); len(rows) != 0 {
		t.Errorf("Group(nil) = %v", rows)
	}
	if rows := Group(&results.Set{}); len(rows) != 0 {
		t.Errorf("Group(empty) = %v", rows)
	}
	set := &results.Set{Attempts: []results.Attempt{
		att("knative", "crun", 8, false, true, 1, ""),
		att("cri", "kata", 1, false, true, 1, ""),
		att("cri", "crun", 8, false, true, 1, ""),
		att("knative", "crun", 1, false, true, 1, ""),
		att("cri", "crun", 1, false, true, 1, ""),
	}}
	var got []string
	for _, r := range Group(set) {
		got = append(got, r.Platform+"/"+r.Runtime+"/"+strconv.Itoa(r.Scale))
	}
	// Platforms, then runtimes, in first-appearance order; scales ascending.
	want := []string{"knative/crun/1", "knative/crun/8", "cri/crun/1", "cri/crun/8", "cri/kata/1"}
	if len(got) != len(want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order = %v, want %v", got, want)
		}
	}
}
