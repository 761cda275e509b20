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
// the four rt_ phases in causal order before the first byte, each the very
// timestamp of the containerd event it stands for (read independently),
// and the phases stay sorted by offset.
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
			for i, a := range batch {
				if !a.OK {
					t.Fatalf("attempt %d failed: %s: %s", i, a.ErrorClass, a.Error)
				}
				checkRuntimePhases(t, events, a)
			}
			t.Logf("%s: phases of attempt 0: %v", name, batch[0].Phases)
			assertNoSandboxes(t, ep, id)
		})
	}
}

func checkRuntimePhases(t *testing.T, events *eventLog, a results.Attempt) {
	t.Helper()
	if a.RuntimePhases != results.RuntimePhasesFromEvents {
		t.Errorf("runtime_phases %q, want %q", a.RuntimePhases, results.RuntimePhasesFromEvents)
	}
	order := []struct{ phase, event string }{
		{results.PhaseRTSandboxCreated, "/containers/create " + a.Cold.SandboxID},
		{results.PhaseRTSandboxStarted, "/tasks/start " + a.Cold.SandboxID},
		{results.PhaseRTUserContainerCreated, "/containers/create " + a.Cold.ContainerID},
		{results.PhaseRTUserContainerStarted, "/tasks/start " + a.Cold.ContainerID},
		{results.PhaseFirstByte, ""},
	}
	last := time.Duration(-1 << 62)
	for _, o := range order {
		off, ok := a.PhaseOffset(o.phase)
		if !ok || off < last {
			t.Errorf("phase %s missing or out of causal order in %v", o.phase, a.Phases)
		}
		last = off
		if o.event == "" {
			continue
		}
		// The offset is back to the event's wall-clock time exactly as the
		// backend made it: from Start without its monotonic reading.
		if got, want := a.Start.Round(0).Add(off), events.get(t, o.event); got.Sub(want).Abs() > time.Millisecond {
			t.Errorf("%s at %v, containerd's %s at %v: %v apart", o.phase, got, o.event, want, got.Sub(want))
		}
	}
	for i := 1; i < len(a.Phases); i++ {
		if a.Phases[i].OffsetNS < a.Phases[i-1].OffsetNS {
			t.Errorf("phases not sorted by offset: %v", a.Phases)
		}
	}
}
