package stats

import (
	"math"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

func i64(v int64) *int64 { return &v }

// Footprints summarize per attempt, and the node's cross-check per step.
func TestFootprintSummary(t *testing.T) {
	m := NewModel()
	for i := 0; i < 8; i++ {
		f := &results.Footprint{Source: results.FootprintFromNode, PSSBytes: i64(int64(10+i) << 20),
			CPUToFirstByteNS: i64(int64(20+i) * 1e6), IdleCPUNS: i64(5e6), IdleWindowNS: 1e9,
			NodeMemAvailableDropBytes: i64(int64(4*(12+i/4)) << 20), NodeInstances: 4}
		if i == 7 {
			f.PSSBytes, f.Missing = nil, "pss: every process of the instance had exited"
		}
		m.AddAttempt(&results.Attempt{ExperimentID: "e", Platform: "node", Runtime: "runc", Scale: 4, Iteration: i / 4,
			Instance: i % 4, OK: true, TTFBNS: 1e6, Footprint: f})
	}
	m.AddAttempt(&results.Attempt{ExperimentID: "e", Platform: "node", Runtime: "runc", Scale: 4, Iteration: 2, Instance: 0,
		ErrorClass: results.ErrTimeout, Footprint: &results.Footprint{PSSBytes: i64(1 << 40)}}) // failed: not counted
	f := m.Rows()[0].Footprint
	if f == nil {
		t.Fatal("no footprint summary")
	}
	if f.Attempts != 8 || f.PSS.N != 7 || f.PSS.Median != 13<<20 || !f.PSS.CI {
		t.Errorf("pss %+v over %d attempts", f.PSS, f.Attempts)
	}
	if f.CgroupUsage.N != 0 {
		t.Errorf("cgroup usage measured nowhere, got %+v", f.CgroupUsage)
	}
	// Two steps, each once: 12 and 13 MiB per instance.
	if f.MemAvailablePerInstance.N != 2 || f.MemAvailablePerInstance.Median != 12.5*(1<<20) || f.MemAvailablePerInstance.CI {
		t.Errorf("MemAvailable per instance %+v", f.MemAvailablePerInstance)
	}
	if f.IdleCores.N != 8 || math.Abs(f.IdleCores.Median-0.005) > 1e-12 {
		t.Errorf("idle %+v", f.IdleCores)
	}
	if f.Missing == "" || len(f.Sources) != 1 {
		t.Errorf("missing %q sources %v", f.Missing, f.Sources)
	}
	if d := Agreement(f.PSS, f.MemAvailablePerInstance); math.Abs(d-0.5/13) > 1e-9 {
		t.Errorf("agreement %v", d)
	}
	if !math.IsNaN(Agreement(f.PSS, f.CgroupUsage)) {
		t.Error("agreement with a figure not measured is a number")
	}
	// Records without footprints: no summary at all.
	m2 := NewModel()
	m2.AddAttempt(&results.Attempt{ExperimentID: "e", Platform: "node", Runtime: "runc", Scale: 1, OK: true, TTFBNS: 1})
	if m2.Rows()[0].Footprint != nil {
		t.Error("a footprint summary without footprint records")
	}
}

// On Knative a step's pods may be on several nodes: each node's drop of
// MemAvailable counts once for the step.
func TestFootprintMemAvailablePerNode(t *testing.T) {
	m := NewModel()
	for i := range 4 {
		node, drop := "n1", int64(20<<20) // 2 pods on n1: 10 MiB each
		if i >= 2 {
			node, drop = "n2", 60<<20 // 2 on n2: 30 MiB each
		}
		m.AddAttempt(&results.Attempt{ExperimentID: "e", Platform: "knative", Runtime: "runc", Scale: 4, Instance: i, OK: true, TTFBNS: 1e6,
			RuntimeClock: &results.RuntimeClock{Node: node},
			Footprint:    &results.Footprint{Source: results.FootprintFromAgent, NodeMemAvailableDropBytes: i64(drop), NodeInstances: 2}})
	}
	if f := m.Rows()[0].Footprint; f.MemAvailablePerInstance.N != 2 || f.MemAvailablePerInstance.Median != 20<<20 {
		t.Errorf("MemAvailable per instance %+v: want one per node, 10 and 30 MiB", f.MemAvailablePerInstance)
	}
}
