package knative

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coldbench/coldbench/pkg/agent"
	"github.com/coldbench/coldbench/pkg/results"
)

// The node agents (pkg/agent, deploy/agent.yaml): a DaemonSet in a
// namespace of its own. A constant, not a setting: deploy/rbac.yaml grants
// coldbench's ServiceAccount the pod proxy in this namespace only, and a
// test checks deploy/agent.yaml agrees.
const (
	AgentNamespace = "coldbench-system"
	AgentSelector  = "app.kubernetes.io/name=coldbench-agent"
)

// agentRequestTimeout bounds one request to an agent through the API
// server's proxy: normally a few ms; one that hangs (a node gone, an
// overloaded API server) must not hold the cell for long.
const agentRequestTimeout = 5 * time.Second

// listAgents lists the node agents by node name: of several on a node (a
// rolling update), a Ready one, else one that runs. Pods that do not run
// (pending, ended) cannot answer and are left out.
func listAgents(ctx context.Context, kube kubernetes.Interface) (map[string]*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, agentRequestTimeout)
	defer cancel()
	list, err := kube.CoreV1().Pods(AgentNamespace).List(ctx, metav1.ListOptions{LabelSelector: AgentSelector})
	if err != nil {
		return nil, fmt.Errorf("listing the node agents in namespace %s (%s): %w", AgentNamespace, AgentSelector, err)
	}
	out := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		if prev := out[p.Spec.NodeName]; prev == nil || (!podReady(prev) && podReady(p)) {
			out[p.Spec.NodeName] = p
		}
	}
	return out, nil
}

// eachAgent calls f for every agent of agents (by node), a few nodes at a
// time (maxAgentsInFlight), and returns once every call has.
func eachAgent(agents map[string]*corev1.Pod, f func(node string, ap *corev1.Pod)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxAgentsInFlight)
	for node, ap := range agents {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			f(node, ap)
		})
	}
	wg.Wait()
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// agentPort is the agent pod's port named http (deploy/agent.yaml), else
// the agent's default.
func agentPort(p *corev1.Pod) string {
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.Name == "http" {
				return strconv.Itoa(int(port.ContainerPort))
			}
		}
	}
	return strconv.Itoa(agent.DefaultPort)
}

// agentProxy reaches the node agents through the API server's pod proxy
// (GET /api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH), the only way in:
// they listen on their pods' IPs, which coldbench outside the cluster
// cannot reach. Not Pods().ProxyGet: its parameters are a map, and
// /v1/events takes a uid parameter per pod.
type agentProxy struct {
	rc rest.Interface // nil: no proxy (a fake clientset has no REST client)
}

func newAgentProxy(kube kubernetes.Interface) agentProxy {
	rc := kube.CoreV1().RESTClient()
	if c, ok := rc.(*rest.RESTClient); ok && c == nil {
		rc = nil
	}
	return agentProxy{rc: rc}
}

// get GETs path of agent pod p with the query q and returns the body of a
// 2xx answer; otherwise an error with the agent's or the proxy's reason.
func (ap agentProxy) get(ctx context.Context, p *corev1.Pod, path string, q url.Values) ([]byte, error) {
	if ap.rc == nil {
		return nil, fmt.Errorf("no REST client to reach pod %s/%s through the API server's proxy", p.Namespace, p.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, agentRequestTimeout)
	defer cancel()
	req := ap.rc.Get().Namespace(p.Namespace).Resource("pods").SubResource("proxy").
		Name(utilnet.JoinSchemeNamePort("http", p.Name, agentPort(p))).Suffix(path)
	for k, vs := range q {
		for _, v := range vs {
			req = req.Param(k, v)
		}
	}
	// Do, not DoRaw: it reads the API server's own Status (the proxy's
	// "error trying to reach service: …") into the error.
	body, err := req.Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("GET %s of %s/%s through the API server's proxy: %w%s", path, p.Namespace, p.Name, err, serverSaid(err))
	}
	return body, nil
}

// serverSaid is the body of a non-2xx answer that is not the API
// server's own Status (the agent's "not subscribed …"), which client-go
// keeps out of the error's message.
func serverSaid(err error) string {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Details == nil {
		return ""
	}
	for _, c := range st.Status().Details.Causes {
		if c.Type == metav1.CauseTypeUnexpectedServerResponse && c.Message != "" && !strings.Contains(err.Error(), c.Message) {
			return ": " + c.Message
		}
	}
	return ""
}

// events asks agent pod p for the pods uids, reading now (coldbench's
// wall clock) around the request for the clock's offset (nil: see
// clockOffset).
func (ap agentProxy) events(ctx context.Context, p *corev1.Pod, uids []string, now func() time.Time) (*agent.EventsResponse, *results.RuntimeClock, error) {
	var resp agent.EventsResponse
	clock, err := ap.getTimed(ctx, p, "/v1/events", url.Values{"uid": uids}, now, &resp, func() int64 { return resp.NodeTimeUnixNS })
	if err != nil {
		return nil, nil, err
	}
	return &resp, clock, nil
}

// getTimed GETs path of agent pod p with the query q into v, reading now
// around the request: the clock's offset from nodeTime, the node's clock
// in v's answer, which must be there.
func (ap agentProxy) getTimed(ctx context.Context, p *corev1.Pod, path string, q url.Values, now func() time.Time, v any, nodeTime func() int64) (*results.RuntimeClock, error) {
	sent := now()
	body, err := ap.get(ctx, p, path, q)
	recv := now()
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("decoding the answer of node agent %s to %s: %w", p.Name, path, err)
	}
	if nodeTime() == 0 {
		return nil, fmt.Errorf("node agent %s answered %s without its clock (node_time_unix_ns): an agent older than coldbench?", p.Name, path)
	}
	return clockOffset(p.Spec.NodeName, sent, recv, nodeTime()), nil
}

// clockOffset is Cristian's estimate of node's clock minus coldbench's from
// one request sent at s and answered at r (coldbench's wall clock) whose
// answer carried the node's clock n: n − (s + r)/2, within ±(r − s)/2 (the
// node read its clock somewhere in between; rounded up, a bound). nil when
// coldbench's wall clock stepped back during the request: no bound holds.
func clockOffset(node string, s, r time.Time, n int64) *results.RuntimeClock {
	sn, rn := s.UnixNano(), r.UnixNano()
	if rn < sn {
		return nil
	}
	rtt := rn - sn
	return &results.RuntimeClock{Node: node, OffsetNS: n - (sn + rtt/2), ErrorNS: (rtt + 1) / 2}
}

// footprint asks agent pod p for the footprints of the pods uids (none:
// the node's MemAvailable only), withMemory their memory too.
func (ap agentProxy) footprint(ctx context.Context, p *corev1.Pod, uids []string, withMemory bool) (*agent.FootprintResponse, error) {
	q := url.Values{"uid": uids}
	if withMemory {
		q.Set("memory", "1")
	}
	body, err := ap.get(ctx, p, "/v1/footprint", q)
	if err != nil {
		return nil, err
	}
	var resp agent.FootprintResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("decoding the footprint answer of node agent %s: %w", p.Name, err)
	}
	return &resp, nil
}
