package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// freeCPU is the CPU (millicores) the scheduler sees free on the lab's
// node with the most of it: allocatable minus the requests of the pods
// bound to it that are not over, each pod counted as the scheduler does
// (its containers' sum or its largest init container, plus overhead).
func (l *knativeLab) freeCPU(t *testing.T) (node string, free int64) {
	t.Helper()
	ctx := context.Background()
	nodes, err := l.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := l.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int64{}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		var sum, init int64
		for _, c := range p.Spec.Containers {
			sum += c.Resources.Requests.Cpu().MilliValue()
		}
		for _, c := range p.Spec.InitContainers {
			init = max(init, c.Resources.Requests.Cpu().MilliValue())
		}
		used[p.Spec.NodeName] += max(sum, init) + p.Spec.Overhead.Cpu().MilliValue()
	}
	free = -1
	for _, n := range nodes.Items {
		if f := n.Status.Allocatable.Cpu().MilliValue() - used[n.Name]; f > free {
			node, free = n.Name, f
		}
	}
	if node == "" {
		t.Fatal("the lab has no node")
	}
	return node, free
}

// holdCPU makes a pod in ns that requests all the CPU free on node, so that
// no pod asking for any CPU fits there until it goes; it returns the pod's
// name once the scheduler has bound it. The pods of the lab may change
// between the count and the binding: then it tries again.
func (l *knativeLab) holdCPU(t *testing.T, ns string) string {
	t.Helper()
	ctx := context.Background()
	pods := l.kube.CoreV1().Pods(ns)
	for try := 0; try < 5; try++ {
		node, free := l.freeCPU(t)
		if free <= 0 {
			t.Fatalf("node %s has no CPU free (%dm) before the test", node, free)
		}
		name := "cpu-hold-" + suffix()
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				NodeSelector:                  map[string]string{corev1.LabelHostname: node},
				TerminationGracePeriodSeconds: new(int64),
				Containers: []corev1.Container{{Name: "hold", Image: "dev.local/coldbench/fn-go:v1", ImagePullPolicy: corev1.PullNever,
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(free, resource.DecimalSI)}}}},
			}}
		if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pods.Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}) })
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Spec.NodeName != "" {
				t.Logf("pod %s holds the %dm of CPU free on node %s", name, free, node)
				return name
			}
			if unschedulable(p) != "" {
				break // the node's pods changed since the count: count again
			}
		}
		pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	}
	t.Fatal("could not hold the node's free CPU in 5 tries")
	return ""
}

// unschedulable is the scheduler's message for a pod it found no room
// for, or "".
func unschedulable(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Message
		}
	}
	return ""
}

// An attempt whose pod had to wait for room on the node (issue 14): a pod
// holds all the CPU free on the node, so the cold start's pod (its
// queue-proxy is made to request CPU) is unschedulable, "Insufficient cpu"; once the
// watch shows that, the holder goes a few seconds later and the pod is
// scheduled and answers. The record says it waited, why and about how
// long, and the report counts it. Not parallel: it fills the node, which
// would fail the other lab tests' pods too (Go runs the parallel tests
// after the sequential ones).
func TestKnativeAttemptThatWaitedForANode(t *testing.T) {
	l := setupKnativeLab(t)
	ctx := context.Background()
	holdNS := l.namespace(t, "cb-e2e-hold-")
	hold := l.holdCPU(t, holdNS)
	ns := "cb-e2e-" + suffix()
	t.Cleanup(func() { l.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	dir := t.TempDir()
	out := filepath.Join(dir, "waited.jsonl")
	// The lab's queue-proxy asks no CPU (room for 500 pods): this run's
	// asks 25m, Knative's default, through the revision's annotation.
	exp := filepath.Join(dir, "experiment.yaml")
	yaml := "apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nmetadata: {name: waited}\nspec:\n  platform: knative\n" +
		"  runtimes:\n    - name: runc\n      handler: runc\n      annotations: {queue.sidecar.serving.knative.dev/cpu-resource-request: 25m}\n" +
		"  scales: [1]\n  iterations: 1\n  warmups: 0\n"
	if err := os.WriteFile(exp, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := l.start(t, "run", "-f", exp, "--kubeconfig", l.kubeconfig, "--ingress", l.ingress, "-n", ns, "--timeout", "90s", "-o", out)

	const held = 3 * time.Second // the pod's wait is at least this
	var reason string
	for deadline := time.Now().Add(5 * time.Minute); reason == "" && time.Now().Before(deadline); {
		select {
		case <-p.done:
			t.Fatalf("coldbench ended before its pod was unschedulable (does the function's pod request no CPU?): %v\n%s\n%s", p.err, p.stdout.String(), p.stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		pods, err := l.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: bench.LabelExperiment})
		if err != nil {
			continue // the namespace may not exist yet
		}
		for i := range pods.Items {
			if m := unschedulable(&pods.Items[i]); m != "" {
				reason = m
				t.Logf("pod %s unschedulable: %s", pods.Items[i].Name, m)
			}
		}
	}
	if !strings.Contains(reason, "Insufficient cpu") {
		t.Fatalf("no pod of the run unschedulable for Insufficient cpu (last reason %q)\n%s", reason, p.stderr.String())
	}
	time.Sleep(held)
	if err := l.kube.CoreV1().Pods(holdNS).Delete(ctx, hold, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("deleting the CPU holder %s/%s: %v", holdNS, hold, err)
	}
	if err := p.wait(t, 5*time.Minute); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, p.stdout.String(), p.stderr.String())
	}

	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Attempts) != 1 {
		t.Fatalf("%d attempts, want 1", len(set.Attempts))
	}
	a := set.Attempts[0]
	u := a.Unschedulable
	if !a.OK || u == nil || !u.Scheduled || !strings.Contains(u.Reason, "Insufficient") ||
		u.WaitNS < held.Nanoseconds() || u.WaitNS > a.TTFBNS {
		t.Fatalf("attempt ok=%v %s %s, waited %+v: want an answer after a wait of ≥ %v (and within its TTFB %v) for Insufficient cpu",
			a.OK, a.ErrorClass, a.Error, u, held, time.Duration(a.TTFBNS))
	}
	scheduled, _ := a.PhaseOffset("pod_scheduled")
	created, _ := a.PhaseOffset("pod_created")
	if time.Duration(u.WaitNS) > scheduled-created {
		t.Errorf("waited %v, longer than pod_created → pod_scheduled (%v)", time.Duration(u.WaitNS), scheduled-created)
	}
	t.Logf("recorded: waited %v for %q; ttfb %v", time.Duration(u.WaitNS), u.Reason, time.Duration(a.TTFBNS))

	o, err := execColdbench(l.bin, "report", "--format", "json", out)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, o)
	}
	var rep struct {
		Rows []struct {
			Waited *struct{ Attempts, Answered int } `json:"waited_for_node"`
		}
	}
	if err := json.Unmarshal([]byte(o), &rep); err != nil {
		t.Fatalf("report json: %v\n%s", err, o)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Waited == nil || rep.Rows[0].Waited.Attempts != 1 || rep.Rows[0].Waited.Answered != 1 {
		t.Errorf("report does not count the attempt that waited for a node:\n%s", o)
	}
	if o, err := execColdbench(l.bin, "report", out); err != nil || !strings.Contains(o, "WAITED FOR A NODE") || !strings.Contains(o, "1 (1)") {
		t.Errorf("table report: %v\n%s", err, o)
	}
}
