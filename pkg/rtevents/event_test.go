package rtevents

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// captured reads the envelopes containerd 2.4.2 sent to a subscriber
// during one cold start of the node backend (testdata/containerd-2.4.2,
// recorded as sent, proto-encoded): for runtime rt, in the order they came.
func captured(t *testing.T, rt string) []*types.Envelope {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "containerd-2.4.2", rt+"-*.pb"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no captured %s envelopes: %v", rt, err)
	}
	slices.Sort(paths)
	var out []*types.Envelope
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		env := new(types.Envelope)
		if err := proto.Unmarshal(b, env); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, env)
	}
	return out
}

// decodeAll decodes envs, failing on any error; topics rtevents does not
// decode are left out.
func decodeAll(t *testing.T, envs []*types.Envelope) []Event {
	t.Helper()
	var out []Event
	for _, env := range envs {
		ev, ok, err := Decode(env)
		if err != nil {
			t.Fatalf("decoding %s: %v", env.GetTopic(), err)
		}
		if ok {
			out = append(out, ev)
		}
	}
	return out
}

// What containerd really sends for a runc pod decodes into the pod's
// lifecycle: the pause container (the sandbox's ID) stored, its task
// created and started, then the function's container the same way, then
// an exit; the timestamps are the envelopes'.
func TestDecodeCapturedRunc(t *testing.T) {
	envs := captured(t, "runc")
	evs := decodeAll(t, envs)
	kinds := make([]Kind, len(evs))
	for i, ev := range evs {
		kinds[i] = ev.Kind
	}
	want := []Kind{ContainerCreate, TaskCreate, TaskStart, ContainerCreate, TaskCreate, TaskStart, TaskExit}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds %v, want %v (the snapshot event is not decoded)", kinds, want)
	}
	sandbox, ctr := evs[0].ContainerID, evs[3].ContainerID
	if len(sandbox) != 64 || len(ctr) != 64 || sandbox == ctr {
		t.Fatalf("sandbox %q, container %q", sandbox, ctr)
	}
	for i, id := range []string{sandbox, sandbox, sandbox, ctr, ctr, ctr, ctr} {
		if evs[i].ID() != id || evs[i].Namespace != "k8s.io" || evs[i].Topic != evs[i].Kind.Topic() {
			t.Errorf("event %d: %+v, want about %s in k8s.io", i, evs[i], ShortID(id))
		}
	}
	if evs[2].PID == 0 || evs[2].PID != evs[1].PID || evs[5].PID == 0 {
		t.Errorf("pids: create %d start %d, container start %d", evs[1].PID, evs[2].PID, evs[5].PID)
	}
	if exit := evs[6]; exit.ExecID != "" || exit.ExitStatus != 137 || exit.PID != evs[5].PID {
		t.Errorf("exit %+v: want the init process killed (137)", exit)
	}
	for i, ev := range evs {
		if !ev.Time.Equal(envs[i+1].GetTimestamp().AsTime()) || ev.Time.Location() != time.UTC {
			t.Errorf("event %d at %v, envelope at %v", i, ev.Time, envs[i+1].GetTimestamp().AsTime())
		}
		if i > 0 && ev.Time.Before(evs[i-1].Time) {
			t.Errorf("event %d before the one it follows", i)
		}
	}
}

// gVisor's shim publishes no /tasks/create: the captured runsc pod has
// only containerd's ContainerCreate and the shim's TaskStart (and exit).
func TestDecodeCapturedRunsc(t *testing.T) {
	evs := decodeAll(t, captured(t, "runsc"))
	var kinds []Kind
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	want := []Kind{ContainerCreate, TaskStart, ContainerCreate, TaskStart, TaskExit}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	if evs[0].ID() != evs[1].ID() || evs[2].ID() != evs[3].ID() || evs[0].ID() == evs[2].ID() {
		t.Errorf("ids %s %s %s %s", ShortID(evs[0].ID()), ShortID(evs[1].ID()), ShortID(evs[2].ID()), ShortID(evs[3].ID()))
	}
}

// envelope is what containerd sends for msg on topic: typeurl's Any, whose
// URL for a protobuf message is its full name (no type.googleapis.com/).
func envelope(t testing.TB, topic, ns string, at time.Time, msg proto.Message) *types.Envelope {
	t.Helper()
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return &types.Envelope{Timestamp: timestamppb.New(at), Namespace: ns, Topic: topic,
		Event: &anypb.Any{TypeUrl: string(msg.ProtoReflect().Descriptor().FullName()), Value: b}}
}

func TestDecodeKinds(t *testing.T) {
	at := time.Date(2026, 12, 6, 17, 55, 40, 56493710, time.UTC)
	cases := []struct {
		topic string
		msg   proto.Message
		want  Event
	}{
		{"/sandboxes/create", &eventtypes.SandboxCreate{SandboxID: "sb"}, Event{Kind: SandboxCreate, SandboxID: "sb"}},
		{"/sandboxes/start", &eventtypes.SandboxStart{SandboxID: "sb"}, Event{Kind: SandboxStart, SandboxID: "sb"}},
		{"/containers/create", &eventtypes.ContainerCreate{ID: "c", Image: "img"}, Event{Kind: ContainerCreate, ContainerID: "c"}},
		{"/tasks/create", &eventtypes.TaskCreate{ContainerID: "c", Pid: 7}, Event{Kind: TaskCreate, ContainerID: "c", PID: 7}},
		{"/tasks/start", &eventtypes.TaskStart{ContainerID: "c", Pid: 7}, Event{Kind: TaskStart, ContainerID: "c", PID: 7}},
		{"/tasks/exit", &eventtypes.TaskExit{ContainerID: "c", ID: "c", Pid: 7, ExitStatus: 3}, Event{Kind: TaskExit, ContainerID: "c", PID: 7, ExitStatus: 3}},
		{"/tasks/exit", &eventtypes.TaskExit{ContainerID: "c", ID: "ex1", Pid: 8}, Event{Kind: TaskExit, ContainerID: "c", ExecID: "ex1", PID: 8}},
	}
	for _, c := range cases {
		ev, ok, err := Decode(envelope(t, c.topic, "k8s.io", at, c.msg))
		c.want.Time, c.want.Topic, c.want.Namespace = at, c.topic, "k8s.io"
		if err != nil || !ok || ev != c.want {
			t.Errorf("%s: %+v, %v, %v; want %+v", c.topic, ev, ok, err, c.want)
		}
	}
	if ev := (Event{Kind: SandboxStart, SandboxID: "sb"}); ev.Key() != (Key{SandboxStart, "sb"}) {
		t.Errorf("sandbox event's key %v", ev.Key())
	}
}

// A topic rtevents reads with a payload it cannot trust is an error, never
// an event with made-up fields.
func TestDecodeRefuses(t *testing.T) {
	at := time.Now()
	good := func() *types.Envelope {
		return envelope(t, "/tasks/start", "k8s.io", at, &eventtypes.TaskStart{ContainerID: "c"})
	}
	cases := map[string]struct {
		env  *types.Envelope
		want string
	}{
		"another type on the topic": {envelope(t, "/tasks/start", "k8s.io", at, &eventtypes.TaskExit{ContainerID: "c"}), `carries "containerd.events.TaskExit", want containerd.events.TaskStart`},
		"no timestamp":              {func() *types.Envelope { e := good(); e.Timestamp = nil; return e }(), "no timestamp"},
		"no payload":                {func() *types.Envelope { e := good(); e.Event = nil; return e }(), "no payload"},
		"bad bytes":                 {func() *types.Envelope { e := good(); e.Event.Value = []byte{0xff, 0xff}; return e }(), "decoding event /tasks/start"},
		"no id":                     {envelope(t, "/tasks/start", "k8s.io", at, &eventtypes.TaskStart{Pid: 3}), "names no container"},
	}
	for name, c := range cases {
		_, ok, err := Decode(c.env)
		if !ok || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ok %v, err %v; want an error containing %q", name, ok, err, c.want)
		}
	}
	if _, ok, err := Decode(envelope(t, "/snapshot/prepare", "k8s.io", at, &eventtypes.SnapshotPrepare{Key: "k"})); ok || err != nil {
		t.Errorf("a topic rtevents does not read: ok %v, err %v", ok, err)
	}
	// The URL form anypb.New writes is accepted too.
	a, _ := anypb.New(&eventtypes.TaskStart{ContainerID: "c"})
	env := good()
	env.Event = a
	if ev, _, err := Decode(env); err != nil || ev.ContainerID != "c" {
		t.Errorf("type.googleapis.com URL: %+v, %v", ev, err)
	}
}

func TestFilters(t *testing.T) {
	got := Filters("k8s.io", ContainerCreate, TaskStart)
	want := []string{`namespace=="k8s.io",topic=="/containers/create"`, `namespace=="k8s.io",topic=="/tasks/start"`}
	if !slices.Equal(got, want) {
		t.Errorf("Filters = %q, want %q", got, want)
	}
	if all := Filters(""); len(all) != len(Kinds) || all[0] != `topic=="/sandboxes/create"` {
		t.Errorf("all kinds, every namespace: %q", all)
	}
}
