package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/knative"
	"github.com/coldbench/coldbench/pkg/results"
)

// lookalike is an object coldbench did not create, named or labelled like
// its own, that must survive run, resume and clean untouched.
type lookalike struct {
	what, ns, name string
	uid            types.UID
	get            func() (metav1.Object, error)
}

func (l *knativeLab) lookalikeKsvc(t *testing.T, ns, name string, labels map[string]string) lookalike {
	t.Helper()
	ctx := context.Background()
	lbl := map[string]any{}
	for k, v := range labels {
		lbl[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Service",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": lbl},
		"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"labels": lbl, "annotations": map[string]any{knative.AnnInitialScale: "0"}},
			"spec": map[string]any{"containers": []any{map[string]any{
				"image": "dev.local/coldbench/fn-go:v1", "ports": []any{map[string]any{"containerPort": int64(8080)}}}}},
		}},
	}}
	got, err := l.dyn.Resource(ksvcs).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating look-alike ksvc %s/%s: %v", ns, name, err)
	}
	return lookalike{what: "ksvc", ns: ns, name: name, uid: got.GetUID(), get: func() (metav1.Object, error) {
		return l.dyn.Resource(ksvcs).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	}}
}

// survived fails t for each look-alike that is gone, replaced or being
// deleted.
func survived(t *testing.T, when string, objs []lookalike) {
	t.Helper()
	for _, o := range objs {
		got, err := o.get()
		switch {
		case err != nil:
			t.Errorf("after %s: %s %s/%s: %v", when, o.what, o.ns, o.name, err)
		case got.GetUID() != o.uid:
			t.Errorf("after %s: %s %s/%s was deleted and re-created", when, o.what, o.ns, o.name)
		case got.GetDeletionTimestamp() != nil:
			t.Errorf("after %s: %s %s/%s is being deleted", when, o.what, o.ns, o.name)
		}
	}
}

// Safety: objects coldbench did not create survive run, resume and clean,
// however much they look like its own: a ksvc with a name of coldbench's
// pattern and app=coldbench in the namespace it is given, a ksvc with the
// very name a resumed run is about to use, a plain pod and a Deployment
// carrying coldbench's labels there, a ksvc with coldbench's labels in a
// namespace it was not given, and the lab's own probe ksvc (labelled
// managed-by=coldbench). A name coldbench wants that is taken is recorded as
// a failed attempt, never adopted.
func TestKnativeSafety(t *testing.T) {
	t.Parallel() // with the other lab tests that stop no daemon
	l := setupKnativeLab(t)
	ctx := context.Background()
	t0 := time.Now()
	ns := l.namespace(t, "cb-e2e-safe-")     // given to coldbench with -n
	other := l.namespace(t, "cb-e2e-other-") // never given
	managed := map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal}

	objs := []lookalike{
		l.lookalikeKsvc(t, ns, "cb000000-r0-n1-i1-0", map[string]string{"app": "coldbench"}),
		l.lookalikeKsvc(t, other, "cb000000-r0-n1-i1-0", map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: "cb-20260101t000000-000000", "app": "coldbench"}),
	}
	podLabels := map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, "app": "coldbench"}
	pod, err := l.kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cb000000-r0-n1-i1-0-00001-deployment-0", Labels: podLabels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pause", Image: "coldbench.local/pause:3.10"}},
			TerminationGracePeriodSeconds: new(int64)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, lookalike{what: "pod", ns: ns, name: pod.Name, uid: pod.UID, get: func() (metav1.Object, error) {
		return l.kube.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	}})
	zero := int32(0)
	dep, err := l.kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		// Named like a revision's Deployment, but of a ksvc that does not
		// exist: Knative creates cb000000-r0-n1-i1-0-00001-deployment itself
		// for the lookalike ksvc above, and a race for that name is no test.
		ObjectMeta: metav1.ObjectMeta{Name: "cb000000-r0-n1-i2-0-00001-deployment", Labels: managed},
		Spec: appsv1.DeploymentSpec{Replicas: &zero, Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pause", Image: "coldbench.local/pause:3.10"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, lookalike{what: "deployment", ns: ns, name: dep.Name, uid: dep.UID, get: func() (metav1.Object, error) {
		return l.kube.AppsV1().Deployments(ns).Get(context.Background(), dep.Name, metav1.GetOptions{})
	}})
	if probe, err := l.dyn.Resource(ksvcs).Namespace(namespace).Get(ctx, "probe", metav1.GetOptions{}); err == nil {
		objs = append(objs, lookalike{what: "ksvc", ns: namespace, name: "probe", uid: probe.GetUID(), get: func() (metav1.Object, error) {
			return l.dyn.Resource(ksvcs).Namespace(namespace).Get(context.Background(), "probe", metav1.GetOptions{})
		}})
	}

	// A run, stopped once its header is written; then a ksvc of someone
	// else takes the name its second iteration (1) will use.
	out := t.TempDir() + "/safe.jsonl"
	p := l.start(t, l.args(ns, "--runtimes", "runc", "--scales", "1", "--iterations", "2", "--warmups", "0", "-o", out)...)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if set, err := results.ReadFile(out); err == nil && len(set.Headers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no header after 2 min\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd.Process.Kill()
	<-p.done
	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	id := set.Headers[0].ExperimentID
	taken := knative.ServiceName(id, 0, 1, 1, 0) // iterations count from 0
	objs = append(objs, l.lookalikeKsvc(t, ns, taken, map[string]string{"app": "coldbench"}))

	// Iteration 1 fails (its name is taken): the run completes with a
	// failed attempt, exit status 3.
	o, err := execColdbench(l.bin, "run", "--resume", out, "--kubeconfig", l.kubeconfig, "--ingress", l.ingress)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("resume: %v, want exit status 3 (one attempt failed)\n%s", err, o)
	}
	survived(t, "run and resume", objs)
	set, err = results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Attempts) != 2 {
		t.Fatalf("%d attempts recorded, want 2\n%s", len(set.Attempts), o)
	}
	for _, a := range set.Attempts {
		t.Logf("recorded: iteration %d: ok=%v %s %s", a.Iteration, a.OK, a.ErrorClass, a.Error)
		switch a.Iteration {
		case 0:
			if !a.OK {
				t.Errorf("iteration 0: %s: %s", a.ErrorClass, a.Error)
			}
		case 1:
			if a.OK || a.ErrorClass != results.ErrPlatform || !strings.Contains(a.Error, "not created by this experiment") {
				t.Errorf("iteration 1 (its ksvc name taken): ok=%v %s: %s", a.OK, a.ErrorClass, a.Error)
			}
		}
	}

	// clean, of the experiment and of everything coldbench's in ns.
	for _, args := range [][]string{{"--experiment", id}, nil} {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		o, err := execColdbenchCtx(cctx, l.bin, append([]string{"clean", "--platform", "knative", "--kubeconfig", l.kubeconfig, "-n", ns}, args...)...)
		cancel()
		if err != nil {
			t.Fatalf("clean %v: %v\n%s", args, err, o)
		}
		if !strings.Contains(o, "removed 0 coldbench") {
			t.Errorf("clean %v removed something: %s", args, o)
		}
	}
	survived(t, "clean", objs)
	if s, r, p := l.leftovers(t, ns, id); s+r+p != 0 {
		t.Errorf("left behind: %d ksvcs, %d revisions, %d pods of %s", s, r, p, id)
	}
	if !t.Failed() {
		t.Logf("%d look-alikes survived run, resume and clean (%v)", len(objs), time.Since(t0).Round(time.Second))
	}
}
