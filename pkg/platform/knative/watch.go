package knative

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// watchRetry is how often the tracker's list and watch calls are retried
// while the API server cannot be reached. Fixed, deliberately not a backoff:
// the tracker must see the cluster again within half a second of an API
// server restart, and these retries are a few cheap calls in a short outage.
var watchRetry = 500 * time.Millisecond

// unreachable reports whether err says the API server could not be reached
// or cannot serve now (down, restarting, shutting down, overloaded), as
// opposed to an answer about the request.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsServiceUnavailable(err) || apierrors.IsTooManyRequests(err) {
		return true
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		utilnet.IsHTTP2ConnectionLost(err) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// poll calls cond at once, then period after each call has returned (the
// wait starts when a call ends: a slow call is not followed at once by the
// next), until cond is done or fails (its error), or ctx ends (ctx.Err()).
func poll(ctx context.Context, period time.Duration, cond wait.ConditionWithContextFunc) error {
	return wait.Backoff{Duration: period}.DelayFunc().Until(ctx, true, true, cond)
}

// patiently calls f until it succeeds, fails for another reason than an
// unreachable API server, or ctx ends; it returns f's last results.
func patiently[T any](ctx context.Context, f func() (T, error)) (v T, err error) {
	_ = poll(ctx, watchRetry, func(context.Context) (bool, error) { // only ctx.Err(): err says more
		v, err = f()
		return !unreachable(err), nil
	})
	return v, err
}

// patientListWatch lists and watches with list and watch, the label selector
// set, retrying every watchRetry while the API server is unreachable.
// client-go's reflectors would otherwise back off exponentially, with up to
// a minute between tries: after an API server restart the tracker would stay
// blind that long (ksvcs seen not Ready, cold pods not seen). client is the
// one list and watch use (a fake's lack of watch-list support is honoured,
// as informer factories do).
func patientListWatch(client any, sel string, list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return patiently(ctx, func() (runtime.Object, error) { return list(ctx, o) })
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return patiently(ctx, func() (watch.Interface, error) { return watchFn(ctx, o) })
		},
	}, client)
}

// trackerInformers returns informers on namespace ns for the pods,
// deployments and ksvcs selected by sel, built on patientListWatch.
func trackerInformers(kube kubernetes.Interface, dyn dynamic.Interface, ns, sel string) (pods, deps, svcs cache.SharedIndexInformer) {
	p := kube.CoreV1().Pods(ns)
	pods = cache.NewSharedIndexInformer(patientListWatch(kube, sel,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return p.List(ctx, o) },
		p.Watch), &corev1.Pod{}, 0, cache.Indexers{})
	d := kube.AppsV1().Deployments(ns)
	deps = cache.NewSharedIndexInformer(patientListWatch(kube, sel,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return d.List(ctx, o) },
		d.Watch), &appsv1.Deployment{}, 0, cache.Indexers{})
	s := dyn.Resource(ServiceGVR).Namespace(ns)
	svcs = cache.NewSharedIndexInformer(patientListWatch(dyn, sel,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return s.List(ctx, o) },
		s.Watch), &unstructured.Unstructured{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	return pods, deps, svcs
}
