package knative

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/release"
)

// Checks runs every check the experiment depends on, for run's preflight
// and doctor. It changes nothing and keeps nothing: Open resolves the
// ingress again for the run.
func (p *Platform) Checks(ctx context.Context, exp *bench.Experiment) []bench.Check {
	var out []bench.Check
	add := func(c bench.Check) { out = append(out, c) }
	k := SpecOf(exp)

	ver, err := p.kube.Discovery().ServerVersion()
	if err != nil {
		add(bench.Check{Name: "Kubernetes API", Detail: err.Error(), Fix: "check --kubeconfig / --context (or KUBECONFIG) point at a running cluster"})
		return out // nothing else can be checked
	}
	add(bench.Check{Name: "Kubernetes API", OK: true, Detail: p.host + ", " + ver.GitVersion})

	if _, err := p.kube.Discovery().ServerResourcesForGroupVersion("serving.knative.dev/v1"); err != nil {
		add(bench.Check{Name: "Knative Serving", Detail: "serving.knative.dev/v1 not served: " + err.Error(), Fix: "install Knative Serving (the lab: make lab-up)"})
		return out
	}
	add(bench.Check{Name: "Knative Serving", OK: true, Detail: "version " + p.knativeVersion(ctx)})

	needRC := false
	for _, r := range exp.Spec.Runtimes {
		needRC = needRC || r.Handler != ""
	}
	features := p.configMap(ctx, "config-features")
	if needRC {
		v := features["kubernetes.podspec-runtimeclassname"]
		add(bench.Check{Name: "feature kubernetes.podspec-runtimeclassname", OK: v == "enabled", Detail: "is " + quoteOrUnset(v),
			Fix: `kubectl -n knative-serving patch cm config-features --type merge -p '{"data":{"kubernetes.podspec-runtimeclassname":"enabled"}}'`})
	}
	az := p.configMap(ctx, "config-autoscaler")["allow-zero-initial-scale"]
	azc := bench.Check{Name: "allow-zero-initial-scale", OK: az == "true", Detail: "is " + quoteOrUnset(az),
		Fix: `kubectl -n knative-serving patch cm config-autoscaler --type merge -p '{"data":{"allow-zero-initial-scale":"true"}}' (or let coldbench set and restore it: --configure-cluster)`}
	if !azc.OK && k.ConfigureCluster {
		azc.OK, azc.Detail = true, azc.Detail+"; coldbench will set it for the run and restore it afterwards (--configure-cluster)"
	}
	add(azc)

	for _, r := range exp.Spec.Runtimes {
		if r.Handler == "" {
			add(bench.Check{Name: "runtime " + r.Name, OK: true, Detail: "no RuntimeClass: the cluster's default runtime"})
			continue
		}
		rc, err := p.kube.NodeV1().RuntimeClasses().Get(ctx, r.Handler, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			add(bench.Check{Name: "runtime " + r.Name, Detail: fmt.Sprintf("RuntimeClass %q does not exist", r.Handler),
				Fix: fmt.Sprintf("create RuntimeClass %q whose handler is configured in every node's containerd, or fix --runtimes", r.Handler)})
		case err != nil:
			add(bench.Check{Name: "runtime " + r.Name, Detail: "reading RuntimeClass: " + err.Error(), Fix: "grant get on runtimeclasses.node.k8s.io"})
		default:
			add(bench.Check{Name: "runtime " + r.Name, OK: true, Detail: fmt.Sprintf("RuntimeClass %q, handler %q", rc.Name, rc.Handler)})
		}
	}

	add(p.checkNamespace(ctx, k.Namespace))

	in, err := p.resolveIngress(ctx, k)
	if err != nil {
		add(bench.Check{Name: "ingress", Detail: err.Error(), Fix: "pass --ingress HOST:PORT of Knative's public ingress"})
	} else if err := probeIngress(ctx, in.Address); err != nil {
		add(bench.Check{Name: "ingress", Detail: fmt.Sprintf("%s (%s) does not answer HTTP: %v", in.Address, in.How, err), Fix: "check the ingress is running and reachable from here, or pass --ingress HOST:PORT"})
	} else {
		add(bench.Check{Name: "ingress", OK: true, Detail: fmt.Sprintf("%s, %s via %s", in.Address, in.Layer, in.How)})
		if k.HTTP == H2C {
			c := bench.Check{Name: "ingress speaks h2c (--http h2c)", OK: true, Detail: "HTTP/2 cleartext handshake done"}
			if err := release.CheckH2C(ctx, in.Address); err != nil {
				c = bench.Check{Name: c.Name, Detail: err.Error(), Fix: "use --http http1, or an ingress that accepts HTTP/2 cleartext with prior knowledge (Traefik and Envoy-based ones do)"}
			}
			add(c)
		}
	}
	out = append(out, p.checkAgents(ctx)...)
	if f := exp.Spec.Footprint; f != nil && !f.Off {
		add(p.checkKubeletSummary(ctx))
	}
	if d := exp.Spec.Density; d != nil {
		add(p.checkDensityFloor(ctx, d.MinMemAvailable)) // density.go
	}
	return out
}

// checkKubeletSummary says whether the footprint may read the kubelets'
// Summary API through the API server (get nodes/proxy): its figures stand
// beside the node agents', and in for them where none answers. Without it
// a run goes on: a warning.
func (p *Platform) checkKubeletSummary(ctx context.Context) bench.Check {
	c := bench.Check{Name: "kubelet Summary API (footprint)", OK: true}
	r, err := p.kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
		Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "proxy"}},
	}, metav1.CreateOptions{})
	switch {
	case err != nil:
		c.Warn, c.Detail, c.Fix = true, "checking get nodes/proxy: "+err.Error(), "grant create on selfsubjectaccessreviews.authorization.k8s.io"
	case !r.Status.Allowed:
		c.Warn, c.Detail = true, "not allowed: get nodes/proxy: each pod's footprint will lack the kubelet's figures (and be empty where no node agent runs)"
		c.Fix = "kubectl apply -f deploy/rbac-kubelet-summary.yaml (read its warning first), or rely on the node agents (deploy/agent.yaml)"
	default:
		c.Detail = "get nodes/proxy allowed: the kubelets' pod figures are read beside the node agents'"
	}
	return c
}

// agentChecksTimeout bounds the node agents' checks together: a proxy that
// hangs must not hold doctor, or run's preflight, for long on every node.
const agentChecksTimeout = 15 * time.Second

// checkAgents says, for every Ready node (coldbench's pods may land on
// any), whether a node agent runs there and answers /healthz through the
// API server's proxy. Without one a run goes on and its attempts on that
// node only miss their rt_ phases: a warning, never a failure.
func (p *Platform) checkAgents(ctx context.Context) []bench.Check {
	ctx, cancel := context.WithTimeout(ctx, agentChecksTimeout)
	defer cancel()
	nodes, err := p.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return []bench.Check{agentWarning("node agents", "listing the nodes: "+err.Error())}
	}
	agents, err := listAgents(ctx, p.kube)
	if err != nil {
		return []bench.Check{agentWarning("node agents", err.Error())}
	}
	var ready []string
	for i := range nodes.Items {
		if nodeReady(&nodes.Items[i]) {
			ready = append(ready, nodes.Items[i].Name)
		}
	}
	out := make([]bench.Check, len(ready))
	proxy := newAgentProxy(p.kube)
	slots := make(chan struct{}, maxAgentsInFlight)
	var wg sync.WaitGroup
	for i, node := range ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			out[i] = checkAgent(ctx, proxy, node, agents[node])
		}()
	}
	wg.Wait()
	return out
}

// checkAgent checks node's agent ap (nil: none runs there).
func checkAgent(ctx context.Context, proxy agentProxy, node string, ap *corev1.Pod) bench.Check {
	name := "node agent on " + node
	if ap == nil {
		return agentWarning(name, "no node agent runs on node "+node)
	}
	body, err := proxy.get(ctx, ap, "/healthz", nil)
	if err != nil {
		return bench.Check{Name: name, OK: true, Warn: true,
			Detail: "node agent " + ap.Name + " is not healthy: " + err.Error() + ": runtime phases will be missing on this node",
			Fix:    fmt.Sprintf("see why: kubectl -n %s logs %s; kubectl -n %s describe pod %s", ap.Namespace, ap.Name, ap.Namespace, ap.Name)}
	}
	detail := ap.Name + ": " + strings.TrimSpace(string(body))
	if !podReady(ap) { // its readiness probe lags /healthz by up to its period
		detail += " (its pod is not Ready yet)"
	}
	return bench.Check{Name: name, OK: true, Detail: detail}
}

// agentWarning is the warning of a node agent's check when there is
// none, or none that coldbench may find.
func agentWarning(name, why string) bench.Check {
	return bench.Check{Name: name, OK: true, Warn: true, Detail: why + ": runtime phases will be missing; deploy deploy/agent.yaml",
		Fix: "kubectl apply -f deploy/rbac.yaml -f deploy/agent.yaml (README: The node agent)"}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func quoteOrUnset(v string) string {
	if v == "" {
		return "unset"
	}
	return fmt.Sprintf("%q", v)
}

func (p *Platform) configMap(ctx context.Context, name string) map[string]string {
	cm, err := p.kube.CoreV1().ConfigMaps(ServingNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return cm.Data
}

func (p *Platform) knativeVersion(ctx context.Context) string {
	ns, err := p.kube.CoreV1().Namespaces().Get(ctx, ServingNamespace, metav1.GetOptions{})
	if err == nil {
		for _, l := range []string{"app.kubernetes.io/version", "serving.knative.dev/release"} {
			if v := ns.Labels[l]; v != "" && v != "devel" {
				return v
			}
		}
	}
	// Built from source, the labels say "devel": the controller's image tag
	// is the next best evidence.
	label := "unknown"
	d, err := p.kube.AppsV1().Deployments(ServingNamespace).Get(ctx, "controller", metav1.GetOptions{})
	if err == nil {
		for _, l := range []string{"app.kubernetes.io/version", "serving.knative.dev/release"} {
			if v := d.Labels[l]; v != "" {
				label = v
				break
			}
		}
		if label == "unknown" || label == "devel" {
			for _, c := range d.Spec.Template.Spec.Containers {
				if i := strings.LastIndexByte(c.Image, ':'); i > 0 && !strings.Contains(c.Image[i:], "/") {
					return label + " (controller image " + c.Image + ")"
				}
			}
		}
	}
	return label
}

// namespaceNeed is a verb a run uses in its namespace. without, for a verb
// the run can do without, says what is lost then (a warning, not a
// failure); "" for one it needs.
type namespaceNeed struct{ group, resource, verb, without string }

// namespaceNeeds is every verb a run uses in its namespace (deploy/rbac.yaml
// grants exactly these: TestRBACGrantsWhatARunUsesInItsNamespace).
var namespaceNeeds = []namespaceNeed{
	{"serving.knative.dev", "services", "create", ""},
	{"serving.knative.dev", "services", "delete", ""},
	{"serving.knative.dev", "services", "get", ""},
	{"serving.knative.dev", "services", "list", ""},
	{"serving.knative.dev", "services", "watch", ""},
	{"", "pods", "list", ""},
	{"", "pods", "watch", ""},
	{"apps", "deployments", "list", ""},
	{"apps", "deployments", "watch", ""},
	// stuck.go: the kubelet's events about a pod stuck terminating.
	{"", "events", "list", "a pod a teardown finds stuck terminating is named without the kubelet's event saying why"},
}

// checkNamespace: the namespace exists (or may be created) and coldbench may
// do there what a run does. A verb the run can do without that is denied is
// a warning.
func (p *Platform) checkNamespace(ctx context.Context, ns string) bench.Check {
	c := bench.Check{Name: "namespace " + ns}
	_, err := p.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	exists := err == nil
	type need struct {
		namespaceNeed
		ns string
	}
	var needs []need
	for _, n := range namespaceNeeds {
		needs = append(needs, need{n, ns})
	}
	if !exists {
		needs = append(needs, need{namespaceNeed{"", "namespaces", "create", ""}, ""})
	}
	var denied, lost []string
	required := false
	for _, n := range needs {
		ok, err := canI(ctx, p.kube, n.group, n.resource, n.verb, n.ns)
		if err != nil {
			c.Detail, c.Fix = "checking permissions: "+err.Error(), "grant create on selfsubjectaccessreviews.authorization.k8s.io"
			return c
		}
		if !ok {
			r := n.resource
			if n.group != "" {
				r += "." + n.group
			}
			denied = append(denied, n.verb+" "+r)
			if n.without == "" {
				required = true
			} else {
				lost = append(lost, n.without)
			}
		}
	}
	if required {
		c.Detail = "not allowed: " + strings.Join(denied, ", ")
		c.Fix = fmt.Sprintf("use a namespace you may work in (-n), or grant these verbs in %q (deploy/rbac.yaml grants what a run needs)", ns)
		return c
	}
	c.OK = true
	c.Detail = "exists"
	if !exists {
		c.Detail = "absent: coldbench will create it (labelled " + bench.LabelManagedBy + "=" + bench.LabelManagedByVal + ")"
	}
	if len(denied) > 0 {
		c.Warn = true
		c.Detail += "; not allowed: " + strings.Join(denied, ", ") + ": " + strings.Join(lost, "; ")
		c.Fix = fmt.Sprintf("grant these verbs in %q (deploy/rbac.yaml does)", ns)
	}
	return c
}

func canI(ctx context.Context, kube kubernetes.Interface, group, resource, verb, ns string) (bool, error) {
	r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
		Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: group, Resource: resource,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// probeIngress: any HTTP answer (a 404 for an unknown host is fine) means
// the ingress is there.
func probeIngress(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	req.Host = "coldbench-doctor.invalid"
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}
