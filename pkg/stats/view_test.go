package stats

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

func phase(name string, ms float64) results.Phase {
	return results.Phase{Name: name, OffsetNS: int64(ms * 1e6)}
}

// viewAttempt is a successful Knative attempt; with rt, it carries all six
// rt_ phases from the node agent beside the API server's.
func viewAttempt(runtime string, iter int, rt bool) results.Attempt {
	a := results.Attempt{Type: results.TypeAttempt, ExperimentID: "e", Platform: "knative", Runtime: runtime, Scale: 1,
		Iteration: iter, OK: true, TTFBNS: 500e6,
		Phases: []results.Phase{phase(results.PhaseRequestSent, 0.1), phase(results.PhasePodCreated, 20), phase(results.PhasePodScheduled, 25),
			phase(results.PhaseSandboxReady, 450), phase("pod_ready", 490), phase(results.PhaseFunctionStart, 300),
			phase(results.PhaseFirstByte, 500)}}
	if rt {
		a.Phases = append(a.Phases, phase(results.PhaseRTSandboxCreated, 40), phase(results.PhaseRTSandboxStarted, 200),
			phase(results.PhaseRTUserContainerCreated, 250), phase(results.PhaseRTUserContainerStarted, 290),
			phase(results.PhaseRTQueueProxyCreated, 240), phase(results.PhaseRTQueueProxyStarted, 260))
		a.RuntimePhases = results.RuntimePhasesFromAgent
	} else {
		a.RuntimePhases = results.RuntimePhasesMissing + "no agent on the pod's node"
	}
	return a
}

func viewOf(m *Model) PhaseView {
	var vcs []ViewCell
	for _, c := range m.Cells() {
		vcs = append(vcs, c.ViewCell())
	}
	return ChoosePhaseView(vcs)
}

func TestChoosePhaseView(t *testing.T) {
	build := func(rt func(runtime string, i int) bool) *Model {
		m := NewModel()
		for i := range 4 {
			for _, r := range []string{"runc", "gvisor"} {
				a := viewAttempt(r, i, rt(r, i))
				m.AddAttempt(&a)
			}
		}
		return m
	}
	t.Run("none", func(t *testing.T) {
		v := viewOf(build(func(string, int) bool { return false }))
		if v.Runtime || v.Name != ViewAPIServer || v.Sentence() != "API-server view: no rt_ phases in these records." {
			t.Errorf("view %+v: %q", v, v.Sentence())
		}
	})
	t.Run("all", func(t *testing.T) {
		m := build(func(string, int) bool { return true })
		v := viewOf(m)
		if !v.Runtime || len(v.Short) != 0 || !strings.HasPrefix(v.Sentence(), "runtime view: containerd's events (node agent);") {
			t.Errorf("view %+v: %q", v, v.Sentence())
		}
		off := v.Offsets(m.Cells()[0])
		for name := range off {
			if !RuntimeViewPhase(name) {
				t.Errorf("runtime view shows %s", name)
			}
		}
		for _, name := range []string{results.PhaseRTSandboxStarted, results.PhasePodScheduled, results.PhaseFunctionStart, results.PhaseFirstByte} {
			if len(off[name]) != 4 {
				t.Errorf("%s: %v", name, off[name])
			}
		}
		if _, ok := off[results.PhaseSandboxReady]; ok {
			t.Error("the runtime view shows the API server's sandbox_ready")
		}
	})
	t.Run("mixed attempts", func(t *testing.T) {
		// One gvisor attempt lacks rt_ phases, another has only some (a
		// "partial: " note): both left out of every median of the runtime
		// view, and gvisor's coverage noted.
		m := NewModel()
		for i := range 4 {
			for _, r := range []string{"runc", "gvisor"} {
				a := viewAttempt(r, i, r == "runc" || i != 2)
				if r == "gvisor" && i == 3 {
					a.Phases = a.Phases[:len(a.Phases)-1]
					a.RuntimePhases = results.RuntimePhasesPartial + "not all seen within 30ms of the reply; none for " + results.PhaseRTQueueProxyStarted
				}
				m.AddAttempt(&a)
			}
		}
		v := viewOf(m)
		if !v.Runtime || !slices.Equal(v.Short, []string{"gvisor at N=1: 2 of 4 successful attempts have all rt_ phases"}) {
			t.Fatalf("view %+v", v)
		}
		if s := v.Sentence(); !strings.Contains(s, "; the successful attempts without all rt_ phases are left out of these medians (gvisor at N=1: 2 of 4") {
			t.Errorf("sentence %q", s)
		}
		g := m.Cells()[1]
		if g.WithRT != 2 || g.AnyRT != 3 || len(v.Offsets(g)[results.PhaseFunctionStart]) != 2 {
			t.Errorf("gvisor: %d in the view, %d with rt_, function_start %v", g.WithRT, g.AnyRT, v.Offsets(g)[results.PhaseFunctionStart])
		}
		// The columns stay aligned by attempt.
		for name, col := range g.RTPhases {
			if len(col) != 2 {
				t.Errorf("%s column %v", name, col)
			}
		}
	})
	t.Run("a runtime with too few", func(t *testing.T) {
		m := build(func(r string, i int) bool { return r == "runc" || i == 0 })
		v := viewOf(m)
		if v.Runtime || !strings.Contains(v.Sentence(), "API-server view: too few attempts with runtime phases, "+
			"the runtime view needs 50% of each runtime's (gvisor at N=1: 1 of 4 successful attempts have all rt_ phases), so every runtime") {
			t.Errorf("view %+v: %q", v, v.Sentence())
		}
	})
	t.Run("a runtime without", func(t *testing.T) {
		m := build(func(r string, _ int) bool { return r == "runc" })
		v := viewOf(m)
		if v.Runtime || !strings.Contains(v.Sentence(), "(gvisor at N=1: 0 of 4 successful attempts have all rt_ phases)") {
			t.Errorf("view %+v: %q", v, v.Sentence())
		}
	})
	t.Run("a node cell", func(t *testing.T) {
		// The node's pods have no queue-proxy: four rt_ phases are all.
		a := viewAttempt("runc", 0, true)
		a.Platform = "node"
		a.Phases = slices.DeleteFunc(a.Phases, func(p results.Phase) bool { return strings.HasPrefix(p.Name, "rt_queue_proxy") })
		if !InRuntimeView(&a) {
			t.Error("a node attempt with its four rt_ phases is left out")
		}
		a.Platform = "knative"
		if InRuntimeView(&a) {
			t.Error("a Knative attempt without the queue-proxy's rt_ phases is in the view")
		}
	})
}

// A phase only some attempts have is NaN in the others, so the columns
// stay aligned; a column first seen late is padded before.
func TestRuntimeColumnsAligned(t *testing.T) {
	m := NewModel()
	m.NoPhases = true // the text report: the runtime columns are kept all the same
	a := viewAttempt("runc", 0, true)
	b := viewAttempt("runc", 1, true)
	b.Phases = append(b.Phases, phase(results.PhaseDeploymentScaled, 15))
	m.AddAttempt(&a)
	m.AddAttempt(&b)
	c := m.Cells()[0]
	ds := c.RTPhases[results.PhaseDeploymentScaled]
	if len(ds) != 2 || !math.IsNaN(ds[0]) || ds[1] != 15e6 {
		t.Errorf("deployment_scaled column %v", ds)
	}
	if len(c.Phases) != 0 || !slices.Contains(m.RTPhaseNames, results.PhaseDeploymentScaled) {
		t.Errorf("NoPhases: phases %v, runtime names %v", c.Phases, m.RTPhaseNames)
	}
	m = NewModel()
	m.NoRuntimeView = true
	m.AddAttempt(&a)
	if c := m.Cells()[0]; c.WithRT != 0 || len(c.RTPhases) != 0 {
		t.Errorf("NoRuntimeView kept %d attempts", c.WithRT)
	}
}

func TestInversions(t *testing.T) {
	med := map[string]float64{results.PhaseRTSandboxStarted: 10, results.PhaseRTUserContainerCreated: 12,
		results.PhaseRTUserContainerStarted: 30, results.PhaseFunctionStart: 25, results.PhaseFirstByte: 40,
		results.PhaseRTQueueProxyCreated: 14, results.PhaseRTQueueProxyStarted: 20}
	got := Inversions(med)
	want := []Inversion{{Before: results.PhaseRTUserContainerStarted, After: results.PhaseFunctionStart, BeforeMedian: 30, AfterMedian: 25}}
	if !slices.Equal(got, want) {
		t.Errorf("inversions %+v, want %+v", got, want)
	}
	// The queue-proxy is in no fixed order with the user container.
	med[results.PhaseRTQueueProxyStarted] = 35
	if got := Inversions(med); len(got) != 1 {
		t.Errorf("inversions %+v", got)
	}
}
