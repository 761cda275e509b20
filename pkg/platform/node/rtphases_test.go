package node

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/rtevents"
)

// podEvents are a pod's four events, 10 ms apart from at.
func podEvents(at time.Time, sandbox, ctr string) []rtevents.Event {
	var out []rtevents.Event
	for i, k := range rtevents.PodKeys(sandbox, ctr) {
		out = append(out, rtevents.Event{Kind: k.Kind, ContainerID: k.ID, Time: at.Add(time.Duration(i+1) * 10 * time.Millisecond)})
	}
	return out
}

// The events' wall-clock times become offsets from the attempt's start
// as function_start's do: against t0 without its monotonic reading.
func TestRuntimePhasesFromEvents(t *testing.T) {
	t0 := time.Now() // with a monotonic reading, as an attempt's
	w := rtevents.NewWindow(0, 0, nil)
	for _, ev := range podEvents(t0.Round(0), "sb", "ctr") {
		w.Add(ev)
	}
	phases, note := runtimePhases(context.Background(), w, time.Second, t0, "sb", "ctr", true)
	if note != results.RuntimePhasesFromEvents || len(phases) != 4 {
		t.Fatalf("%q, %+v", note, phases)
	}
	for i, p := range phases {
		if p.Name != rtPhaseNames[i] || p.OffsetNS != int64(i+1)*int64(10*time.Millisecond) {
			t.Errorf("phase %d: %+v", i, p)
		}
	}
}

// A successful attempt has all four or none, with the reason.
func TestRuntimePhasesMissing(t *testing.T) {
	t0 := time.Now()
	w := rtevents.NewWindow(0, 0, nil)
	evs := podEvents(t0, "sb", "ctr")
	for _, ev := range evs[:3] {
		w.Add(ev)
	}
	phases, note := runtimePhases(context.Background(), w, 20*time.Millisecond, t0, "sb", "ctr", true)
	if len(phases) != 0 || note != "missing: no task_start ctr: not seen within 20ms of the reply" {
		t.Errorf("late event: %q, %+v", note, phases)
	}
	w.Lose(errors.New("containerd event stream lost: EOF"))
	phases, note = runtimePhases(context.Background(), w, time.Minute, t0, "sb", "ctr", true)
	if len(phases) != 0 || note != "missing: no task_start ctr: containerd event stream lost: EOF" {
		t.Errorf("lost stream: %q, %+v", note, phases)
	}
}

// An event that could not be decoded is named in the note of an attempt
// missing one: else a changed payload type would read as events that
// never came, with the reason only in the log.
func TestRuntimePhasesUndecodable(t *testing.T) {
	t0 := time.Now()
	w := rtevents.NewWindow(0, 0, nil)
	evs := podEvents(t0, "sb", "ctr")
	for _, ev := range evs[:3] {
		w.Add(ev)
	}
	w.Undecodable(errors.New(`event /tasks/start carries "containerd.events.TaskStartV2", want containerd.events.TaskStart`))
	_, note := runtimePhases(context.Background(), w, 20*time.Millisecond, t0, "sb", "ctr", true)
	if want := `missing: no task_start ctr: not seen within 20ms of the reply; 1 event could not be decoded: event /tasks/start carries "containerd.events.TaskStartV2", want containerd.events.TaskStart`; note != want {
		t.Errorf("note %q, want %q", note, want)
	}
}

// A failed attempt records what containerd published, without waiting.
func TestRuntimePhasesOfAFailure(t *testing.T) {
	t0 := time.Now()
	w := rtevents.NewWindow(0, 0, nil)
	for _, ev := range podEvents(t0, "sb", "ctr")[:2] {
		w.Add(ev)
	}
	began := time.Now()
	phases, note := runtimePhases(context.Background(), w, time.Minute, t0, "sb", "", false)
	if time.Since(began) > 10*time.Second {
		t.Error("a failed attempt waited")
	}
	if len(phases) != 2 || phases[1].Name != results.PhaseRTSandboxStarted ||
		!strings.HasPrefix(note, results.RuntimePhasesPartial) || !strings.HasSuffix(note, "none for rt_user_container_created, rt_user_container_started") {
		t.Errorf("%q, %+v", note, phases)
	}
}
