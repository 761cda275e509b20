package knative

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/coldbench/coldbench/pkg/agent"
	"github.com/coldbench/coldbench/pkg/bench"
)

// fakeAPI is an API server as far as the node agents go: it lists the
// agent pods and nodes, and serves the pod proxy
// (/api/v1/namespaces/NS/pods/[http:]NAME:PORT/proxy/PATH) from fake agents.
type fakeAPI struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	agents  []corev1.Pod
	nodes   []corev1.Node
	fakes   map[string]*fakeAgent // by agent pod name
	listErr int                   // non-zero: the agents' list answers this status
	// summaries answer the kubelet's Summary API of a node, the k-th
	// request with the k-th (the last once they run out); none: 404.
	summaries map[string][][]byte
}

// fakeAgent answers as pkg/agent does, from what the test sets.
type fakeAgent struct {
	mu     sync.Mutex
	uids   [][]string // of each /v1/events request, in order
	status int        // non-zero: every request answers this, with body
	body   string
	state  agent.State
	pods   map[string]agent.Pod
	// heldFrom: a uid is held from that request on (counting every
	// /v1/events request from 0): its events reached the agent late.
	heldFrom map[string]int
	// nodeTime is the node's clock at the answer to request j (nil: now).
	nodeTime func(j int) int64
	// footprint answers the j-th /v1/footprint request (nil: 404).
	footprint  func(j int, uids []string, memory bool) agent.FootprintResponse
	footprints int
	// cpu answers the j-th /v1/cpu request, its query q (nil: 404, as an
	// agent older than /v1/cpu); cpuQueries are the queries so far.
	cpu        func(j int, q url.Values) agent.CPUResponse
	cpuQueries []url.Values
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, fakes: map[string]*fakeAgent{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// kube is a real clientset talking to f.
func (f *fakeAPI) kube() kubernetes.Interface {
	k, err := kubernetes.NewForConfig(&rest.Config{Host: f.srv.URL, QPS: -1})
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// addAgent runs a fake agent on node, Ready and subscribed.
func (f *fakeAPI) addAgent(node string) *fakeAgent {
	name := "coldbench-agent-" + node
	pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: AgentNamespace,
		Labels: map[string]string{"app.kubernetes.io/name": "coldbench-agent"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "agent",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	fa := &fakeAgent{pods: map[string]agent.Pod{}, heldFrom: map[string]int{},
		state: agent.State{Subscription: agent.Subscription{Healthy: true, SinceUnixNS: time.Now().Add(-time.Hour).UnixNano()},
			Window: agent.WindowState{MaxEvents: 16384, MaxAgeNS: int64(10 * time.Minute)}}}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agents = append(f.agents, pod)
	f.fakes[name] = fa
	return fa
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	const podsPath = "/api/v1/namespaces/" + AgentNamespace + "/pods"
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == podsPath:
		if f.listErr != 0 {
			writeStatus(w, f.listErr, "pods is forbidden: User \"x\" cannot list resource \"pods\" in the namespace \""+AgentNamespace+"\"")
			return
		}
		sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
		if err != nil || sel.String() != AgentSelector {
			f.t.Errorf("agents listed with selector %q, want %q", r.URL.Query().Get("labelSelector"), AgentSelector)
		}
		writeJSON(w, &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: f.agents})
	case strings.HasPrefix(r.URL.Path, "/api/v1/nodes/") && strings.HasSuffix(r.URL.Path, "/proxy/stats/summary"):
		node := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/nodes/"), "/proxy/stats/summary")
		bodies := f.summaries[node]
		if len(bodies) == 0 {
			writeStatus(w, http.StatusNotFound, "nodes \""+node+"\" not found")
			return
		}
		body := bodies[0]
		if len(bodies) > 1 {
			f.summaries[node] = bodies[1:]
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	case r.URL.Path == "/api/v1/nodes":
		writeJSON(w, &corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, Items: f.nodes})
	case strings.HasPrefix(r.URL.Path, podsPath+"/") && strings.Contains(r.URL.Path, "/proxy/"):
		target, path, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, podsPath+"/"), "/proxy")
		name := strings.TrimSuffix(strings.TrimPrefix(target, "http:"), ":8080")
		fa := f.fakes[name]
		if fa == nil || name == target {
			writeStatus(w, http.StatusServiceUnavailable, "no endpoints available for pod "+target)
			return
		}
		if path == "/v1/footprint" {
			fa.serveFootprint(w, r.URL.Query()["uid"], r.URL.Query().Get("memory") == "1")
			return
		}
		if path == "/v1/cpu" {
			fa.serveCPU(w, r.URL.Query())
			return
		}
		fa.serve(w, path, r.URL.Query()["uid"])
	default:
		writeStatus(w, http.StatusNotFound, "not served by the fake: "+r.URL.Path)
	}
}

func (fa *fakeAgent) serve(w http.ResponseWriter, path string, uids []string) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if fa.status != 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(fa.status)
		fmt.Fprintln(w, fa.body)
		return
	}
	switch path {
	case "/healthz":
		if !fa.state.Subscription.Healthy {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not subscribed to containerd's events: %s\n", fa.state.Subscription.Reason)
			return
		}
		fmt.Fprintln(w, "ok: subscribed to containerd's events in namespace k8s.io since 2026-11-26T05:00:00Z")
	case "/v1/events":
		j := len(fa.uids)
		fa.uids = append(fa.uids, slices.Clone(uids))
		resp := agent.EventsResponse{Agent: fa.state, Pods: []agent.Pod{}, NodeTimeUnixNS: time.Now().UnixNano()}
		if fa.nodeTime != nil {
			resp.NodeTimeUnixNS = fa.nodeTime(j)
		}
		for _, u := range uids {
			if p, ok := fa.pods[u]; ok && j >= fa.heldFrom[u] {
				resp.Pods = append(resp.Pods, p)
			} else {
				resp.Unknown = append(resp.Unknown, u)
			}
		}
		writeJSON(w, &resp)
	default:
		http.NotFound(w, nil)
	}
}

func (fa *fakeAgent) serveFootprint(w http.ResponseWriter, uids []string, memory bool) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if fa.status != 0 || fa.footprint == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(cmp.Or(fa.status, http.StatusNotFound))
		fmt.Fprintln(w, fa.body)
		return
	}
	resp := fa.footprint(fa.footprints, uids, memory)
	fa.footprints++
	writeJSON(w, &resp)
}

func (fa *fakeAgent) serveCPU(w http.ResponseWriter, q url.Values) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if fa.status != 0 || fa.cpu == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(cmp.Or(fa.status, http.StatusNotFound))
		fmt.Fprintln(w, cmp.Or(fa.body, "404 page not found"))
		return
	}
	resp := fa.cpu(len(fa.cpuQueries), q)
	fa.cpuQueries = append(fa.cpuQueries, q)
	writeJSON(w, &resp)
}

// cpuRequests are the queries of every /v1/cpu request so far.
func (fa *fakeAgent) cpuRequests() []url.Values {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return slices.Clone(fa.cpuQueries)
}

// requests are the uids of every /v1/events request so far.
func (fa *fakeAgent) requests() [][]string {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return slices.Clone(fa.uids)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeStatus answers as the API server does when it refuses.
func writeStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(&metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusFailure, Message: msg, Code: int32(code)})
}

// deploy/agent.yaml runs the agents where coldbench looks for them: in
// AgentNamespace, labelled for AgentSelector, on a port named http.
func TestAgentManifestMatchesWhereColdbenchLooks(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds *appsv1.DaemonSet
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		var d appsv1.DaemonSet
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatal(err)
		}
		if d.Kind == "DaemonSet" {
			ds = &d
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet in deploy/agent.yaml")
	}
	sel, err := labels.Parse(AgentSelector)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: ds.Spec.Template.ObjectMeta, Spec: ds.Spec.Template.Spec}
	if ds.Namespace != AgentNamespace || !sel.Matches(labels.Set(pod.Labels)) || agentPort(pod) != "8080" {
		t.Errorf("DaemonSet in %q, pods labelled %v, port %s: want namespace %q, %s, port http 8080",
			ds.Namespace, pod.Labels, agentPort(pod), AgentNamespace, AgentSelector)
	}
}

// The doctor's node agent checks: one per Ready node, ok where a healthy
// agent answers, a warning (never a failure) where none runs or it is not
// healthy, with why and the fix; a cluster whose agents coldbench may not
// list is one warning.
func TestChecksNodeAgents(t *testing.T) {
	api := newFakeAPI(t)
	node := func(name string, ready corev1.ConditionStatus) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
	}
	api.nodes = []corev1.Node{node("n1", corev1.ConditionTrue), node("n2", corev1.ConditionTrue), node("n3", corev1.ConditionTrue), node("n4", corev1.ConditionFalse)}
	api.addAgent("n1")
	api.addAgent("n2").state.Subscription = agent.Subscription{Reason: "containerd event stream lost: EOF"}
	p := &Platform{kube: api.kube()}
	got := p.checkAgents(context.Background())
	want := []struct {
		name, detail string
		warn         bool
	}{
		{"node agent on n1", "coldbench-agent-n1: ok: subscribed to containerd's events in namespace k8s.io since 2026-11-26T05:00:00Z", false},
		{"node agent on n2", "node agent coldbench-agent-n2 is not healthy: GET /healthz of coldbench-system/coldbench-agent-n2 through the API server's proxy: " +
			"the server is currently unable to handle the request (get pods http:coldbench-agent-n2:8080): not subscribed to containerd's events: containerd event stream lost: EOF: " +
			"runtime phases will be missing on this node", true},
		{"node agent on n3", "no node agent runs on node n3: runtime phases will be missing; deploy deploy/agent.yaml", true},
	}
	if len(got) != len(want) {
		t.Fatalf("checks %+v, want one per Ready node", got)
	}
	for i, w := range want {
		c := got[i]
		if c.Name != w.name || c.Detail != w.detail || !c.OK || c.Warn != w.warn || (w.warn && c.Fix == "") {
			t.Errorf("check %+v\nwant %+v", c, w)
		}
	}
	if err := bench.Failed(got); err != nil {
		t.Errorf("a node agent's check failed the preflight: %v", err)
	}

	api.listErr = http.StatusForbidden
	got = p.checkAgents(context.Background())
	if len(got) != 1 || !got[0].Warn || !got[0].OK || !strings.Contains(got[0].Detail, "listing the node agents in namespace coldbench-system") ||
		!strings.Contains(got[0].Fix, "deploy/rbac.yaml") {
		t.Errorf("agents not listable: %+v", got)
	}
}
