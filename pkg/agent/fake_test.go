package agent

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"github.com/containerd/containerd/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeContainerd is containerd's events and containers services as the
// agent uses them, served in-process on a unix socket: Subscribe streams
// what the test publishes; Get and List answer from the containers the
// test stores (in namespace k8s.io only, as containerd scopes them by the
// request's namespace) and count the calls.
type fakeContainerd struct {
	eventsapi.UnimplementedEventsServer
	containersapi.UnimplementedContainersServer

	socket string
	srv    *grpc.Server

	mu         sync.Mutex
	containers map[string]*containersapi.Container
	gets       map[string]int
	lists      int
	subs       map[*fakeSub]struct{}
	subscribed chan struct{} // a token per Subscribe
}

type fakeSub struct {
	filters []string
	send    chan *types.Envelope
	end     chan error
}

// newFakeContainerd serves a fake containerd on a socket in a short
// temporary directory (a unix socket's path is limited to 107 bytes, which
// t.TempDir's long names can pass).
func newFakeContainerd(t *testing.T) *fakeContainerd {
	t.Helper()
	dir, err := os.MkdirTemp("", "cbagent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeContainerd{socket: filepath.Join(dir, "containerd.sock"), containers: map[string]*containersapi.Container{},
		gets: map[string]int{}, subs: map[*fakeSub]struct{}{}, subscribed: make(chan struct{}, 100)}
	f.start(t)
	return f
}

// start serves on f.socket (again, after stop: containerd restarted).
func (f *fakeContainerd) start(t *testing.T) {
	t.Helper()
	os.Remove(f.socket)
	lis, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	eventsapi.RegisterEventsServer(srv, f)
	containersapi.RegisterContainersServer(srv, f)
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
}

// stop ends every stream and connection: containerd went away.
func (f *fakeContainerd) stop() {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	srv.Stop()
}

func (f *fakeContainerd) Subscribe(req *eventsapi.SubscribeRequest, stream eventsapi.Events_SubscribeServer) error {
	s := &fakeSub{filters: req.GetFilters(), send: make(chan *types.Envelope), end: make(chan error)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}()
	f.subscribed <- struct{}{}
	for {
		select {
		case env := <-s.send:
			if err := stream.Send(env); err != nil {
				return err
			}
		case err := <-s.end:
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// waitSubscribed waits for the next Subscribe to reach the server.
func (f *fakeContainerd) waitSubscribed(t *testing.T) {
	t.Helper()
	select {
	case <-f.subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not subscribe")
	}
}

// current is the one subscription open now.
func (f *fakeContainerd) current(t *testing.T) *fakeSub {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) != 1 {
		t.Fatalf("%d subscriptions open, want 1", len(f.subs))
	}
	for s := range f.subs {
		return s
	}
	return nil
}

// publish sends envs, in order, to the open subscription.
func (f *fakeContainerd) publish(t *testing.T, envs ...*types.Envelope) {
	t.Helper()
	s := f.current(t)
	for _, env := range envs {
		select {
		case s.send <- env:
		case <-time.After(10 * time.Second):
			t.Fatal("the agent does not receive")
		}
	}
}

// endStream ends the open subscription with err (nil: a clean end).
func (f *fakeContainerd) endStream(t *testing.T, err error) {
	t.Helper()
	f.current(t).end <- err
}

func namespaceOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("containerd-namespace"); len(v) == 1 {
		return v[0]
	}
	return ""
}

func (f *fakeContainerd) Get(ctx context.Context, req *containersapi.GetContainerRequest) (*containersapi.GetContainerResponse, error) {
	if ns := namespaceOf(ctx); ns != "k8s.io" {
		return nil, status.Errorf(codes.FailedPrecondition, "namespace %q has no containers here", ns)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets[req.GetID()]++
	c, ok := f.containers[req.GetID()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %q in namespace %q: not found", req.GetID(), "k8s.io")
	}
	return &containersapi.GetContainerResponse{Container: proto.Clone(c).(*containersapi.Container)}, nil
}

// List understands the one filter the agent sends: a pod's sandboxes.
func (f *fakeContainerd) List(ctx context.Context, req *containersapi.ListContainersRequest) (*containersapi.ListContainersResponse, error) {
	if ns := namespaceOf(ctx); ns != "k8s.io" {
		return nil, status.Errorf(codes.FailedPrecondition, "namespace %q has no containers here", ns)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if len(req.GetFilters()) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "filters %q", req.GetFilters())
	}
	var out []*containersapi.Container
	for _, c := range f.containers {
		l := c.GetLabels()
		want := `labels."io.kubernetes.pod.uid"=="` + l[labelPodUID] + `",labels."io.cri-containerd.kind"=="sandbox"`
		if l[labelKind] == kindSandbox && req.GetFilters()[0] == want {
			out = append(out, proto.Clone(c).(*containersapi.Container))
		}
	}
	return &containersapi.ListContainersResponse{Containers: out}, nil
}

// getCount is how many Gets asked for id.
func (f *fakeContainerd) getCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[id]
}

// containerdContainer is containerd's record of a container.
type containerdContainer = containersapi.Container

// testPod is a pod as the CRI plugin stores it: a sandbox and containers.
type testPod struct {
	uid, namespace, name string
	labels               map[string]string // the pod's own
	sandbox              string
	containers           map[string]string // name → ID
}

// store stores p's containers the way containerd 2.4's CRI plugin does
// (labels as seen on the lab's containerd); noSandboxField leaves the
// containers' sandbox out of their records, as older containerds do.
func (f *fakeContainerd) store(p testPod, noSandboxField bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sl := map[string]string{labelKind: kindSandbox, labelPodUID: p.uid, labelPodName: p.name, labelPodNamespace: p.namespace,
		"dev.coldbench.function": "pause"} // the pause image's label
	for k, v := range p.labels {
		sl[k] = v
	}
	f.containers[p.sandbox] = &containersapi.Container{ID: p.sandbox, Labels: sl, Image: "coldbench.local/pause:3.10"}
	for name, id := range p.containers {
		c := &containersapi.Container{ID: id, Image: "dev.local/fn:v1", Sandbox: p.sandbox, Labels: map[string]string{
			labelKind: kindContainer, labelPodUID: p.uid, labelPodName: p.name, labelPodNamespace: p.namespace, labelContainerName: name}}
		if noSandboxField {
			c.Sandbox = ""
		}
		f.containers[id] = c
	}
}

// envelope is what containerd sends for msg on topic in k8s.io.
func envelope(t testing.TB, topic string, at time.Time, msg proto.Message) *types.Envelope {
	t.Helper()
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return &types.Envelope{Timestamp: timestamppb.New(at), Namespace: "k8s.io", Topic: topic,
		Event: &anypb.Any{TypeUrl: string(msg.ProtoReflect().Descriptor().FullName()), Value: b}}
}

func created(t testing.TB, id string, at time.Time) *types.Envelope {
	return envelope(t, "/containers/create", at, &eventtypes.ContainerCreate{ID: id, Image: "img"})
}

func started(t testing.TB, id string, at time.Time) *types.Envelope {
	return envelope(t, "/tasks/start", at, &eventtypes.TaskStart{ContainerID: id, Pid: 42})
}

// runAgent runs an Agent on f until the test ends and waits for its
// subscription to reach f.
func runAgent(t *testing.T, f *fakeContainerd, cfg Config) *Agent {
	t.Helper()
	conn, err := Dial(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a := New(conn, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	f.waitSubscribed(t)
	return a
}

// eventually polls cond until it holds (10 s at most).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
