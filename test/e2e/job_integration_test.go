package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/knative"
	"github.com/coldbench/coldbench/pkg/results"
)

// manifestGVR is the resource of each kind deploy/ holds, and whether it is
// namespaced.
var manifestGVR = map[string]struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}{
	"Namespace":          {schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
	"ServiceAccount":     {schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, true},
	"Role":               {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, true},
	"RoleBinding":        {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, true},
	"ClusterRole":        {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, false},
	"ClusterRoleBinding": {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, false},
	"Job":                {schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, true},
}

// loadManifests decodes every object of the YAML files (paths from the
// checkout's root).
func loadManifests(t *testing.T, paths ...string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, p := range paths {
		f, err := os.Open(filepath.Join(testenv.RepoRoot(), p))
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(f), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
		f.Close()
	}
	return objs
}

// rename puts the manifests into namespace ns: every string that is exactly
// "coldbench" (the namespace, and the names of the ServiceAccount, roles,
// bindings and Job) becomes ns, and so does the Job's --namespace; the node
// agents' namespace "coldbench-system" becomes ns-system. It returns how
// many values it changed.
func rename(v any, ns string) (any, int) {
	switch x := v.(type) {
	case string:
		switch x {
		case "coldbench":
			return ns, 1
		case "coldbench-system":
			return ns + "-system", 1
		case "--namespace=coldbench":
			return "--namespace=" + ns, 1
		}
	case map[string]any:
		n := 0
		for k, e := range x {
			var c int
			x[k], c = rename(e, ns)
			n += c
		}
		return x, n
	case []any:
		n := 0
		for i, e := range x {
			var c int
			x[i], c = rename(e, ns)
			n += c
		}
		return x, n
	}
	return v, 0
}

// The in-cluster study: deploy/rbac.yaml and deploy/job.yaml as they are
// (put into a namespace of the test's own), coldbench's image built by its
// own builder and imported into the lab, and a small experiment (runc, N = 1,
// 2 iterations) run as that Job with exactly those rights, the ingress found
// by coldbench's detection from inside the cluster. The Job must succeed and
// its log must hold the report and every attempt's record.
func TestKnativeInClusterJob(t *testing.T) {
	t.Parallel() // with the other lab tests that stop no daemon
	l := setupKnativeLab(t)
	ctx := context.Background()
	t0 := time.Now()
	l.importImage(t, "coldbench", "coldbench.local/coldbench:v1")
	tImage := time.Since(t0)

	ns := "cb-e2e-job-" + suffix()
	objs := loadManifests(t, "deploy/rbac.yaml", "deploy/job.yaml")
	var job *unstructured.Unstructured
	renamed := 0
	for _, o := range objs {
		_, n := rename(o.Object, ns)
		renamed += n
		if o.GetKind() == "Job" {
			job = o
		}
	}
	if job == nil {
		t.Fatal("deploy/job.yaml holds no Job")
	}
	if a, _, _ := unstructured.NestedSlice(job.Object, "spec", "template", "spec", "containers"); len(a) != 1 || !strings.Contains(fmt.Sprint(a), "--namespace="+ns) {
		t.Fatalf("the Job's container does not run in namespace %s after renaming (%d values renamed): %v", ns, renamed, a)
	}
	for _, o := range objs {
		m, ok := manifestGVR[o.GetKind()]
		if !ok {
			t.Fatalf("deploy/: unexpected kind %s", o.GetKind())
		}
		var r interface {
			Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
			Delete(context.Context, string, metav1.DeleteOptions, ...string) error
		} = l.dyn.Resource(m.gvr)
		if m.namespaced {
			r = l.dyn.Resource(m.gvr).Namespace(o.GetNamespace())
		}
		if _, err := r.Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		name := o.GetName()
		t.Cleanup(func() {
			bg := metav1.DeletePropagationBackground
			r.Delete(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: &bg})
		})
	}

	// Exactly those rights: what a run needs, and nothing around it.
	user := "system:serviceaccount:" + ns + ":" + ns
	for _, c := range []struct {
		allowed                          bool
		verb, group, resource, name, nsp string
	}{
		{true, "create", "serving.knative.dev", "services", "", ns},
		{true, "watch", "", "pods", "", ns},
		{true, "list", "", "events", "", ns}, // a pod stuck terminating: the kubelet's events
		{false, "list", "", "events", "", "default"},
		{false, "create", "", "events", "", ns},
		{true, "get", "", "configmaps", "config-features", "knative-serving"},
		{true, "get", "", "namespaces", ns, ""},
		{false, "create", "", "namespaces", "", ""},
		{false, "get", "", "namespaces", "default", ""},
		{false, "delete", "", "pods", "", ns},
		{false, "list", "", "secrets", "", ns},
		{false, "create", "serving.knative.dev", "services", "", "default"},
		{false, "delete", "serving.knative.dev", "services", "probe", namespace},
		{false, "patch", "", "configmaps", "config-autoscaler", "knative-serving"},
		{false, "get", "", "configmaps", "config-logging", "knative-serving"},
		{false, "list", "", "services", "", ""},
		{false, "delete", "", "nodes", "", ""},
		// The node agents (deploy/agent.yaml): found and read through the
		// pod proxy in their namespace only, GETs only.
		{true, "list", "", "pods", "", ns + "-system"},
		{true, "get", "", "pods/proxy", "coldbench-agent-x1y2z", ns + "-system"},
		{false, "create", "", "pods/proxy", "coldbench-agent-x1y2z", ns + "-system"},
		{false, "get", "", "pods/proxy", "", ns},
		{false, "get", "", "pods/proxy", "", "knative-serving"},
		{false, "delete", "", "pods", "", ns + "-system"},
		{false, "create", "", "pods/exec", "", ns + "-system"},
		{false, "list", "", "secrets", "", ns + "-system"},
		{false, "get", "", "nodes/proxy", "", ""},
	} {
		// resource/subresource, as RBAC writes them.
		resource, sub, _ := strings.Cut(c.resource, "/")
		r, err := l.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Verb: c.verb, Group: c.group, Resource: resource, Subresource: sub, Name: c.name, Namespace: c.nsp},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != c.allowed {
			t.Errorf("%s %s.%s %q in %q: allowed=%v, want %v", c.verb, c.resource, c.group, c.name, c.nsp, r.Status.Allowed, c.allowed)
		}
	}

	// The Job.
	var st batchv1.JobStatus
	deadline := time.Now().Add(6 * time.Minute)
	for {
		j, err := l.kube.BatchV1().Jobs(ns).Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st = j.Status
		if st.Succeeded > 0 || st.Failed > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	pods, err := l.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + ns})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the Job's pods: %v, %d", err, len(pods.Items))
	}
	logs, err := l.kube.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("the Job's log: %v", err)
	}
	if st.Succeeded != 1 {
		t.Fatalf("Job %s/%s: succeeded %d, failed %d (pod %s)\n%s", ns, ns, st.Succeeded, st.Failed, pods.Items[0].Status.Phase, logs)
	}

	// Its records, from its log.
	var jsonl strings.Builder
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.HasPrefix(line, `{"type":`) {
			jsonl.WriteString(line + "\n")
		}
	}
	set, err := results.Read(strings.NewReader(jsonl.String()))
	if err != nil {
		t.Fatalf("records in the log: %v\n%s", err, logs)
	}
	if len(set.Headers) != 1 || len(set.Attempts) != 2 || len(set.Warnings) > 0 {
		t.Fatalf("log holds %d headers, %d attempts (want 1, 2), warnings %v\n%s", len(set.Headers), len(set.Attempts), set.Warnings, logs)
	}
	h := set.Headers[0]
	var exp bench.Experiment
	if b, err := json.Marshal(h.Experiment); err != nil || json.Unmarshal(b, &exp) != nil {
		t.Fatalf("experiment in the header: %v", h.Experiment)
	}
	if k := knative.SpecOf(&exp); k == nil || k.Namespace != ns || k.Kubeconfig != "" {
		t.Errorf("experiment as run: %+v", knative.SpecOf(&exp))
	}
	if in := h.Testbed.PlatformVersion["ingress"]; !strings.Contains(in, "traefik") || !strings.Contains(in, "ClusterIP") {
		t.Errorf("ingress in the header: %q, want traefik's ClusterIP, detected in the cluster", in)
	}
	seen := map[int]bool{}
	for _, a := range set.Attempts {
		if !a.OK || a.Cold.Pod == "" {
			t.Errorf("attempt %d: ok=%v %s: %s (pod %q)", a.Iteration, a.OK, a.ErrorClass, a.Error, a.Cold.Pod)
		}
		seen[a.Iteration] = true
	}
	if !seen[0] || !seen[1] {
		t.Errorf("iterations recorded: %v", seen)
	}
	if !strings.Contains(string(logs), "RUNTIME") || !strings.Contains(string(logs), "this session: 2 attempts, 0 failed") {
		t.Errorf("no report in the log:\n%s", logs)
	}
	if s, r, p := l.leftovers(t, ns, h.ExperimentID); s+r+p != 0 {
		t.Errorf("left behind: %d ksvcs, %d revisions, %d pods", s, r, p)
	}
	t.Logf("Job %s succeeded: 2/2 attempts in its log, ingress %s; image build+import %v, total %v",
		ns, h.Testbed.PlatformVersion["ingress"], tImage.Round(time.Second), time.Since(t0).Round(time.Second))
}
