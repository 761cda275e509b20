package compare

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// rtAttempt is a successful node attempt whose sandbox takes extra ms to
// start (after rt_sandbox_created), everything else the same up to jitter.
func rtAttempt(rng *rand.Rand, runtime string, scale, iter int, extra float64) results.Attempt {
	j := func() float64 { return rng.Float64() * 4 } // 0-4 ms of jitter per segment
	at := 0.0
	ph := func(name string, d float64) results.Phase {
		at += d + j()
		return results.Phase{Name: name, OffsetNS: int64(at * 1e6)}
	}
	phases := []results.Phase{ph(results.PhaseRTSandboxCreated, 5), ph(results.PhaseRTSandboxStarted, 60+extra),
		ph(results.PhaseSandboxReady, 10), ph(results.PhaseRTUserContainerCreated, 10),
		ph(results.PhaseRTUserContainerStarted, 20), ph(results.PhaseFunctionStart, 5), ph(results.PhaseFirstByte, 10)}
	return results.Attempt{Type: results.TypeAttempt, ExperimentID: "e", Platform: "node", Runtime: runtime, Scale: scale,
		Iteration: iter, OK: true, TTFBNS: phases[len(phases)-1].OffsetNS, Phases: phases,
		RuntimePhases: results.RuntimePhasesFromEvents}
}

func TestBreakdownKnownShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	m := stats.NewModel()
	m.NoPhases = true // as the text report loads it
	for i := range 30 {
		for _, rt := range []string{"crun", "runc", "gvisor"} { // runc is the baseline, though not first
			extra := map[string]float64{"gvisor": 400}[rt]
			a := rtAttempt(rng, rt, 1, i, extra)
			m.AddAttempt(&a)
		}
	}
	// One runtime only at N=5: no breakdown there.
	a := rtAttempt(rng, "runc", 5, 0, 0)
	m.AddAttempt(&a)

	bs := Breakdowns(m)
	if len(bs) != 1 {
		t.Fatalf("%d breakdowns, want 1 (N=1)", len(bs))
	}
	b := bs[0]
	if b.Baseline != "runc" || b.Scale != 1 || !b.View.Runtime || len(b.Runtimes) != 2 || b.Runtimes[0].Runtime != "crun" {
		t.Fatalf("breakdown %+v", b)
	}
	wantPhases := []string{results.PhaseRTSandboxCreated, results.PhaseRTSandboxStarted, results.PhaseRTUserContainerCreated,
		results.PhaseRTUserContainerStarted, results.PhaseFunctionStart, results.PhaseFirstByte}
	if !slices.Equal(b.Phases, wantPhases) {
		t.Errorf("phases %v, want %v (the runtime view: no sandbox_ready)", b.Phases, wantPhases)
	}
	g := b.Runtimes[1]
	i, grows := g.Largest()
	if !grows || g.Segments[i].Name() != "rt_sandbox_created→rt_sandbox_started" {
		t.Fatalf("largest %d %v: %+v", i, grows, g.Segments)
	}
	s := g.Segments[i]
	if !s.Diff.CIOK || s.Diff.Lo <= 390e6 || s.Diff.Hi >= 410e6 || s.Diff.Estimate < s.Diff.Lo || s.Diff.Estimate > s.Diff.Hi {
		t.Errorf("shift %+v, want about +400 ms, CI above 0", s.Diff)
	}
	if s.Base.N != 30 || s.Other.Median-s.Base.Median < 390e6 {
		t.Errorf("sides %+v %+v", s.Base, s.Other)
	}
	// The segments after it only moved: their durations are the same.
	for _, seg := range g.Segments[i+1:] {
		if seg.Diff.Lo > 0 || seg.Diff.Hi < 0 {
			t.Errorf("%s: CI [%g, %g] excludes 0, but nothing changed", seg.Name(), seg.Diff.Lo, seg.Diff.Hi)
		}
	}
	sent := b.Sentence(g)
	if !strings.HasPrefix(sent, "gvisor vs runc at N=1: the largest growth is rt_sandbox_created→rt_sandbox_started, +4") ||
		!strings.Contains(sent, "ms [95% CI +") {
		t.Errorf("sentence %q", sent)
	}
	// The other way round: runc against gvisor shrinks.
	r := RuntimeDiff{Runtime: "x", Segments: []SegmentDiff{{From: "a", To: "b", Tested: true, Diff: Shift{Estimate: -2e6, Lo: -3e6, Hi: -1e6, CIOK: true}},
		{From: "b", To: "c", Tested: true, Diff: Shift{Estimate: -5e6, Lo: -6e6, Hi: -4e6, CIOK: true}}}}
	if got := b.Sentence(r); got != "x vs runc at N=1: no segment grows; the largest shrink is b→c, -5.000 ms [95% CI -6.000, -4.000]" {
		t.Errorf("sentence %q", got)
	}
	r.Segments[0].Diff = Shift{Estimate: 1e6, Lo: -1e6, Hi: 3e6, CIOK: true}
	if got := b.Sentence(r); got != "x vs runc at N=1: the largest growth is a→b, +1.000 ms [95% CI -1.000, +3.000], an interval that includes 0" {
		t.Errorf("sentence %q", got)
	}
}

// Without rt_ phases in one runtime there is no runtime view, so no
// breakdown.
func TestBreakdownNeedsTheRuntimeView(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := stats.NewModel()
	for i := range 6 {
		a, b := rtAttempt(rng, "runc", 1, i, 0), rtAttempt(rng, "crun", 1, i, 0)
		b.Phases = slices.DeleteFunc(b.Phases, func(p results.Phase) bool { return strings.HasPrefix(p.Name, "rt_") })
		m.AddAttempt(&a)
		m.AddAttempt(&b)
	}
	if bs := Breakdowns(m); len(bs) != 0 {
		t.Errorf("breakdowns %+v", bs)
	}
}
