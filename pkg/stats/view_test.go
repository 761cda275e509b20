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

// viewAttempt is a successful Knative attempt; with rt, it carries rt_
// phases from the node agent beside the API server's.
func viewAttempt(runtime string, iter int, rt bool) results.Attempt {
	a := results.Attempt{Type: results.TypeAttempt, ExperimentID: "e", Platform: "knative", Runtime: runtime, Scale: 1,
		Iteration: iter, OK: true, TTFBNS: 500e6,
		Phases: []results.Phase{phase(results.PhaseRequestSent, 0.1), phase("pod_created", 20), phase("pod_scheduled", 25),
			phase(results.PhaseSandboxReady, 450), phase("pod_ready", 490), phase(results.PhaseFunctionStart, 300),
			phase(results.PhaseFirstByte, 500)}}
	if rt {
		a.Phases = append(a.Phases, phase(results.PhaseRTSandboxCreated, 40), phase(results.PhaseRTSandboxStarted, 200),
			phase(results.PhaseRTUserContainerCreated, 250), phase(results.PhaseRTUserContainerStarted, 290))
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
		if !v.Runtime || v.Left != 0 || !strings.HasPrefix(v.Sentence(), "runtime view: containerd's events (node agent);") {
			t.Errorf("view %+v: %q", v, v.Sentence())
		}
		off := v.Offsets(m.Cells()[0])
		for name := range off {
			if !RuntimeViewPhase(name) {
				t.Errorf("runtime view shows %s", name)
			}
		}
		for _, name := range []string{results.PhaseRTSandboxStarted, "pod_scheduled", results.PhaseFunctionStart, results.PhaseFirstByte} {
			if len(off[name]) != 4 {
				t.Errorf("%s: %v", name, off[name])
			}
		}
		if _, ok := off[results.PhaseSandboxReady]; ok {
			t.Error("the runtime view shows the API server's sandbox_ready")
		}
	})
	t.Run("mixed attempts", func(t *testing.T) {
		// One gvisor attempt lacks rt_ phases: left out of every median of
		// the runtime view, and counted.
		m := build(func(r string, i int) bool { return r == "runc" || i != 2 })
		v := viewOf(m)
		if !v.Runtime || v.Left != 1 || v.Successes != 8 {
			t.Fatalf("view %+v", v)
		}
		if s := v.Sentence(); !strings.Contains(s, "1 of 8 successful attempts have no rt_ phases and are left out of these medians") {
			t.Errorf("sentence %q", s)
		}
		g := m.Cells()[1]
		if g.WithRT != 3 || len(v.Offsets(g)[results.PhaseFunctionStart]) != 3 {
			t.Errorf("gvisor: %d with rt_, function_start %v", g.WithRT, v.Offsets(g)[results.PhaseFunctionStart])
		}
		// The columns stay aligned by attempt.
		for name, col := range g.RTPhases {
			if len(col) != 3 {
				t.Errorf("%s column %v", name, col)
			}
		}
	})
	t.Run("a runtime without", func(t *testing.T) {
		m := build(func(r string, _ int) bool { return r == "runc" })
		v := viewOf(m)
		if v.Runtime || !strings.Contains(v.Sentence(), "API-server view: no rt_ phases in the successful attempts of gvisor at N=1") {
			t.Errorf("view %+v: %q", v, v.Sentence())
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
	b.Phases = append(b.Phases, phase(results.PhaseRTQueueProxyCreated, 260))
	m.AddAttempt(&a)
	m.AddAttempt(&b)
	c := m.Cells()[0]
	qp := c.RTPhases[results.PhaseRTQueueProxyCreated]
	if len(qp) != 2 || !math.IsNaN(qp[0]) || qp[1] != 260e6 {
		t.Errorf("queue-proxy column %v", qp)
	}
	if len(c.Phases) != 0 || !slices.Contains(m.RTPhaseNames, results.PhaseRTQueueProxyCreated) {
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
