package agent

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHost is a fake clock and the reads of a fake sampler's pods (new
// pods' first reads run side by side: locked).
type fakeHost struct {
	mu    sync.Mutex
	clock time.Time
	reads map[string]int
}

func (h *fakeHost) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clock
}

func (h *fakeHost) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock = h.clock.Add(d)
}

func (h *fakeHost) count(uid string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads[uid]
}

// fakeCPUSampler is a sampler on a fake clock whose reads give 1 ms of CPU
// per ms of the clock since 0 (a pod busy on one core), each read taking 1
// ms, and count the reads per pod. A pod's first successful read finds its
// cgroup.
func fakeCPUSampler(t *testing.T) (*cpuSampler, *fakeHost) {
	t.Helper()
	t0 := time.Unix(1000, 0)
	h := &fakeHost{clock: t0, reads: map[string]int{}}
	cfg := Config{now: h.now, CPUSampleFor: time.Second, CPUMaxSamples: 100}.complete()
	s := newCPUSampler(cfg, func(_ context.Context, tr *cpuTrack) (int64, int, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.reads[tr.uid]++
		h.clock = h.clock.Add(time.Millisecond)
		if tr.uid == "broken" {
			return 0, 0, errors.New("cgroup /kubepods/podbroken has no process")
		}
		tr.cgroup = "/kubepods/pod" + tr.uid
		return h.clock.Sub(t0).Nanoseconds(), 1, nil
	})
	return s, h
}

// Only pods whose sandbox was created while armed are sampled; a moment
// is answered with the last sample read wholly before it (less the error)
// and the first read wholly after (plus the error); done ends the pod's
// sampling once the answer is whole.
func TestCPUSamplerAnswersAroundAMoment(t *testing.T) {
	s, h := fakeCPUSampler(t)
	ctx := context.Background()
	s.sandboxCreated("early", time.Time{}) // not armed: not sampled
	s.arm(time.Minute)
	s.sandboxCreated("p", time.Time{})
	for range 5 { // samples read over [0,1], [100,101], … [400,401] ms
		s.sweep(ctx)
		h.advance(99 * time.Millisecond)
	}
	if h.count("early") != 0 || h.count("p") != 5 {
		t.Fatalf("reads: early %d, p %d", h.count("early"), h.count("p"))
	}
	if got := s.at("early", 1, 0, false); got.Missing == "" || !strings.Contains(got.Missing, "did not sample pod early") {
		t.Errorf("early: %+v", got)
	}
	base := time.Unix(1000, 0).UnixNano()
	got := s.at("p", base+250e6, 0, false)
	if got.Before == nil || got.After == nil || got.Before.CPUNS != 201e6 || got.After.CPUNS != 301e6 || got.Samples != 5 || !got.Sampling || got.Missing != "" {
		t.Fatalf("at 250 ms: %+v before %+v after %+v", got, got.Before, got.After)
	}
	// ± 60 ms: the samples read from 190 and to 310 ms are not wholly
	// outside [190, 310].
	got = s.at("p", base+250e6, 60e6, false)
	if got.Before.CPUNS != 101e6 || got.After.CPUNS != 401e6 {
		t.Errorf("at 250 ± 60 ms: before %+v after %+v", got.Before, got.After)
	}
	// After the last sample: none after yet, and sampling goes on.
	got = s.at("p", base+450e6, 0, true)
	if got.After != nil || got.Missing != "no sample after the moment yet" || !got.Sampling {
		t.Errorf("at 450 ms: %+v", got)
	}
	got = s.at("p", base+250e6, 0, true)
	if got.Sampling {
		t.Errorf("done with a whole answer: still sampling")
	}
	s.sweep(ctx)
	if h.count("p") != 5 {
		t.Errorf("%d reads after done: want none more", h.count("p")-5)
	}
}

// Sampling ends SampleFor after the sandbox was seen, or at MaxSamples;
// pods seen after the arming ended are not sampled; a failing read is
// said with the answer; the samples of ended pods are forgotten first
// when more than maxHeld are held.
func TestCPUSamplerBounds(t *testing.T) {
	s, h := fakeCPUSampler(t)
	ctx := context.Background()
	s.arm(500 * time.Millisecond)
	s.sandboxCreated("p", time.Time{})
	s.sandboxCreated("broken", time.Time{})
	for range 15 { // 1.5 s: sampled for 1 s
		s.sweep(ctx)
		h.advance(98 * time.Millisecond)
	}
	s.sandboxCreated("late", time.Time{}) // the arming ended at 0.5 s
	s.sweep(ctx)
	if h.count("p") != 11 || h.count("late") != 0 {
		t.Errorf("reads: p %d, late %d: want p read 11 times (0 to 1 s), late never", h.count("p"), h.count("late"))
	}
	got := s.at("p", h.now().UnixNano(), 0, false)
	if got.Sampling || !strings.Contains(got.Missing, "no sample after the moment: sampled for 1s") {
		t.Errorf("p at the end: %+v", got)
	}
	got = s.at("broken", h.now().UnixNano(), 0, false)
	if got.Before != nil || !strings.Contains(got.Missing, "the latest read failed: cgroup /kubepods/podbroken has no process") {
		t.Errorf("broken: %+v", got)
	}
	// MaxSamples, and forgetting.
	s, h = fakeCPUSampler(t)
	s.maxSamples, s.maxHeld = 3, 4
	s.arm(time.Minute)
	s.sandboxCreated("a", time.Time{})
	for range 4 {
		s.sweep(ctx)
		h.advance(10 * time.Millisecond)
	}
	s.sandboxCreated("b", time.Time{})
	for range 3 {
		s.sweep(ctx)
		h.advance(10 * time.Millisecond)
	}
	a, b := s.at("a", h.now().UnixNano(), 0, false), s.at("b", 1, 0, false)
	if a.Samples != 0 || !strings.Contains(a.Missing, "3 samples taken") || !strings.Contains(a.Missing, "forgotten to keep at most 4") || b.Samples != 3 {
		t.Errorf("a %+v\nb %+v", a, b)
	}
}

// A sweep's pause keeps the period and the duty, by the CPU the sweep
// used: a sweep that mostly waited pauses no longer than the period.
func TestCPUSamplerPause(t *testing.T) {
	s, _ := fakeCPUSampler(t)
	for _, c := range []struct{ took, used, want time.Duration }{
		{time.Millisecond, time.Millisecond, 99 * time.Millisecond},            // the period
		{50 * time.Millisecond, 50 * time.Millisecond, 950 * time.Millisecond}, // 5 % of a core
		{500 * time.Millisecond, 2 * time.Millisecond, 38 * time.Millisecond},  // waited: 19 × its CPU
		{30 * time.Millisecond, 2 * time.Millisecond, 70 * time.Millisecond},   // waited: the period's rest
	} {
		if got := s.pause(c.took, c.used); got < c.want-time.Microsecond || got > c.want+time.Microsecond {
			t.Errorf("pause after %v using %v: %v, want %v", c.took, c.used, got, c.want)
		}
	}
	if processCPU() <= 0 {
		t.Error("processCPU read no CPU for this process")
	}
}

// /v1/cpu's parameters are checked, naming the one at fault.
func TestCPUQuery(t *testing.T) {
	a := New(nil, Config{})
	for _, q := range []string{"at=p", "at=p@x", "at=@5", "at=p@5:-1", "at=p@-5", "at=p@9223372036854775000:9000", "arm=soon", "arm=-1s", "arm=2h"} {
		v, _ := url.ParseQuery(q)
		if _, err := a.CPU(v); err == nil || !strings.Contains(err.Error(), strings.SplitN(q, "=", 2)[0]+"=") {
			t.Errorf("%s: err %v", q, err)
		}
	}
	v, _ := url.ParseQuery("arm=90s&at=p@5:2")
	resp, err := a.CPU(v)
	if err != nil || resp.ArmedUntilUnixNS == 0 || len(resp.Pods) != 1 || resp.Pods[0].ErrNS != 2 || resp.NodeTimeUnixNS == 0 || resp.PeriodNS != int64(DefaultCPUPeriod) {
		t.Errorf("%+v, %v", resp, err)
	}
}
