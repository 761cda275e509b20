// Package e2e holds end-to-end tests that run against the lab (lab/up.sh): a
// real Kubernetes + Knative Serving + Traefik on this machine.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/coldbench/coldbench/internal/testenv"
)

const (
	namespace   = "coldbench-lab" // made by lab/up.sh
	image       = "coldbench.local/fn-go:v1"
	wantBody    = "coldbench: hello from go-static"
	managedBy   = "app.kubernetes.io/managed-by"
	managedByV  = "coldbench"
	serviceKey  = "serving.knative.dev/service"
	readyWait   = 3 * time.Minute
	requestWait = 90 * time.Second
)

var (
	ksvcGVR = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}
	podGVR  = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// TestLabColdStartPerRuntimeClass creates, per RuntimeClass, a Knative Service
// with initial-scale 0, checks it is Ready with no pod, sends one GET through
// Traefik with its Host header, and checks the function's body and that a new
// pod (with that RuntimeClass) was started for the request: a cold start.
func TestLabColdStartPerRuntimeClass(t *testing.T) {
	testenv.Integration(t)
	lab := testenv.LabEnv(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", lab.Kubeconfig)
	if err != nil {
		t.Fatalf("lab kubeconfig %s: %v", lab.Kubeconfig, err)
	}
	cfg.Timeout = 30 * time.Second
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := dyn.Resource(ksvcGVR).Namespace(namespace).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		testenv.MissingLab(t, fmt.Sprintf("a running lab answering on %s (listing Knative Services: %v)", cfg.Host, err))
	}

	for _, rc := range []string{"runc", "crun", "gvisor"} {
		t.Run(rc, func(t *testing.T) { coldStart(ctx, t, dyn, lab, rc) })
	}
}

func coldStart(ctx context.Context, t *testing.T, dyn dynamic.Interface, lab testenv.Lab, runtimeClass string) {
	name := "e2e-" + runtimeClass + "-" + randomSuffix()
	ksvcs := dyn.Resource(ksvcGVR).Namespace(namespace)
	pods := dyn.Resource(podGVR).Namespace(namespace)
	podSel := metav1.ListOptions{LabelSelector: serviceKey + "=" + name}

	ksvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1",
		"kind":       "Service",
		"metadata": map[string]any{
			"name":      name,
			"namespace": namespace,
			"labels":    map[string]any{managedBy: managedByV},
		},
		"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{
				"labels":      map[string]any{managedBy: managedByV},
				"annotations": map[string]any{"autoscaling.knative.dev/initial-scale": "0"},
			},
			"spec": map[string]any{
				"runtimeClassName": runtimeClass,
				"containers": []any{map[string]any{
					"image": image,
					"ports": []any{map[string]any{"containerPort": int64(8080)}},
					"securityContext": map[string]any{
						"allowPrivilegeEscalation": false,
						"runAsNonRoot":             true,
						"capabilities":             map[string]any{"drop": []any{"ALL"}},
						"seccompProfile":           map[string]any{"type": "RuntimeDefault"},
					},
				}},
			},
		}},
	}}
	if _, err := ksvcs.Create(ctx, ksvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ksvc %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		fg := metav1.DeletePropagationForeground
		if err := ksvcs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
			t.Errorf("deleting ksvc %s: %v", name, err)
		}
	})

	// Ready with no pod: defined but not provisioned.
	var svcURL string
	deadline := time.Now().Add(readyWait)
	for {
		got, err := ksvcs.Get(ctx, name, metav1.GetOptions{})
		if err == nil && conditionTrue(got, "Ready") {
			svcURL, _, _ = unstructured.NestedString(got.Object, "status", "url")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ksvc %s not Ready after %v (last error %v, conditions %v)", name, readyWait, err, conditions(got))
		}
		time.Sleep(500 * time.Millisecond)
	}
	u, err := url.Parse(svcURL)
	if err != nil || u.Host == "" {
		t.Fatalf("ksvc %s: bad status.url %q", name, svcURL)
	}
	if want := name + "." + namespace + "." + lab.Domain; u.Host != want {
		t.Errorf("ksvc host %q, want %q", u.Host, want)
	}
	before, err := pods.List(ctx, podSel)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(before.Items); n != 0 {
		t.Fatalf("ksvc %s is Ready with initial-scale 0 but has %d pod(s): not a cold start", name, n)
	}

	// A service can be Ready a moment before the ingress routes it (Traefik
	// applies its routers, kube-proxy its rules, just after): wait, untimed,
	// with Knative's own network probe, which the activator answers without
	// waking the function.
	client := &http.Client{Timeout: requestWait}
	probeDeadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, lab.Ingress+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = u.Host
		req.Header.Set("K-Network-Probe", "activator") // the value the activator answers
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(probeDeadline) {
			t.Fatalf("the ingress does not route %s after 60s (last: %v)", u.Host, statusOrErr(resp, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, err := pods.List(ctx, podSel); err != nil || len(n.Items) != 0 {
		t.Fatalf("ksvc %s has a pod before its first request (probing must not wake it): %v", name, err)
	}

	// One request through the ingress, with the ksvc's Host header.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, lab.Ingress+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = u.Host
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", lab.Ingress, u.Host, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), wantBody) {
		t.Fatalf("GET via ingress (Host %s): status %d, body %q; want 200 and %q", u.Host, resp.StatusCode, body, wantBody)
	}
	t.Logf("%s: cold start through Traefik answered in %v", runtimeClass, elapsed.Round(time.Millisecond))

	// The request made a new pod, of the asked RuntimeClass.
	after, err := pods.List(ctx, podSel)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Items) == 0 {
		t.Fatalf("no pod for ksvc %s after the request: the reply did not come from a cold start", name)
	}
	for _, p := range after.Items {
		created := p.GetCreationTimestamp().Time
		// Creation timestamps have one-second resolution.
		if created.Before(start.Add(-time.Second)) {
			t.Errorf("pod %s was created at %v, before the request at %v", p.GetName(), created, start)
		}
		if rc, _, _ := unstructured.NestedString(p.Object, "spec", "runtimeClassName"); rc != runtimeClass {
			t.Errorf("pod %s has runtimeClassName %q, want %q", p.GetName(), rc, runtimeClass)
		}
		if v := p.GetLabels()[managedBy]; v != managedByV {
			t.Errorf("pod %s: label %s=%q, want %q", p.GetName(), managedBy, v, managedByV)
		}
	}
}

func statusOrErr(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return m["status"] == "True"
		}
	}
	return false
}

func conditions(u *unstructured.Unstructured) string {
	if u == nil {
		return "none"
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var parts []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		parts = append(parts, fmt.Sprintf("%v=%v(%v: %v)", m["type"], m["status"], m["reason"], m["message"]))
	}
	return strings.Join(parts, "; ")
}

func randomSuffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}
