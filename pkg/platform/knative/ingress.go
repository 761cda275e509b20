package knative

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ServingNamespace is where Knative Serving keeps its config maps.
const ServingNamespace = "knative-serving"

// ingressCandidate is where a networking layer's public service lives.
type ingressCandidate struct {
	layer     string
	classes   []string // config-network ingress-class values that select it
	namespace string   // "" = any namespace
	name      string   // "" = match by label
	label     string
}

var ingressCandidates = []ingressCandidate{
	{layer: "kourier", classes: []string{"kourier.ingress.networking.knative.dev"}, namespace: "kourier-system", name: "kourier"},
	{layer: "istio", classes: []string{"istio.ingress.networking.knative.dev"}, namespace: "istio-system", name: "istio-ingressgateway"},
	{layer: "contour", classes: []string{"contour.ingress.networking.knative.dev"}, namespace: "contour-external", name: "envoy"},
	{layer: "traefik", classes: []string{"traefik.ingress.networking.knative.dev"}, namespace: "traefik", name: "traefik"},
	{layer: "traefik", classes: []string{"traefik.ingress.networking.knative.dev"}, label: "app.kubernetes.io/name=traefik"},
}

// Ingress is where requests go and how it was found.
type Ingress struct {
	Address string // HOST:PORT
	Layer   string // kourier, istio, contour, traefik, or "given"
	How     string // e.g. "NodePort 31080 on node 10.0.0.5"
}

// ingressClass reads Knative's configured ingress class.
func ingressClass(ctx context.Context, kube kubernetes.Interface) string {
	cm, err := kube.CoreV1().ConfigMaps(ServingNamespace).Get(ctx, "config-network", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	for _, k := range []string{"ingress-class", "ingress.class"} {
		if v := cm.Data[k]; v != "" {
			return v
		}
	}
	return ""
}

// DetectIngress finds the public address of Knative's networking layer:
// a LoadBalancer IP, else a node address and NodePort, else the ClusterIP
// (reachable from a node or from inside the cluster).
func DetectIngress(ctx context.Context, kube kubernetes.Interface) (Ingress, error) {
	class := ingressClass(ctx, kube)
	var tried []string
	for _, c := range ingressCandidates {
		if class != "" && !containsAny(class, c.classes...) {
			continue
		}
		svcs, err := findServices(ctx, kube, c)
		if err != nil {
			return Ingress{}, err
		}
		for _, svc := range svcs {
			if in, ok := addressOf(ctx, kube, svc); ok {
				in.Layer = c.layer
				return in, nil
			}
		}
		tried = append(tried, c.layer+" ("+c.where()+")")
	}
	if class == "" {
		class = "(config-network has none)"
	}
	return Ingress{}, fmt.Errorf("no ingress found (ingress class %s; looked for %s); pass --ingress HOST:PORT", class, strings.Join(tried, ", "))
}

func (c ingressCandidate) where() string {
	if c.name != "" {
		return c.namespace + "/" + c.name
	}
	return "label " + c.label
}

func findServices(ctx context.Context, kube kubernetes.Interface, c ingressCandidate) ([]corev1.Service, error) {
	if c.name != "" {
		svc, err := kube.CoreV1().Services(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("looking for the %s ingress service %s/%s: %w", c.layer, c.namespace, c.name, err)
		}
		return []corev1.Service{*svc}, nil
	}
	list, err := kube.CoreV1().Services(c.namespace).List(ctx, metav1.ListOptions{LabelSelector: c.label})
	if apierrors.IsForbidden(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking for the %s ingress service: %w", c.layer, err)
	}
	return list.Items, nil
}

// httpPort picks the service port plain HTTP goes to.
func httpPort(svc corev1.Service) (corev1.ServicePort, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Name == "http2" || p.Name == "http" || p.Name == "web" || p.Port == 80 {
			return p, true
		}
	}
	if len(svc.Spec.Ports) == 1 {
		return svc.Spec.Ports[0], true
	}
	return corev1.ServicePort{}, false
}

func addressOf(ctx context.Context, kube kubernetes.Interface, svc corev1.Service) (Ingress, bool) {
	p, ok := httpPort(svc)
	if !ok {
		return Ingress{}, false
	}
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		host := lb.IP
		if host == "" {
			host = lb.Hostname
		}
		if host != "" {
			return Ingress{Address: net.JoinHostPort(host, strconv.Itoa(int(p.Port))), How: "LoadBalancer " + svc.Namespace + "/" + svc.Name}, true
		}
	}
	if p.NodePort != 0 {
		if ip := nodeAddress(ctx, kube); ip != "" {
			return Ingress{Address: net.JoinHostPort(ip, strconv.Itoa(int(p.NodePort))), How: fmt.Sprintf("NodePort %d of %s/%s on node %s", p.NodePort, svc.Namespace, svc.Name, ip)}, true
		}
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		return Ingress{Address: net.JoinHostPort(ip, strconv.Itoa(int(p.Port))), How: "ClusterIP of " + svc.Namespace + "/" + svc.Name + " (reachable from a node or pod)"}, true
	}
	return Ingress{}, false
}

// nodeAddress is the first Ready node's InternalIP (ExternalIP otherwise).
func nodeAddress(ctx context.Context, kube kubernetes.Interface) string {
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	for _, want := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, n := range nodes.Items {
			for _, a := range n.Status.Addresses {
				if a.Type == want && a.Address != "" {
					return a.Address
				}
			}
		}
	}
	return ""
}
