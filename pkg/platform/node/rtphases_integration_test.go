package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/results"
)

// eventLog is what containerd published, read on a subscription of the
// test's own, decoded without pkg/rtevents: topic + " " + ID → the
// envelope's timestamp.
type eventLog struct {
	mu  sync.Mutex
	at  map[string]time.Time
	err error
}

// watchEvents subscribes to the /containers/create and /tasks/start
// events of CRI's namespace on the containerd at ep, until the test ends.
func watchEvents(t *testing.T, ep string) *eventLog {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+node.SocketPath(ep), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := eventsapi.NewEventsClient(conn).Subscribe(ctx, &eventsapi.SubscribeRequest{Filters: []string{
		`namespace=="k8s.io",topic=="/containers/create"`, `namespace=="k8s.io",topic=="/tasks/start"`}})
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{at: map[string]time.Time{}}
	go func() {
		for {
			env, err := stream.Recv()
			if err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
				return
			}
			m, err := anypb.UnmarshalNew(env.GetEvent(), proto.UnmarshalOptions{})
			var id string
			switch m := m.(type) {
			case *eventtypes.ContainerCreate:
				id = m.GetID()
			case *eventtypes.TaskStart:
				id = m.GetContainerID()
			}
			if err != nil || id == "" {
				continue
			}
			l.mu.Lock()
			l.at[env.GetTopic()+" "+id] = env.GetTimestamp().AsTime()
			l.mu.Unlock()
		}
	}()
	return l
}

// get waits up to 10 s for the event key.
func (l *eventLog) get(t *testing.T, key string) time.Time {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		at, ok, err := l.at[key], l.at[key] != time.Time{}, l.err
		l.mu.Unlock()
		switch {
		case ok:
			return at
		case err != nil || time.Now().After(end):
			t.Fatalf("the test's own subscription has no %s (stream: %v)", key, err)
		}
	}
}

// On the real containerd, for each runtime: every successful attempt has
// the four rt_ phases, each the very timestamp of the containerd event it
// stands for (read independently), in the orders causality guarantees
// (checkRuntimePhases), and the phases stay sorted by offset.
func TestRuntimePhasesRealRuntimes(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	events := watchEvents(t, ep)
	p, err := node.New(ep, bench.DefaultPort, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, name := range []string{"runc", "crun", "runsc"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			exp := experiment(ep, name)
			if err := exp.CompleteAndValidate(false); err != nil {
				t.Fatal(err)
			}
			if err := bench.Failed(p.Checks(ctx, exp)); err != nil {
				testenv.Missing(t, fmt.Sprintf("runtime %s: %v", name, err))
			}
			id := bench.NewExperimentID(time.Now())
			batch := open(t, p, exp, id).ColdStart(ctx, bench.Cell{ExperimentID: id, Runtime: exp.Spec.Runtimes[0], Scale: 2,
				RequestTimeout: 30 * time.Second, ProbeInterval: 2 * time.Millisecond})
			returned := time.Now()
			for i, a := range batch {
				if !a.OK {
					t.Fatalf("attempt %d failed: %s: %s", i, a.ErrorClass, a.Error)
				}
				checkRuntimePhases(t, events, a, returned)
			}
			t.Logf("%s: phases of attempt 0: %v", name, batch[0].Phases)
			assertNoSandboxes(t, ep, id)
		})
	}
}

// clockSlack bounds how far the wall clock (the rt_ phases) and the
// monotonic clock (the user-space phases) drift apart over one attempt when
// the wall clock is not stepped: NTP slews it by at most 500 ppm, 1 ms over
// 2 s.
const clockSlack = 5 * time.Millisecond

// checkRuntimePhases checks a's rt_ phases against containerd's events (read
// on the test's own subscription) and against the orders that hold by
// causality; returned is when ColdStart returned.
//
// containerd stamps /containers/create synchronously, before the call that
// stores the container returns: inside RunPodSandbox for the pause
// container, inside CreateContainer for the function's. The shim stamps
// /tasks/start in its event-forwarding goroutine, after the runtime's start
// returned and after it forwarded its previous events, asynchronously to
// its reply to containerd: the CRI call, the pod IP read and even the
// function's first reply can come before that stamp on a loaded host. So
// a /tasks/start phase is checked only against what precedes it causally
// (its container's /containers/create and the CRI calls that returned
// before the start began) and against an upper bound that always holds:
// the window had the event, stamped before it was sent, by the time
// ColdStart returned. Where it comes after a later user-space phase, that
// is logged, not failed.
func checkRuntimePhases(t *testing.T, events *eventLog, a results.Attempt, returned time.Time) {
	t.Helper()
	if a.RuntimePhases != results.RuntimePhasesFromEvents {
		t.Errorf("runtime_phases %q, want %q", a.RuntimePhases, results.RuntimePhasesFromEvents)
	}
	off := map[string]time.Duration{}
	for _, name := range []string{results.PhaseSandboxReady, results.PhaseContainerCreated, results.PhaseContainerStarted, results.PhaseFirstByte,
		results.PhaseRTSandboxCreated, results.PhaseRTSandboxStarted, results.PhaseRTUserContainerCreated, results.PhaseRTUserContainerStarted} {
		o, ok := a.PhaseOffset(name)
		if !ok {
			t.Errorf("phase %s missing in %v", name, a.Phases)
			return
		}
		off[name] = o
	}
	for phase, event := range map[string]string{
		results.PhaseRTSandboxCreated:       "/containers/create " + a.Cold.SandboxID,
		results.PhaseRTSandboxStarted:       "/tasks/start " + a.Cold.SandboxID,
		results.PhaseRTUserContainerCreated: "/containers/create " + a.Cold.ContainerID,
		results.PhaseRTUserContainerStarted: "/tasks/start " + a.Cold.ContainerID,
	} {
		// The offset is back to the event's wall-clock time exactly as the
		// backend made it: from Start without its monotonic reading.
		got, want := a.Start.Round(0).Add(off[phase]), events.get(t, event)
		if !got.Equal(want) {
			t.Errorf("%s at %v, containerd's %s at %v: %v apart", phase, got, event, want, got.Sub(want))
		}
		if got.After(returned) {
			t.Errorf("%s at %v, after ColdStart returned (%v): an event from the future", phase, got, returned)
		}
	}
	causal := []struct {
		before, after string
		slack         time.Duration // clockSlack where the two are on different clocks
	}{
		{results.PhaseRTSandboxCreated, results.PhaseRTSandboxStarted, 0},
		{results.PhaseRTSandboxCreated, results.PhaseSandboxReady, clockSlack},
		{results.PhaseSandboxReady, results.PhaseRTUserContainerCreated, clockSlack},
		{results.PhaseRTUserContainerCreated, results.PhaseContainerCreated, clockSlack},
		{results.PhaseRTUserContainerCreated, results.PhaseRTUserContainerStarted, 0},
		{results.PhaseContainerCreated, results.PhaseRTUserContainerStarted, clockSlack},
	}
	for _, c := range causal {
		if off[c.before] > off[c.after]+c.slack {
			t.Errorf("%s (%v) after %s (%v): out of causal order in %v", c.before, off[c.before], c.after, off[c.after], a.Phases)
		}
	}
	for _, c := range [][2]string{
		{results.PhaseRTSandboxStarted, results.PhaseSandboxReady},
		{results.PhaseRTUserContainerStarted, results.PhaseContainerStarted},
		{results.PhaseRTUserContainerStarted, results.PhaseFirstByte},
	} {
		if off[c[0]] > off[c[1]] {
			t.Logf("%s (%v) after %s (%v): the shim stamped /tasks/start late (not an error)", c[0], off[c[0]], c[1], off[c[1]])
		}
	}
	for i := 1; i < len(a.Phases); i++ {
		if a.Phases[i].OffsetNS < a.Phases[i-1].OffsetNS {
			t.Errorf("phases not sorted by offset: %v", a.Phases)
		}
	}
}
