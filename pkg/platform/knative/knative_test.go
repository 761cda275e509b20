package knative

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

func TestServiceNameFitsKnative(t *testing.T) {
	// Knative derives "<svc>-00001-deployment" and "<svc>-00001-private":
	// the service name must stay within 63-17 = 46 characters.
	id := bench.NewExperimentID(time.Now())
	for _, c := range []struct{ rt, n, it, inst int }{{0, 1, 0, 0}, {99, 100000, 99999, 99999}, {3, 500, -10, 499}} {
		name := ServiceName(id, c.rt, c.n, c.it, c.inst)
		if len(name) > 46 || !strings.HasPrefix(name, "cb") {
			t.Errorf("%q: %d characters", name, len(name))
		}
		if strings.ContainsAny(name, "_.") || strings.ToLower(name) != name {
			t.Errorf("%q is not a DNS-1035 label", name)
		}
	}
	if a, b := ServiceName(id, 0, 4, -1, 0), ServiceName(id, 0, 4, 1, 0); a == b {
		t.Errorf("warm-up and iteration 1 share a name: %s", a)
	}
}

func TestBuildService(t *testing.T) {
	rt := bench.Runtime{Name: "kata-fc", Handler: "kata-fc", Image: "dev.local/coldbench/fn-go:v1", Annotations: map[string]string{"io.katacontainers.config.hypervisor.default_vcpus": "1"}}
	u := ServiceSpec{Name: "cbx-r0-n1-i0-0", Namespace: "coldbench", ExperimentID: "cb-1-abc", Cell: "r0-n1-i0", Runtime: rt, Window: "6s"}.Build()
	get := func(path ...string) string {
		v, _, _ := unstructured.NestedString(u.Object, path...)
		return v
	}
	if get("spec", "template", "spec", "runtimeClassName") != "kata-fc" {
		t.Error("runtimeClassName not set")
	}
	ann, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "annotations")
	if ann[AnnInitialScale] != "0" || ann[AnnWindow] != "6s" || ann["io.katacontainers.config.hypervisor.default_vcpus"] != "1" {
		t.Errorf("annotations %v", ann)
	}
	if _, ok := ann[AnnTarget]; ok {
		t.Error("target set although not asked for")
	}
	for _, path := range [][]string{{"metadata", "labels"}, {"spec", "template", "metadata", "labels"}} {
		l, _, _ := unstructured.NestedStringMap(u.Object, path...)
		if l[bench.LabelManagedBy] != bench.LabelManagedByVal || l[bench.LabelExperiment] != "cb-1-abc" || l[bench.LabelRuntime] != "kata-fc" {
			t.Errorf("labels at %v: %v", path, l)
		}
	}
	cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 || cs[0].(map[string]any)["image"] != rt.Image {
		t.Errorf("containers %v", cs)
	}
	// The default runtime has no runtimeClassName at all (the study's "").
	u = ServiceSpec{Name: "x", Runtime: bench.Runtime{Name: "default", Image: "i"}}.Build()
	if _, found, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "runtimeClassName"); found {
		t.Error("default runtime got a runtimeClassName")
	}
}

func TestReadServiceStatus(t *testing.T) {
	mk := func(status, reason string, gen, obs int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"generation": gen},
			"status": map[string]any{
				"observedGeneration": obs, "url": "http://fn.coldbench.example.com", "latestCreatedRevisionName": "fn-00001",
				"conditions": []any{map[string]any{"type": "Ready", "status": status, "reason": reason, "message": "m"}},
			},
		}}
	}
	if st := readServiceStatus(mk("True", "", 1, 1)); !st.Ready || st.Failed || st.Revision != "fn-00001" || st.URL == "" {
		t.Errorf("%+v", st)
	}
	if st := readServiceStatus(mk("True", "", 2, 1)); st.Ready {
		t.Error("stale status (observedGeneration < generation) counted as Ready")
	}
	if st := readServiceStatus(mk("False", "RevisionFailed", 1, 1)); st.Ready || !st.Failed || st.Reason != "RevisionFailed" {
		t.Errorf("%+v", st)
	}
	if c := classifyNotReady(serviceStatus{Message: `pods "x" is forbidden: RuntimeClass "kata" not found`}); c != results.ErrRuntime {
		t.Errorf("class %s", c)
	}
}

func TestDetectIngress(t *testing.T) {
	ctx := context.Background()
	netCM := func(class string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "config-network", Namespace: ServingNamespace}, Data: map[string]string{"ingress-class": class}}
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeInternalIP, Address: "10.1.2.3"}}}}
	kourierLB := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kourier", Namespace: "kourier-system"},
		Spec:   corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http2", Port: 80, NodePort: 31080}, {Name: "https", Port: 443}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}}}}
	traefikNP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "traefik-public", Namespace: "traefik", Labels: map[string]string{"app.kubernetes.io/name": "traefik"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20", Ports: []corev1.ServicePort{{Name: "web", Port: 80, NodePort: 30080}}}}
	istioCIP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway", Namespace: "istio-system"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.30", Ports: []corev1.ServicePort{{Name: "http2", Port: 80}}}}
	cases := []struct {
		name    string
		objs    []runtime.Object
		want    string
		layer   string
		wantErr string
	}{
		{"kourier load balancer", []runtime.Object{netCM("kourier.ingress.networking.knative.dev"), kourierLB, node}, "192.0.2.10:80", "kourier", ""},
		{"traefik nodeport", []runtime.Object{netCM("traefik.ingress.networking.knative.dev"), traefikNP, node, kourierLB}, "10.1.2.3:30080", "traefik", ""},
		{"istio cluster ip", []runtime.Object{netCM("istio.ingress.networking.knative.dev"), istioCIP}, "10.96.0.30:80", "istio", ""},
		{"no class: first found", []runtime.Object{traefikNP, node}, "10.1.2.3:30080", "traefik", ""},
		{"class without service", []runtime.Object{netCM("contour.ingress.networking.knative.dev"), kourierLB}, "", "", "pass --ingress HOST:PORT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kube := fake.NewClientset(c.objs...)
			in, err := DetectIngress(ctx, kube)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %+v, %v", in, err)
				}
				return
			}
			if err != nil || in.Address != c.want || in.Layer != c.layer {
				t.Fatalf("got %+v, %v; want %s via %s", in, err, c.want, c.layer)
			}
		})
	}
}

// Tracker: events in, phases out, relative to the attempt's start.
func TestTrackerView(t *testing.T) {
	tr := newTracker()
	clock := time.Unix(1000, 0)
	tr.now = func() time.Time { return clock }
	at := func(ms int) { clock = time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }
	rev := "fn-00001"
	zero, one := int32(0), int32(1)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: rev + "-deployment", Labels: map[string]string{LabelRevision: rev}}, Spec: appsv1.DeploymentSpec{Replicas: &zero}}
	at(-500)
	tr.onDeployment(dep) // born at zero, before the request
	t0 := time.Unix(1000, 0)
	at(40)
	dep2 := dep.DeepCopy()
	dep2.Spec.Replicas = &one
	tr.onDeployment(dep2)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fn-00001-deployment-abc", Labels: map[string]string{LabelRevision: rev}}}
	at(60)
	tr.onPod(pod, false)
	at(70)
	pod.Spec.NodeName = "n1"
	tr.onPod(pod, false)
	at(300)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: UserContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		{Name: QueueProxy, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
	}
	tr.onPod(pod, false)
	at(900)
	pod.Status.ContainerStatuses[0].Ready = true
	pod.Status.ContainerStatuses[1].Ready = true
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	tr.onPod(pod, false)

	v := tr.view(rev, t0)
	if v.pod != pod.Name || v.warmPod != "" || !v.podReady || v.failCls != "" {
		t.Fatalf("view %+v", v)
	}
	want := map[string]int64{PhaseDeploymentScaled: 40, PhasePodCreated: 60, PhasePodScheduled: 70, PhaseUserStarted: 300, PhaseQPStarted: 300, PhaseUserReady: 900, PhaseQPReady: 900, PhasePodReady: 900}
	got := map[string]int64{}
	var last int64 = -1
	for _, p := range v.phases {
		got[p.Name] = p.OffsetNS / 1e6
		if p.OffsetNS < last {
			t.Errorf("phases out of order: %+v", v.phases)
		}
		last = p.OffsetNS
	}
	for k, ms := range want {
		if got[k] != ms {
			t.Errorf("%s at %d ms, want %d", k, got[k], ms)
		}
	}
	// An attempt started after that pod exists is not cold.
	if v := tr.view(rev, time.Unix(1000, 0).Add(2*time.Second)); v.pod != "" || v.warmPod != pod.Name {
		t.Errorf("later attempt view %+v: want the existing pod flagged warm", v)
	}
	// Pod gone, then a new attempt: cold again, and live pods count drops.
	at(5000)
	tr.onPod(pod, true)
	if tr.livePods(rev) != 0 {
		t.Error("deleted pod still counted live")
	}
	if v := tr.view(rev, time.Unix(1006, 0)); v.warmPod != "" {
		t.Errorf("gone pod flagged warm: %+v", v)
	}
}

func TestTrackerFailures(t *testing.T) {
	tr := newTracker()
	t0 := time.Now()
	mk := func(name string, cs corev1.ContainerStatus) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelRevision: name}}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		tr.onPod(p, false)
	}
	mk("img", corev1.ContainerStatus{Name: UserContainer, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "no such image"}}})
	mk("crash", corev1.ContainerStatus{Name: UserContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}})
	unsched := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{LabelRevision: "ns"}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes"}}}}
	tr.onPod(unsched, false)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "rc-deployment", Labels: map[string]string{LabelRevision: "rc"}},
		Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: `pods "x" is forbidden: pod rejected: RuntimeClass "gvisor" not found`}}}}
	tr.onDeployment(dep)
	for rev, want := range map[string]string{"img": results.ErrImage, "crash": results.ErrCrashed, "ns": results.ErrNotScheduled, "rc": results.ErrRuntime} {
		if v := tr.view(rev, t0.Add(-time.Second)); v.failCls != want {
			t.Errorf("%s: class %q (%s), want %q", rev, v.failCls, v.failMsg, want)
		}
	}
}

func TestChecksWithFakes(t *testing.T) {
	ctx := context.Background()
	exp := bench.Default()
	exp.Spec.Platform = Name
	exp.Spec.Runtimes = bench.RuntimesFromNames([]string{"default", "runc", "kata-fc"}, "")
	exp.Spec.SetSection(Name, &Spec{Ingress: "127.0.0.1:1"})
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "config-features", Namespace: ServingNamespace}, Data: map[string]string{"kubernetes.podspec-runtimeclassname": "disabled"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "config-autoscaler", Namespace: ServingNamespace}, Data: map[string]string{"allow-zero-initial-scale": "true"}},
		&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "runc"}, Handler: "runc"},
	)
	kube.Resources = append(kube.Resources, &metav1.APIResourceList{GroupVersion: "serving.knative.dev/v1", APIResources: []metav1.APIResource{{Name: "services", Kind: "Service"}}})
	p := NewWithClients(exp, kube, nil, "https://fake", nil)
	checks := p.Checks(ctx, exp)
	byName := map[string]bench.Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	expect := map[string]bool{
		"Kubernetes API": true, "Knative Serving": true,
		"feature kubernetes.podspec-runtimeclassname": false,
		"allow-zero-initial-scale":                    true,
		"runtime default":                             true, "runtime runc": true, "runtime kata-fc": false,
		"ingress": false, // nothing listens on 127.0.0.1:1
	}
	for name, ok := range expect {
		c, found := byName[name]
		if !found {
			t.Errorf("no check %q in %+v", name, checks)
			continue
		}
		if c.OK != ok {
			t.Errorf("%s: ok=%v (%s), want %v", name, c.OK, c.Detail, ok)
		}
		if !c.OK && c.Fix == "" {
			t.Errorf("%s fails without a fix", name)
		}
	}
	err := bench.Failed(checks)
	if err == nil || !strings.Contains(err.Error(), `RuntimeClass "kata-fc" does not exist`) || !strings.Contains(err.Error(), "config-features") {
		t.Fatalf("Failed: %v", err)
	}
}

// The route check: the ingress's 404 means "not routed yet"; Knative's probe
// handler echoes the hash; a 200 without the echo is someone else answering.
func TestProbeRoute(t *testing.T) {
	var routed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !routed.Load() || r.Host != "fn.example" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get(probeHeader) != "probe" {
			t.Error("route probe reached the function as a normal request")
		}
		w.Header().Set(probeHashHeader, r.Header.Get(probeHashHeader))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	client := srv.Client()
	if code, err := probeRoute(context.Background(), client, addr, "fn.example"); err != nil || code != 404 {
		t.Fatalf("unrouted: %d %v", code, err)
	}
	routed.Store(true)
	if code, err := probeRoute(context.Background(), client, addr, "fn.example"); err != nil || code != 200 {
		t.Fatalf("routed: %d %v", code, err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	if _, err := probeRoute(context.Background(), client, strings.TrimPrefix(plain.URL, "http://"), "fn.example"); err == nil {
		t.Fatal("a 200 without the hash echo was taken for Knative's probe handler")
	}
}
