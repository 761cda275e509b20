package knative

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// stamp is a measurement that notes when it started and gathered, what it
// was given, and adds a phase to every attempt, after its reply (phases are
// in time order).
type stamp struct {
	mu                sync.Mutex
	insts             []bench.Instance
	started, gathered time.Time
}

func (*stamp) Name() string { return "stamp" }

func (m *stamp) Start(_ context.Context, _ bench.Cell, insts []bench.Instance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.insts, m.started = slices.Clone(insts), time.Now()
	return nil
}

func (m *stamp) Gather(_ context.Context, _ bench.Cell, attempts []results.Attempt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gathered = time.Now()
	for i := range attempts {
		attempts[i].Phases = append(attempts[i].Phases, results.Phase{Name: "stamped", OffsetNS: attempts[i].TotalNS + int64(i)})
	}
}

// A measurement added to the session starts before the release, with each
// instance's revision and whether it is released, and gathers after the
// replies; what it adds is in the attempts, next to the watches' evidence
// (the pods measurement, which every session has).
func TestSessionRunsItsMeasurementsAroundTheRelease(t *testing.T) {
	l := newLab(t, labOptions{readiness: time.Second, behave: func(i int) behaviour {
		return behaviour{neverReady: i == 1}
	}})
	var names []string
	for _, m := range l.s.measurements {
		names = append(names, m.Name())
	}
	if !slices.Contains(names, "pods") {
		t.Fatalf("session measurements %v: want the pods one", names)
	}
	m := &stamp{}
	l.s.measurements = append(l.s.measurements, m)
	out := l.coldStart(l.cell(3, 0, 10*time.Second))
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.insts) != 3 || m.insts[1].Ready || !m.insts[0].Ready || !m.insts[2].Ready {
		t.Fatalf("instances %+v: want 3, the never-Ready one not released", m.insts)
	}
	for i, a := range out {
		if off, ok := a.PhaseOffset("stamped"); !ok || off != time.Duration(a.TotalNS+int64(i)) {
			t.Errorf("instance %d: phases %+v, want the measurement's", i, a.Phases)
		}
		if i == 1 {
			continue
		}
		checkCold(t, a, l, i, l.name(3, 0, i))
		if m.insts[i].Name != a.Cold.Revision {
			t.Errorf("instance %d: measured %q, answered by revision %q", i, m.insts[i].Name, a.Cold.Revision)
		}
		if !m.started.Before(a.Start) || m.gathered.Before(a.Start.Add(time.Duration(a.TotalNS))) {
			t.Errorf("instance %d: started %v, gathered %v; request from %v for %v", i, m.started, m.gathered, a.Start, time.Duration(a.TotalNS))
		}
	}
}

// The pods measurement waits for an answered attempt's pod to show Ready,
// but not past the interrupt, and for a pod the watches never showed only
// podSeenGrace (on the tracker's clock), however long the readiness
// timeout.
func TestPodMeasurementGatherDoesNotOutwaitTheInterruptOrAnUnseenPod(t *testing.T) {
	answered := func() []results.Attempt { return []results.Attempt{{OK: true, Start: time.Now()}} }
	insts := []bench.Instance{{Name: "rev-00001", Ready: true}}

	m := &podMeasurement{tr: newTracker(), insts: insts, readyGrace: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t0 := time.Now()
	m.Gather(ctx, bench.Cell{}, answered())
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("interrupted: Gather took %v", took)
	}

	// A clock that moves on by more than podSeenGrace at every reading.
	m = &podMeasurement{tr: newTracker(), insts: insts, readyGrace: time.Minute}
	var now time.Time
	m.tr.now = func() time.Time { now = now.Add(podSeenGrace + time.Second); return now }
	t0 = time.Now()
	m.Gather(context.Background(), bench.Cell{}, answered())
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("no pod seen: Gather took %v, want it over once podSeenGrace passed on the tracker's clock", took)
	}
}
