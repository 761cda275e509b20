package knative

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coldbench/coldbench/pkg/bench"
)

// Leftovers lists the ksvcs and pods that carry the experiment's labels (the
// selector Clean uses), retrying an overloaded API server until ctx ends.
func (p *Platform) Leftovers(ctx context.Context, experimentID string) ([]bench.Leftover, error) {
	sel := bench.LabelManagedBy + "=" + bench.LabelManagedByVal + "," + bench.LabelExperiment + "=" + experimentID
	ns := p.spec.Namespace
	svcs, err := retryList(ctx, func(ctx context.Context) ([]metav1.Object, error) {
		l, err := p.dyn.Resource(ServiceGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, err
		}
		return asObjects(l.Items), nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the experiment's ksvcs in %q: %w", ns, err)
	}
	pods, err := retryList(ctx, func(ctx context.Context) ([]metav1.Object, error) {
		l, err := p.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, err
		}
		return asObjects(l.Items), nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the experiment's pods in %q: %w", ns, err)
	}
	return []bench.Leftover{leftover("ksvc", svcs), leftover("pod", pods)}, nil
}

// leftover counts objs and names a few.
func leftover(kind string, objs []metav1.Object) bench.Leftover {
	l := bench.Leftover{Kind: kind, Count: len(objs)}
	for _, o := range objs[:min(len(objs), 3)] {
		l.Names = append(l.Names, o.GetName())
	}
	return l
}

// CleanFlags are `coldbench clean`'s flags that reach this cluster and
// namespace.
func (p *Platform) CleanFlags() []string {
	f := []string{"--platform", Name}
	if p.spec.Kubeconfig != "" {
		f = append(f, "--kubeconfig", p.spec.Kubeconfig)
	}
	if p.spec.Context != "" {
		f = append(f, "--context", p.spec.Context)
	}
	return append(f, "--namespace", p.spec.Namespace)
}

var _ bench.Inventory = (*Platform)(nil)

// asObjects is a list's items as metav1.Objects (pointers into items).
func asObjects[T any, PT interface {
	*T
	metav1.Object
}](items []T) []metav1.Object {
	out := make([]metav1.Object, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	return out
}
