package knative

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	"github.com/coldbench/coldbench/pkg/bench"
)

// A density run on the fake cluster: each step's services that answered
// stay with their pod, those that did not are deleted at once, and
// RemoveKept deletes the rest.
func TestDensityKeepsTheServicesThatAnsweredUntilRemoveKept(t *testing.T) {
	l := newLab(t, labOptions{density: &bench.DensitySpec{Step: 2, Max: 4},
		behave: secondCrashes})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for step := range 2 {
		out := l.s.Add(ctx, l.cell(2, step, 2*time.Second))
		if len(out) != 2 || !out[0].OK || out[1].OK {
			t.Fatalf("step %d: %+v, want instance 0 answered and 1 not", step, out)
		}
		if out[0].Step == nil || out[0].Step.SetupNS <= 0 {
			t.Errorf("step %d: no set-up time: %+v", step, out[0].Step)
		}
		if l.exists(l.name(2, step, 1)) {
			t.Errorf("step %d: the service that did not answer is still there", step)
		}
		if n, err := l.s.KeptRunning(ctx); err != nil || n != step+1 {
			t.Errorf("after step %d: KeptRunning = %d, %v; want %d", step, n, err, step+1)
		}
	}
	for step := range 2 {
		svc, err := l.svcs().Get(ctx, l.name(2, step, 0), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("kept service of step %d: %v", step, err)
		}
		ann, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "template", "metadata", "annotations")
		if got := ann[AnnPodRetention]; got != densityRetention.String() {
			t.Errorf("kept service of step %d: %s = %q, want %q", step, AnnPodRetention, got, densityRetention)
		}
	}
	if _, ok := l.s.MemAvailable(ctx); ok {
		t.Error("MemAvailable without a node agent: want none")
	}
	if err := l.s.RemoveKept(ctx); err != nil {
		t.Fatal(err)
	}
	l.checkGone(t, 2, 0)
	l.checkGone(t, 2, 1)
	if n, err := l.s.KeptRunning(ctx); err != nil || n != 0 {
		t.Errorf("after RemoveKept: KeptRunning = %d, %v; want 0", n, err)
	}
}

// A warm-up of a density run is an ordinary cell: its services carry no
// retention, and go after it.
func TestDensityWarmupsAreOrdinaryCells(t *testing.T) {
	l := newLab(t, labOptions{density: &bench.DensitySpec{Step: 1, Max: 2}})
	c := l.cell(1, -1, 2*time.Second)
	c.Warmup = true
	var seen map[string]string
	l.dyn.PrependReactor("create", "services", recordAnnotations(&seen))
	l.coldStart(c)
	if _, ok := seen[AnnPodRetention]; ok || seen == nil {
		t.Errorf("warm-up's service annotations %v: want no %s", seen, AnnPodRetention)
	}
	l.checkGone(t, 1, -1)
}

func TestValidateDensityOnKnative(t *testing.T) {
	for _, tc := range []struct {
		protocol string
		deadline time.Duration
		want     []string
	}{
		{ProtocolFresh, 30 * time.Minute, nil},
		{ProtocolFresh, maxDensityDeadline, nil},
		{ProtocolPool, 30 * time.Minute, []string{"spec.knative.protocol (--protocol)"}},
		{ProtocolFresh, 55 * time.Minute, []string{"spec.deadline (--deadline)", "at most 50m0s"}},
	} {
		var errs bench.Problems
		s := &bench.Spec{Deadline: bench.Duration{Duration: tc.deadline}}
		(&Spec{Protocol: tc.protocol}).ValidateDensity(&errs, s)
		got := strings.Join(errs, "\n")
		if (len(tc.want) == 0) != (len(errs) == 0) {
			t.Errorf("%s, %v: %q, want %q", tc.protocol, tc.deadline, got, tc.want)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s, %v: %q does not name %q", tc.protocol, tc.deadline, got, w)
			}
		}
	}
}

// recordAnnotations is a reactor that keeps the revision template's
// annotations of the last ksvc created in *seen, and lets the create go on.
func recordAnnotations(seen *map[string]string) clienttesting.ReactionFunc {
	return func(a clienttesting.Action) (bool, runtime.Object, error) {
		if u, ok := a.(clienttesting.CreateAction).GetObject().(*unstructured.Unstructured); ok {
			*seen, _, _ = unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "annotations")
		}
		return false, nil, nil
	}
}

// A kept pod whose container restarted (the OOM killer, a crash: the
// kubelet restarts it) is no longer the instance that was kept.
func TestDensityKeptRunningSkipsARestartedPod(t *testing.T) {
	l := newLab(t, labOptions{density: &bench.DensitySpec{Step: 2, Max: 4}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l.s.Add(ctx, l.cell(2, 0, 2*time.Second))
	if n, err := l.s.KeptRunning(ctx); err != nil || n != 2 {
		t.Fatalf("KeptRunning = %d, %v; want 2", n, err)
	}
	pods, err := l.kube.CoreV1().Pods(l.ns).List(ctx, metav1.ListOptions{LabelSelector: LabelService + "=" + l.name(2, 0, 1)})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of %s: %v, %v", l.name(2, 0, 1), pods, err)
	}
	p := pods.Items[0]
	p.Status.ContainerStatuses[0].RestartCount = 1
	if _, err := l.kube.CoreV1().Pods(l.ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := l.s.KeptRunning(ctx); err != nil || n != 1 {
		t.Errorf("after a restart: KeptRunning = %d, %v; want 1", n, err)
	}
}

// Interrupted while deleting a step's services that did not answer: they
// are deleted with the kept ones by RemoveKept, which runs with a context
// of its own.
func TestDensityInterruptedDeletionIsLeftToRemoveKept(t *testing.T) {
	l := newLab(t, labOptions{density: &bench.DensitySpec{Step: 2, Max: 4},
		behave: secondCrashes})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accept := l.interruptAtFirstDelete(cancel)
	t.Cleanup(accept)
	out := l.s.Add(ctx, l.cell(2, 0, 2*time.Second))
	if !out[0].OK || out[1].OK {
		t.Fatalf("%+v, want instance 0 answered and 1 not", out)
	}
	if !l.exists(l.name(2, 0, 1)) {
		t.Fatal("the failed service is gone: the interrupt came too late to test anything")
	}
	accept()
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	if err := l.s.RemoveKept(rctx); err != nil {
		t.Fatal(err)
	}
	l.checkGone(t, 2, 0)
}

// secondCrashes is a lab whose second instance of every cell crashes.
func secondCrashes(i int) behaviour {
	if i == 1 {
		return behaviour{podFailure: "crash"}
	}
	return behaviour{}
}
