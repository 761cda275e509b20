package release

import (
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/kstamp"
	"github.com/coldbench/coldbench/pkg/results"
)

// cellOf builds a step of requests that were written and answered, their
// user-space and kernel moments given as offsets from one reference (ms):
// written at t0 (kernel transmit tx), replied at first (kernel receive rx).
func cellOf(ref time.Time, clk kstamp.Clock, moments [][4]float64) ([]*Request, []results.Attempt) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	wall := func(v float64) kstamp.Stamp { return kstamp.Stamp(ref.UnixNano() + int64(ms(v))) }
	var reqs []*Request
	var out []results.Attempt
	for _, m := range moments {
		r := &Request{t0: ref.Add(ms(m[0])), ktx: wall(m[1]), krx: wall(m[3])}
		r.sent, r.first = r.t0.Add(ms(0.05)), ref.Add(ms(m[2]))
		if m[3] == 0 {
			r.krx, r.kwhy = 0, "the kernel gave no receive stamp for the reply's first byte"
		}
		a := results.Attempt{Start: r.t0, OK: true}
		r.recordReply(&a, 200, nil, r.first.Add(ms(1)))
		reqs, out = append(reqs, r), append(out, a)
	}
	return reqs, out
}

func TestStampCellUsesTheKernelsStamps(t *testing.T) {
	ref := time.Now()
	clk := kstamp.ClockAt(ref.UnixNano(), ref)
	// Two requests: user start 0 and 0.1 ms, transmitted at 0.2 and 2.5 ms
	// (the second goroutine lost its CPU), replies read at 100 and 90 ms,
	// received at 99.5 and 80 ms.
	reqs, out := cellOf(ref, clk, [][4]float64{{0, 0.2, 100, 99.5}, {0.1, 2.5, 90, 80}})
	skew := stampCell(reqs, out, clk, clk)
	if skew != 2300*time.Microsecond {
		t.Errorf("skew %v: want the transmit stamps' spread, 2.3ms", skew)
	}
	wantTTFB := []time.Duration{99300 * time.Microsecond, 77500 * time.Microsecond}
	for i, a := range out {
		if a.Timestamps != results.TimestampsKernel || a.ReleaseSkewUserNS != int64(100*time.Microsecond) {
			t.Errorf("attempt %d: timestamps %q, user skew %v", i, a.Timestamps, time.Duration(a.ReleaseSkewUserNS))
		}
		if a.TTFBNS != wantTTFB[i].Nanoseconds() {
			t.Errorf("attempt %d: ttfb %v, want %v", i, time.Duration(a.TTFBNS), wantTTFB[i])
		}
		if !a.Start.Equal(clk.Time(reqs[i].ktx)) || a.Start.Sub(ref) != time.Duration(int64(reqs[i].ktx)-ref.UnixNano()) {
			t.Errorf("attempt %d: start %v from the reference, want the transmit stamp's", i, a.Start.Sub(ref))
		}
		us, _ := a.PhaseOffset(results.PhaseUserStart)
		uf, _ := a.PhaseOffset(results.PhaseUserFirstByte)
		fb, _ := a.PhaseOffset(results.PhaseFirstByte)
		sent, _ := a.PhaseOffset(results.PhaseRequestSent)
		if us != reqs[i].t0.Sub(a.Start) || uf != reqs[i].first.Sub(a.Start) || fb != wantTTFB[i] || sent != 0 {
			t.Errorf("attempt %d: user_start %v, user_first_byte %v, first_byte %v, request_sent %v", i, us, uf, fb, sent)
		}
		if a.TotalNS != reqs[i].first.Add(time.Millisecond).Sub(a.Start).Nanoseconds() {
			t.Errorf("attempt %d: total %v, want the body's end from the kernel's start", i, time.Duration(a.TotalNS))
		}
	}
}

func TestStampCellNeverMixesClocks(t *testing.T) {
	ref := time.Now()
	clk := kstamp.ClockAt(ref.UnixNano(), ref)
	for _, tc := range []struct {
		name    string
		moments [][4]float64
		after   kstamp.Clock
		why     string
	}{
		{"a reply without a receive stamp", [][4]float64{{0, 0.2, 100, 99.5}, {0.1, 0.3, 90, 0}}, clk,
			"request 2 of 2: the kernel gave no receive stamp"},
		{"a wall-clock step", [][4]float64{{0, 0.2, 100, 99.5}}, kstamp.ClockAt(ref.UnixNano()+int64(50*time.Millisecond), ref),
			"the wall clock stepped by 50ms"},
		{"a receive before the transmit", [][4]float64{{0, 5, 100, 4}}, clk,
			"request 1 of 1: its reply's receive stamp is not after its transmit stamp"},
	} {
		reqs, out := cellOf(ref, clk, tc.moments)
		skew := stampCell(reqs, out, clk, tc.after)
		var userStarts []time.Time
		for _, r := range reqs {
			userStarts = append(userStarts, r.t0)
		}
		if skew != Skew(userStarts) {
			t.Errorf("%s: skew %v, want the user-space starts' %v", tc.name, skew, Skew(userStarts))
		}
		for i, a := range out {
			if a.Timestamps != results.TimestampsUser || !strings.Contains(a.TimestampsNote, tc.why) {
				t.Errorf("%s: attempt %d: timestamps %q, note %q: want user, saying %q", tc.name, i, a.Timestamps, a.TimestampsNote, tc.why)
			}
			if !a.Start.Equal(reqs[i].t0) || a.TTFBNS != reqs[i].first.Sub(reqs[i].t0).Nanoseconds() {
				t.Errorf("%s: attempt %d: start or ttfb moved off the user-space stamps", tc.name, i)
			}
			if _, ok := a.PhaseOffset(results.PhaseUserStart); ok {
				t.Errorf("%s: attempt %d: a user_start phase on user-space stamps", tc.name, i)
			}
		}
	}
}
