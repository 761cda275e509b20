package knative

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

func fakeDynamic(objs ...runtime.Object) *dynfake.FakeDynamicClient {
	return dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{ServiceGVR: "ServiceList"}, objs...)
}

func ksvc(name, ns string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Service"}}
	u.SetName(name)
	u.SetNamespace(ns)
	u.SetLabels(labels)
	return u
}

func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "serving.knative.dev", Resource: "services"}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&net_OpError{syscall.ECONNREFUSED}, true},
		{fmt.Errorf("Post https://x: %w", &net_OpError{syscall.ECONNREFUSED}), true},
		{apierrors.NewServiceUnavailable("shutting down"), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewInternalError(errors.New(`failed calling webhook "webhook.serving.knative.dev": connection refused`)), true},
		{apierrors.NewServerTimeout(gr, "create", 1), true},
		{apierrors.NewInvalid(schema.GroupKind{Group: "serving.knative.dev", Kind: "Service"}, "x", nil), false},
		{apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{apierrors.NewAlreadyExists(gr, "x"), false},
		{errors.New("admission webhook denied the request"), false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// net_OpError is a connection refused as net.Dial reports it.
type net_OpError struct{ errno syscall.Errno }

func (e *net_OpError) Error() string { return "dial tcp 192.0.2.2:6443: connect: " + e.errno.Error() }
func (e *net_OpError) Unwrap() error { return e.errno }

func TestCreateServiceLeavesOthersAlone(t *testing.T) {
	const ns, id = "cb-test", "cb-20261126t000000-abcdef"
	mine := map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: id}
	for name, c := range map[string]struct {
		existing map[string]string // labels of a ksvc already there; nil: none
		wantErr  error
	}{
		"absent":                 {nil, nil},
		"ours (lost answer)":     {mine, nil},
		"no labels":              {map[string]string{}, ErrForeign},
		"app=coldbench":          {map[string]string{"app": "coldbench"}, ErrForeign},
		"another experiment":     {map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: "cb-other"}, ErrForeign},
		"experiment, no manager": {map[string]string{bench.LabelExperiment: id}, ErrForeign},
	} {
		t.Run(name, func(t *testing.T) {
			var objs []runtime.Object
			if c.existing != nil {
				objs = append(objs, ksvc("cbabcdef-r0-n1-i1-0", ns, c.existing))
			}
			dyn := fakeDynamic(objs...)
			svc := ksvc("cbabcdef-r0-n1-i1-0", ns, mine)
			err := createService(context.Background(), dyn.Resource(ServiceGVR).Namespace(ns), svc, id)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			got, gerr := dyn.Resource(ServiceGVR).Namespace(ns).Get(context.Background(), svc.GetName(), metav1.GetOptions{})
			if gerr != nil {
				t.Fatal(gerr)
			}
			if c.existing != nil && fmt.Sprint(got.GetLabels()) != fmt.Sprint(c.existing) {
				t.Errorf("existing ksvc changed: labels %v", got.GetLabels())
			}
			for _, a := range dyn.Actions() {
				if a.GetVerb() != "create" && a.GetVerb() != "get" {
					t.Errorf("unexpected %s", a.GetVerb())
				}
			}
		})
	}
}

func TestCreateServiceRetriesWhileTheAPIIsDown(t *testing.T) {
	const ns, id = "cb-test", "cb-1-abcdef"
	dyn := fakeDynamic()
	fails := 3
	dyn.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fails > 0 {
			fails--
			return true, nil, fmt.Errorf("Post \"https://192.0.2.2:6443/apis\": %w", &net_OpError{syscall.ECONNREFUSED})
		}
		return false, nil, nil
	})
	svc := ksvc("cbabcdef-r0-n1-i1-0", ns, map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: id})
	if err := createService(context.Background(), dyn.Resource(ServiceGVR).Namespace(ns), svc, id); err != nil {
		t.Fatalf("after 3 refused connections: %v", err)
	}
	if fails != 0 {
		t.Fatalf("%d failures left", fails)
	}

	// Down for longer than the caller waits: the last error, said so.
	dyn = fakeDynamic()
	dyn.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("apiserver is shutting down")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := createService(ctx, dyn.Resource(ServiceGVR).Namespace(ns), svc, id)
	if err == nil || !apierrors.IsServiceUnavailable(errors.Unwrap(err)) && !containsAny(err.Error(), "shutting down") || !containsAny(err.Error(), "retried") {
		t.Fatalf("err %v", err)
	}

	// A refusal is not retried.
	dyn = fakeDynamic()
	n := 0
	dyn.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		n++
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, svc.GetName(), errors.New("no"))
	})
	if err := createService(context.Background(), dyn.Resource(ServiceGVR).Namespace(ns), svc, id); !apierrors.IsForbidden(err) || n != 1 {
		t.Fatalf("forbidden: %v after %d tries", err, n)
	}
}

// A namespace that exists is used as it is: running needs no right to create
// namespaces (deploy/rbac.yaml grants none).
func TestEnsureNamespaceNeedsNoCreateWhenGiven(t *testing.T) {
	kube := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "given"}})
	kube.PrependReactor("create", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "", errors.New("no"))
	})
	exp := bench.Default()
	exp.Spec.SetSection(Name, &Spec{Namespace: "given"})
	if err := NewWithClients(exp, kube, nil, "", nil).ensureNamespace(context.Background()); err != nil {
		t.Fatal(err)
	}
	SpecOf(exp).Namespace = "absent"
	if err := NewWithClients(exp, kube, nil, "", nil).ensureNamespace(context.Background()); err == nil {
		t.Fatal("creating an absent namespace without the right: no error")
	}
}

// While the API server is down (restarting), the tracker's lists and watches
// are retried every watchRetry, not with client-go's exponential backoff (up
// to a minute between tries): it sees the cluster again soon after the API
// server is back.
func TestTrackerRidesOutAnAPIServerRestart(t *testing.T) {
	kube := fake.NewClientset()
	refused := &net_OpError{syscall.ECONNREFUSED}
	var mu sync.Mutex
	down := map[string]int{"list": 4, "watch": 4}
	for _, verb := range []string{"list", "watch"} {
		fail := func(k8stesting.Action) (bool, runtime.Object, error) {
			mu.Lock()
			defer mu.Unlock()
			if down[verb] > 0 {
				down[verb]--
				return true, nil, refused
			}
			return false, nil, nil
		}
		if verb == "list" {
			kube.PrependReactor(verb, "pods", fail)
		} else {
			kube.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
				_, _, err := fail(a)
				return err != nil, nil, err
			})
		}
	}
	tr := newTracker()
	t0 := time.Now()
	if err := tr.start(context.Background(), kube, fakeDynamic(), "cb-test", "cb-1-abcdef"); err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	// The pod informer's 4 refused lists: 4 retries at 500 ms. The
	// reflector's own backoff would take at least 0.8+1.6+3.2+6.4 s.
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("caches synced after %v", d)
	}
	// And the watch, refused 4 times: a pod made now is seen soon.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "cb-test",
		Labels: map[string]string{bench.LabelExperiment: "cb-1-abcdef", LabelRevision: "r-00001"}}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		watching := down["watch"] == 0
		mu.Unlock()
		if watching {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pod watch was not retried within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := kube.CoreV1().Pods("cb-test").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := tr.waitFor(ctx, func() bool { return tr.view("r-00001", t0).pod == "p" }); err != nil {
		t.Fatal("pod not seen after the watch came back")
	}
}

// Ready=False names one sub-condition; the failure's class comes from all
// (seen on the lab: the route's RevisionMissing before the configuration's
// "Unable to fetch image").
func TestNotReadyClassFromEveryCondition(t *testing.T) {
	svc := func(conds ...map[string]any) *unstructured.Unstructured {
		var cs []any
		for _, c := range conds {
			cs = append(cs, c)
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"generation": int64(1)},
			"status":   map[string]any{"observedGeneration": int64(1), "conditions": cs},
		}}
	}
	cond := func(typ, status, reason, msg string) map[string]any {
		return map[string]any{"type": typ, "status": status, "reason": reason, "message": msg}
	}
	st := readServiceStatus(svc(
		cond("ConfigurationsReady", "False", "RevisionFailed", `Revision "x-00001" failed with message: Unable to fetch image "127.0.0.1:1/no-such:v1": failed to resolve image to digest`),
		cond("Ready", "False", "RevisionMissing", `Configuration "x" does not have any ready Revision.`),
		cond("RoutesReady", "False", "RevisionMissing", `Configuration "x" does not have any ready Revision.`),
	))
	if !st.Failed || classifyNotReady(st) != results.ErrImage || !strings.Contains(st.Message, "Unable to fetch image") {
		t.Errorf("failed %v, class %s, message %q", st.Failed, classifyNotReady(st), st.Message)
	}

	// Not Ready in time: the ingress never configured the route.
	st = readServiceStatus(svc(cond("Ready", "Unknown", "IngressNotConfigured", "Ingress has not yet been reconciled.")))
	if st.Failed || notReadyInTimeClass(st) != results.ErrIngress {
		t.Errorf("ingress down: failed %v, class %s", st.Failed, notReadyInTimeClass(st))
	}
	st = readServiceStatus(svc(cond("Ready", "Unknown", "RevisionMissing", `Configuration "x" is waiting for a Revision to become ready.`)))
	if notReadyInTimeClass(st) != results.ErrTimeout {
		t.Errorf("slow revision: class %s", notReadyInTimeClass(st))
	}
}
