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
	wantLinks := []stats.Link{{To: results.PhaseRTSandboxCreated}, {From: results.PhaseRTSandboxCreated, To: results.PhaseRTSandboxStarted},
		{From: results.PhaseRTSandboxStarted, To: results.PhaseRTUserContainerCreated},
		{From: results.PhaseRTUserContainerCreated, To: results.PhaseFunctionStart}, {From: results.PhaseFunctionStart, To: results.PhaseFirstByte},
		{From: results.PhaseRTUserContainerCreated, To: results.PhaseRTUserContainerStarted}}
	if !slices.Equal(b.Links, wantLinks) {
		t.Errorf("links %v, want %v (the runtime view: no sandbox_ready)", b.Links, wantLinks)
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

// knAttempt is a successful Knative attempt with every rt_ phase from the
// node agent: the user container's create comes extra ms later after the
// sandbox, and the queue-proxy's phases fall between the user container's,
// so that ordering phases by median would make a segment from one container
// to the other. The shim's report of the user container's start comes
// before function_start in odd attempts, after it in even ones.
func knAttempt(rng *rand.Rand, runtime string, iter int, extra float64) results.Attempt {
	j := func() float64 { return rng.Float64() * 4 }
	ph := func(name string, ms float64) results.Phase {
		return results.Phase{Name: name, OffsetNS: int64((ms + j()) * 1e6)}
	}
	uc := 300 + extra
	shim := uc + 30
	if iter%2 == 0 {
		shim = uc + 50
	}
	phases := []results.Phase{ph(results.PhaseRequestSent, 0), ph(results.PhaseDeploymentScaled, 20), ph(results.PhasePodCreated, 40),
		ph(results.PhasePodScheduled, 50), ph(results.PhaseRTSandboxCreated, 100), ph(results.PhaseRTSandboxStarted, 250),
		ph(results.PhaseRTQueueProxyCreated, 270+extra/2), ph(results.PhaseRTUserContainerCreated, uc),
		ph(results.PhaseRTQueueProxyStarted, uc+10), ph(results.PhaseRTUserContainerStarted, shim),
		ph(results.PhaseSandboxReady, uc+200), ph("user_container_ready", uc+300),
		ph(results.PhaseFunctionStart, uc+40), ph(results.PhaseFirstByte, uc+80)}
	return results.Attempt{Type: results.TypeAttempt, ExperimentID: "e", Platform: "knative", Runtime: runtime, Scale: 1,
		Iteration: iter, OK: true, TTFBNS: phases[len(phases)-1].OffsetNS, Phases: phases,
		RuntimePhases: results.RuntimePhasesFromAgent}
}

// On Knative the segments follow the causal chains: the platform's pre-pod
// phases, the sandbox, the user container to the first byte, and beside
// them the shim's report and the queue-proxy, never a segment from one
// container to the other.
func TestBreakdownKnative(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m := stats.NewModel()
	m.NoPhases = true
	for i := range 20 {
		for _, rt := range []string{"runc", "kata"} {
			a := knAttempt(rng, rt, i, map[string]float64{"kata": 200}[rt])
			m.AddAttempt(&a)
		}
	}
	bs := Breakdowns(m)
	if len(bs) != 1 || bs[0].Platform != "knative" || len(bs[0].Runtimes) != 1 {
		t.Fatalf("breakdowns %+v", bs)
	}
	b := bs[0]
	var names []string
	for _, l := range b.Links {
		names = append(names, l.From+"→"+l.To)
	}
	want := []string{"→request_sent", "request_sent→deployment_scaled", "deployment_scaled→pod_created", "pod_created→pod_scheduled",
		"pod_scheduled→rt_sandbox_created", "rt_sandbox_created→rt_sandbox_started", "rt_sandbox_started→rt_user_container_created",
		"rt_user_container_created→function_start", "function_start→first_byte",
		"rt_user_container_created→rt_user_container_started",
		"rt_sandbox_started→rt_queue_proxy_created", "rt_queue_proxy_created→rt_queue_proxy_started"}
	if !slices.Equal(names, want) {
		t.Errorf("links\n%s\nwant\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	k := b.Runtimes[0]
	i, grows := k.Largest()
	if !grows || k.Segments[i].Name() != "rt_sandbox_started→rt_user_container_created" {
		t.Fatalf("largest %d %v: %+v", i, grows, k.Segments)
	}
	if s := k.Segments[i]; !s.Diff.CIOK || s.Diff.Lo <= 190e6 || s.Diff.Hi >= 210e6 {
		t.Errorf("shift %+v, want about +200 ms", s.Diff)
	}
	for _, s := range k.Segments {
		if s.Other.N != 20 || s.Base.N != 20 {
			t.Errorf("%s: n %d and %d, want every attempt", s.Name(), s.Base.N, s.Other.N)
		}
		if s.Name() == "rt_user_container_created→function_start" && (s.Base.Median < 38e6 || s.Base.Median > 46e6) {
			t.Errorf("%s: median %g, want about 40 ms whichever side of it the shim's stamp falls", s.Name(), s.Base.Median)
		}
	}
}
