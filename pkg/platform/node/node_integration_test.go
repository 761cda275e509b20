package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/results"
)

func experiment(ep string, runtimes ...string) *bench.Experiment {
	exp := bench.Default()
	exp.Spec.Runtimes = bench.RuntimesFromNames(runtimes, bench.DefaultImage)
	exp.Spec.SetSection(node.Name, &node.Spec{Endpoint: ep})
	return exp
}

// Real runc, crun and gVisor (runsc) cold starts through containerd's CRI: every instance
// answers, from a sandbox of its own, with phases in causal order, and
// nothing is left behind.
func TestColdStartRealRuntimes(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	p, err := node.New(ep, bench.DefaultPort, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	exp := experiment(ep, "runc", "crun", "runsc")
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	if err := bench.Failed(p.Checks(ctx, exp)); err != nil {
		t.Fatal(err)
	}
	id := bench.NewExperimentID(time.Now())
	sess := open(t, p, exp, id)
	seen := map[string]bool{}
	for _, rt := range exp.Spec.Runtimes {
		for _, n := range []int{1, 3} {
			batch := sess.ColdStart(ctx, bench.Cell{ExperimentID: id, Runtime: rt, Scale: n,
				RequestTimeout: 30 * time.Second, ProbeInterval: 2 * time.Millisecond})
			if len(batch) != n {
				t.Fatalf("%s N=%d: %d attempts", rt.Name, n, len(batch))
			}
			for i, a := range batch {
				if !a.OK {
					t.Fatalf("%s N=%d #%d failed: %s: %s", rt.Name, n, i, a.ErrorClass, a.Error)
				}
				if a.Instance != i || a.HTTPStatus != 200 || a.Probes < 1 {
					t.Errorf("attempt %+v", a)
				}
				if seen[a.Cold.SandboxID] || a.Cold.SandboxID == "" {
					t.Errorf("sandbox %q reused or missing: not a cold start", a.Cold.SandboxID)
				}
				seen[a.Cold.SandboxID] = true
				// Causal order of the monotonic phases.
				var last int64
				for _, name := range []string{results.PhaseSandboxReady, results.PhaseContainerCreated, results.PhaseContainerStarted, results.PhaseAddressKnown, results.PhaseFirstByte} {
					off, ok := a.PhaseOffset(name)
					if !ok || off.Nanoseconds() < last {
						t.Errorf("%s: phase %s missing or out of order in %+v", rt.Name, name, a.Phases)
					}
					last = off.Nanoseconds()
				}
				if a.TTFBNS <= 0 || a.TotalNS < a.TTFBNS || a.TTFBNS > int64(30*time.Second) {
					t.Errorf("latencies ttfb=%d total=%d", a.TTFBNS, a.TotalNS)
				}
				// The first byte is the kernel's receive stamp (issue 17),
				// with coldbench's own read kept beside it.
				if _, ok := a.PhaseOffset(results.PhaseUserFirstByte); a.Timestamps != results.TimestampsKernel || !ok {
					t.Errorf("timestamps %q (%s), user_first_byte kept %v: want the kernel's", a.Timestamps, a.TimestampsNote, ok)
				}
				// The function's own start lies between container start and
				// first byte (wall clock; allow 5ms of clock mismatch).
				fs, ok := a.PhaseOffset(results.PhaseFunctionStart)
				cs, _ := a.PhaseOffset(results.PhaseSandboxReady)
				if !ok || fs < cs-5*time.Millisecond || fs.Nanoseconds() > a.TTFBNS+int64(5*time.Millisecond) {
					t.Errorf("function_start %v outside [sandbox_ready %v, first byte %v]", fs, cs, time.Duration(a.TTFBNS))
				}
				if !strings.Contains(a.Cold.Address, ":8080") {
					t.Errorf("address %q", a.Cold.Address)
				}
			}
			t.Logf("%s N=%d: ttfb %v", rt.Name, n, time.Duration(batch[0].TTFBNS))
		}
	}
	assertNoSandboxes(t, ep, id)
}

func assertNoSandboxes(t *testing.T, ep, id string) {
	t.Helper()
	list := listSandboxes(t, ep, map[string]string{bench.LabelExperiment: id})
	if len(list) != 0 {
		t.Fatalf("%d sandboxes of experiment %s left behind", len(list), id)
	}
}

func listSandboxes(t *testing.T, ep string, sel map[string]string) []*runtimeapi.PodSandbox {
	t.Helper()
	c := criClient(t, ep)
	resp, err := c.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Items
}

// The checks (run's preflight, doctor) refuse what cannot work, before creating anything.
func TestPreflightRefusals(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.EndpointAlone(t)
	ctx := context.Background()
	before := len(listSandboxes(t, ep, nil))

	p, _ := node.New(ep, 0, testLog(t))
	defer p.Close()
	exp := experiment(ep, "runc", "no-such-handler")
	exp.CompleteAndValidate(false)
	err := bench.Failed(p.Checks(ctx, exp))
	if err == nil || !strings.Contains(err.Error(), `handler "no-such-handler" is not configured`) {
		t.Fatalf("unknown handler: %v", err)
	}
	exp = experiment(ep, "runc")
	exp.Spec.Runtimes[0].Image = "coldbench.local/absent:v0"
	exp.CompleteAndValidate(false)
	if err := bench.Failed(p.Checks(ctx, exp)); err == nil || !strings.Contains(err.Error(), `image "coldbench.local/absent:v0" is not in containerd`) {
		t.Fatalf("missing image: %v", err)
	}
	missing, _ := node.New("unix:///run/coldbench/nope.sock", 0, testLog(t))
	defer missing.Close()
	if err := bench.Failed(missing.Checks(ctx, experiment("unix:///run/coldbench/nope.sock", "runc"))); err == nil || !strings.Contains(err.Error(), "containerd socket /run/coldbench/nope.sock not found") {
		t.Fatalf("missing socket: %v", err)
	}
	if after := len(listSandboxes(t, ep, nil)); after != before {
		t.Fatalf("preflight created sandboxes: %d -> %d", before, after)
	}
}

// A run-time failure (the image exists in preflight's eyes but the handler
// breaks) is an attempt with a reason, and cleanup still happens.
func TestFailureIsRecorded(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	p, _ := node.New(ep, 0, testLog(t))
	defer p.Close()
	id := bench.NewExperimentID(time.Now())
	rt := bench.Runtime{Name: "ghost", Handler: "ghost", Image: bench.DefaultImage}
	batch := open(t, p, bench.Default(), id).ColdStart(context.Background(), bench.Cell{ExperimentID: id, Runtime: rt, Scale: 2, RequestTimeout: 10 * time.Second, ProbeInterval: 2 * time.Millisecond})
	if len(batch) != 2 {
		t.Fatalf("%d attempts", len(batch))
	}
	for _, a := range batch {
		if a.OK || a.ErrorClass != results.ErrRuntime || !strings.Contains(a.Error, "RunPodSandbox") {
			t.Errorf("want runtime failure, got %s: %s", a.ErrorClass, a.Error)
		}
	}
	assertNoSandboxes(t, ep, id)
}

// open opens p's session for experiment id; the test closes it.
func open(t *testing.T, p *node.Platform, exp *bench.Experiment, id string) bench.Session {
	t.Helper()
	s, err := p.Open(context.Background(), exp, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
