package node_test

import (
	"context"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/results"
)

// aliveAtGather is a measurement that counts, when gathered, the cell's
// sandboxes still ready: what a footprint measurement needs to read.
type aliveAtGather struct {
	cri     runtimeapi.RuntimeServiceClient
	started []bench.Instance
	alive   int
}

func (m *aliveAtGather) Name() string { return "alive-at-gather" }

func (m *aliveAtGather) Start(_ context.Context, _ bench.Cell, instances []bench.Instance) error {
	m.started = instances
	return nil
}

func (m *aliveAtGather) Gather(ctx context.Context, cell bench.Cell, attempts []results.Attempt) {
	resp, err := m.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{bench.LabelExperiment: cell.ExperimentID},
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}})
	if err == nil {
		m.alive = len(resp.Items)
	}
	for i := range attempts {
		attempts[i].Phases = append(attempts[i].Phases, results.Phase{Name: "gathered", OffsetNS: int64(m.alive)})
	}
}

// A measurement registered by the node backend starts before the release
// with every instance, and is gathered after the replies while the
// sandboxes still run; what it adds is in the attempts; the teardown still
// follows.
func TestMeasurementSeesTheInstancesAlive(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	cri := criClient(t, ep)
	var m *aliveAtGather
	node.UseMeasurements(t, func() bench.Measurement { m = &aliveAtGather{cri: cri}; return m })

	p, err := node.New(ep, bench.DefaultPort, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	id := bench.NewExperimentID(time.Now())
	exp := bench.Default()
	sess, err := p.Open(ctx, exp, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	rt := bench.Runtime{Name: "runc", Handler: "runc", Image: bench.DefaultImage}
	out := sess.ColdStart(ctx, bench.Cell{ExperimentID: id, Runtime: rt, Scale: 2, RequestTimeout: 30 * time.Second, ProbeInterval: 2 * time.Millisecond})
	for i, a := range out {
		if !a.OK {
			t.Fatalf("attempt %d: %s: %s", i, a.ErrorClass, a.Error)
		}
		last := a.Phases[len(a.Phases)-1]
		if last.Name != "gathered" || last.OffsetNS != 2 {
			t.Errorf("attempt %d: last phase %+v, want gathered with 2 sandboxes alive", i, last)
		}
	}
	if len(m.started) != 2 || m.started[0].Name != "runc-n2-i0-0" || !m.started[1].Ready {
		t.Errorf("started with %+v", m.started)
	}
	left, err := cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{bench.LabelExperiment: id}}})
	if err != nil || len(left.Items) != 0 {
		t.Errorf("after the cell: %v sandboxes left (%v)", left, err)
	}
}
