package stats

import (
	"reflect"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

const sec = int64(time.Second)

// stepSet is one cell (knative, runc, N = 2) over two experiments whose
// nodes have different cores (A: 4, B: 8), with a warm-up step whose
// figures would dominate every maximum, and a cell (N = 1) from records
// written before step figures existed. Experiment B's header comes between
// the two experiments' attempts, as in a file appended by a second run.
func stepSet() []results.Record {
	hdr := func(id string, cores int) results.Record {
		return results.Record{Header: &results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: id,
			Testbed: results.Testbed{Cores: cores}}}
	}
	var recs []results.Record
	step := func(id string, it int, warmup bool, st results.Step, waits ...*results.Unschedulable) {
		for i := range 2 {
			a := &results.Attempt{Type: results.TypeAttempt, ExperimentID: id, Platform: "knative", Runtime: "runc", Scale: 2,
				Iteration: it, Instance: i, Warmup: warmup, OK: true, TTFBNS: sec, Step: &st}
			if i < len(waits) && waits[i] != nil {
				a.Unschedulable = waits[i]
				a.OK = waits[i].Scheduled
				if !a.OK {
					a.ErrorClass = results.ErrNotScheduled
				}
			}
			recs = append(recs, results.Record{Attempt: a})
		}
	}
	recs = append(recs, hdr("A", 4))
	step("A", 0, true, results.Step{WallNS: 100 * sec, SetupNS: 50 * sec, TeardownNS: 40 * sec, HarnessCPUNS: 40 * sec, HarnessPeakRSSBytes: 200 << 20, HarnessPeakRSSScope: "step"},
		&results.Unschedulable{Reason: "Insufficient cpu", WaitNS: 100 * sec, Scheduled: true})
	step("A", 1, false, results.Step{WallNS: 10 * sec, SetupNS: 4 * sec, TeardownNS: 1 * sec, HarnessCPUNS: 400 * sec / 1000, HarnessPeakRSSBytes: 100 << 20, HarnessPeakRSSScope: "step"},
		&results.Unschedulable{Reason: "Insufficient cpu", WaitNS: 3 * sec, Scheduled: true})
	step("A", 2, false, results.Step{WallNS: 20 * sec, SetupNS: 8 * sec, TeardownNS: 3 * sec, HarnessCPUNS: 1200 * sec / 1000, HarnessPeakRSSBytes: 120 << 20, HarnessPeakRSSScope: "process"},
		nil, &results.Unschedulable{Reason: "Insufficient cpu", WaitNS: 61 * sec})
	old := &results.Attempt{Type: results.TypeAttempt, ExperimentID: "A", Platform: "knative", Runtime: "runc", Scale: 1, OK: true, TTFBNS: sec}
	recs = append(recs, results.Record{Attempt: old})
	recs = append(recs, hdr("B", 8))
	// Same iteration number as one of A's: another step all the same.
	step("B", 1, false, results.Step{WallNS: 12 * sec, SetupNS: 2 * sec, TeardownNS: 2 * sec, HarnessCPUNS: 1600 * sec / 1000, HarnessPeakRSSBytes: 90 << 20, HarnessPeakRSSScope: "step"},
		&results.Unschedulable{Reason: "Too many pods", WaitNS: 5 * sec, Scheduled: true})
	return recs
}

// Hand-computed: steps A/1, A/2, B/1 (the warm-up A/0 excluded), each
// once though two attempts carry it. Set-up 4, 8, 2 s; teardown 1, 3, 2 s;
// wall 10, 20, 12 s. Harness CPU share: 0.4/(10×4) = 1 %, 1.2/(20×4) =
// 1.5 %, 1.6/(12×8) = 1.67 % (B's 8 cores: with A's 4 it would be 3.3 %).
// Peak RSS 120 MiB, A/2's, per process. Waits 3, 61, 5 s: 3 waited, 2
// answered, median 5 s, max 61 s.
func TestStepAndWaitFigures(t *testing.T) {
	want := StepSummary{Steps: 3, Setup: MedianMax{4e9, 8e9}, Teardown: MedianMax{2e9, 3e9}, Wall: MedianMax{12e9, 20e9},
		HarnessCPUShareMax: 1.6 / 96, CPUShareSteps: 3, HarnessPeakRSSMax: 120 << 20, HarnessPeakRSSScope: "process"}
	wantWait := WaitSummary{Waited: 3, Answered: 2, Wait: MedianMax{5e9, 61e9}}

	streamed := NewModel()
	set := &results.Set{}
	for _, r := range stepSet() {
		if err := streamed.Add(r); err != nil {
			t.Fatal(err)
		}
		if r.Header != nil {
			set.Headers = append(set.Headers, *r.Header)
		} else {
			set.Attempts = append(set.Attempts, *r.Attempt)
		}
	}
	for name, m := range map[string]*Model{"streamed": streamed, "in memory": FromSet(set)} {
		rows := m.Rows()
		if len(rows) != 2 || rows[0].Scale != 1 || rows[1].Scale != 2 {
			t.Fatalf("%s: rows %+v", name, rows)
		}
		if rows[0].Steps != nil || rows[0].Waited != nil {
			t.Errorf("%s: records without step figures or waits: %+v, %+v; want none", name, rows[0].Steps, rows[0].Waited)
		}
		got := rows[1].Steps
		if got == nil {
			t.Fatalf("%s: no step summary", name)
		}
		const eps = 1e-12
		if d := got.HarnessCPUShareMax - want.HarnessCPUShareMax; d > eps || d < -eps {
			t.Errorf("%s: harness CPU share %v, want %v", name, got.HarnessCPUShareMax, want.HarnessCPUShareMax)
		}
		g := *got
		g.HarnessCPUShareMax = want.HarnessCPUShareMax
		if !reflect.DeepEqual(g, want) {
			t.Errorf("%s: steps\n%+v, want\n%+v", name, g, want)
		}
		if w := rows[1].Waited; w == nil || *w != wantWait {
			t.Errorf("%s: waited %+v, want %+v", name, w, wantWait)
		}
	}
}

// A step whose experiment's header says nothing of cores gets no CPU
// share (not a share of zero cores), and the others still do.
func TestStepCPUShareNeedsTheCores(t *testing.T) {
	m := NewModel()
	m.Headers = []results.Header{{ExperimentID: "A"}, {ExperimentID: "B", Testbed: results.Testbed{Cores: 2}}}
	for i, id := range []string{"A", "B"} {
		m.AddAttempt(&results.Attempt{ExperimentID: id, Platform: "node", Runtime: "runc", Scale: 1, Iteration: i, OK: true,
			Step: &results.Step{WallNS: 10 * sec, HarnessCPUNS: sec}})
	}
	s := m.Rows()[0].Steps
	if s == nil || s.Steps != 2 || s.CPUShareSteps != 1 || s.HarnessCPUShareMax != 0.05 {
		t.Errorf("steps %+v: want 2 steps, the share of B's only (1/(10×2) = 5 %%)", s)
	}
}
