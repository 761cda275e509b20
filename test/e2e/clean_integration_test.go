package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/coldbench/coldbench/pkg/bench"
)

// Clean on the lab, caught where a killed run can leave it: services of an
// experiment just created, their ReplicaSets made but not their pods yet (a
// ResourceQuota of 0 pods holds them in that state). When `coldbench clean` returns, nothing that could still make a pod
// may be left (no ksvc, revision, Deployment, ReplicaSet or pod of the
// experiment): a resumed run re-creates those very service names, and a pod
// made after the clean would answer its "cold" request (the kill test saw
// it once, recorded as not_cold).
func TestKnativeCleanLeavesNothingThatMakesPods(t *testing.T) {
	t.Parallel() // with the other lab tests that stop no daemon
	l := setupKnativeLab(t)
	ns := l.namespace(t, "cb-e2e-clean-")
	id := bench.NewExperimentID(time.Now())
	sel := bench.LabelExperiment + "=" + id
	labels := map[string]any{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: id}
	ctx := context.Background()
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "no-pods-yet"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}}
	if _, err := l.kube.CoreV1().ResourceQuotas(ns).Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "serving.knative.dev/v1", "kind": "Service",
			"metadata": map[string]any{"name": fmt.Sprintf("cb-clean-%d", i), "namespace": ns, "labels": labels},
			"spec": map[string]any{"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{
					"image": "dev.local/coldbench/fn-go:v1", "ports": []any{map[string]any{"containerPort": int64(8080)}}}}},
			}},
		}}
		if _, err := l.dyn.Resource(ksvcs).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		rs, err := l.kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs.Items) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ReplicaSets made for the 3 services within 3 minutes", len(rs.Items))
		}
		time.Sleep(100 * time.Millisecond)
	}
	pods, err := l.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clean with %d pod(s) made", len(pods.Items))
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	if o, err := execColdbenchCtx(cctx, l.bin, "clean", "--platform", "knative", "--kubeconfig", l.kubeconfig, "-n", ns); err != nil {
		t.Fatalf("clean: %v\n%s", err, o)
	}
	took := time.Since(t0)
	s, r, p := l.leftovers(t, ns, id)
	d, err := l.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := l.kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	if s+r+p+len(d.Items)+len(rs.Items) != 0 {
		t.Errorf("after clean: %d ksvcs, %d revisions, %d Deployments, %d ReplicaSets, %d pods of the experiment left",
			s, r, len(d.Items), len(rs.Items), p)
	}
	t.Logf("clean took %v", took.Round(time.Millisecond))
}
