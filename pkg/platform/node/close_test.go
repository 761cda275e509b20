package node

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/pkg/bench"
)

// fakeCRI holds sandboxes and can refuse to stop them, as a containerd
// whose shim hangs does.
type fakeCRI struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	mu        sync.Mutex
	sandboxes map[string]*runtimeapi.PodSandbox
	stopFails bool
	// failStops refuses that many StopPodSandbox calls before it accepts
	// them (a shim that answers again once the node is less loaded).
	failStops int
	stops     int
}

func (f *fakeCRI) ListPodSandbox(_ context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range f.sandboxes {
		match := true
		for k, v := range r.GetFilter().GetLabelSelector() {
			match = match && sb.Labels[k] == v
		}
		if match {
			out.Items = append(out.Items, sb)
		}
	}
	return out, nil
}

func (f *fakeCRI) StopPodSandbox(context.Context, *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops++
	if f.stopFails || f.stops <= f.failStops {
		return nil, errors.New("shim did not answer")
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (f *fakeCRI) ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{}, nil
}

func (f *fakeCRI) RemovePodSandbox(_ context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sandboxes, r.PodSandboxId)
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// serveFakeCRI serves f on a socket and returns a platform talking to it.
func serveFakeCRI(t *testing.T, f *fakeCRI) *Platform {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	p, err := New("unix://"+sock, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// A sandbox a cell's teardown could not remove: the session's Close
// removes it, or, if it cannot, fails naming it (what `run` reports).
func TestCloseRemovesWhatTeardownLeftOrSaysWhatIsLeft(t *testing.T) {
	const id = "cb-20260101t000000-abcdef"
	labels := map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: id}
	for _, stopFails := range []bool{false, true} {
		f := &fakeCRI{stopFails: stopFails, sandboxes: map[string]*runtimeapi.PodSandbox{
			"0123456789abcdef": {Id: "0123456789abcdef", Labels: labels, Metadata: &runtimeapi.PodSandboxMetadata{Name: "runc-n1-i0-0", Namespace: Namespace}},
			"other":            {Id: "other", Labels: map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: "cb-other"}, Metadata: &runtimeapi.PodSandboxMetadata{Name: "x", Namespace: Namespace}},
		}}
		p := serveFakeCRI(t, f)
		s, err := p.Open(context.Background(), bench.Default(), id, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Close()
		left, lerr := p.Leftovers(context.Background(), id)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if !stopFails {
			if err != nil || left[0].Count != 0 {
				t.Errorf("Close = %v, leftovers %+v: want the sandbox removed", err, left)
			}
		} else if err == nil || !strings.Contains(err.Error(), id) || left[0].Count != 1 || left[0].Names[0] != "runc-n1-i0-0 (0123456789ab)" {
			t.Errorf("Close = %v, leftovers %+v: want a failure naming the experiment, and its sandbox listed", err, left)
		}
		if _, ok := f.sandboxes["other"]; !ok {
			t.Error("Close removed another experiment's sandbox")
		}
		if got := strings.Join(p.CleanFlags(), " "); !strings.Contains(got, "--platform node --endpoint unix://") {
			t.Errorf("clean flags %q", got)
		}
	}
}

// A sandbox that does not go at first (an overloaded runtime) is retried
// until it is gone: by a sweep cell's teardown, and by a density run's
// RemoveKept; a cancelled run stops the retries.
func TestTeardownRetriesUntilGone(t *testing.T) {
	newSandbox := func(f *fakeCRI, id string) *instance {
		f.sandboxes[id] = &runtimeapi.PodSandbox{Id: id, Metadata: &runtimeapi.PodSandboxMetadata{Name: id, Namespace: Namespace}}
		return &instance{podID: id, sandbox: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Uid: ""}}}
	}
	f := &fakeCRI{failStops: 2, sandboxes: map[string]*runtimeapi.PodSandbox{}}
	p := serveFakeCRI(t, f)
	in := newSandbox(f, "a")
	in.p = p
	in.teardown(context.Background())
	if _, left := f.sandboxes["a"]; left || f.stops != 3 {
		t.Errorf("after teardown: sandbox left %v, %d stop calls; want it gone after 3", left, f.stops)
	}

	f.stops, f.failStops = 0, 3
	s := &session{p: p}
	for _, id := range []string{"b", "c"} {
		in := newSandbox(f, id)
		in.p = p
		s.kept = append(s.kept, in)
	}
	if err := s.RemoveKept(context.Background()); err != nil || len(f.sandboxes) != 0 || len(s.kept) != 0 {
		t.Errorf("RemoveKept = %v, sandboxes left %d, kept %d", err, len(f.sandboxes), len(s.kept))
	}

	f.stopFails = true
	in = newSandbox(f, "d")
	in.p = p
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in.teardown(ctx) // one try, then no retry: the run is over
	s.kept = []*instance{in}
	err := s.RemoveKept(ctx)
	if _, left := f.sandboxes["d"]; !left || err == nil || !strings.Contains(err.Error(), "1 of 1 kept sandboxes are not removed (first d") {
		t.Errorf("cancelled: RemoveKept = %v, sandbox left %v", err, left)
	}
}
