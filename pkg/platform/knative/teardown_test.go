package knative

// A cell's teardown (fresh protocol: after every cell) against the lab of
// coldstart_test.go: an API server that refuses or times out deletions,
// pods that outlive their ksvc, and Ctrl-C in the middle.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// overloaded are the answers of an overloaded API server to a delete.
var overloaded = []error{
	apierrors.NewTooManyRequests("the server has received too many requests", 1),
	apierrors.NewTimeoutError("request did not complete within requested timeout", 0),
	apierrors.NewServiceUnavailable("the server is shutting down"),
	apierrors.NewServerTimeout(schema.GroupResource{Group: "serving.knative.dev", Resource: "services"}, "delete", 1),
	apierrors.NewInternalError(errors.New("etcdserver: request timed out")),
	context.DeadlineExceeded, // our own per-call timeout
}

// serviceDeletes are the delete actions sent for ksvcs.
func (l *lab) serviceDeletes() []clienttesting.DeleteAction {
	var out []clienttesting.DeleteAction
	for _, a := range l.dyn.Actions() {
		if d, ok := a.(clienttesting.DeleteAction); ok && a.GetResource() == ServiceGVR {
			out = append(out, d)
		}
	}
	return out
}

// checkGone fails the test for each of the cell's services still there.
func (l *lab) checkGone(t *testing.T, scale, iteration int) {
	t.Helper()
	for i := range scale {
		if l.exists(l.name(scale, iteration, i)) {
			t.Errorf("%s still exists when ColdStart returned", l.name(scale, iteration, i))
		}
	}
}

func TestTeardownRetriesOverloadedDeletesUntilEveryServiceIsGone(t *testing.T) {
	l := newLab(t, labOptions{})
	var mu sync.Mutex
	refused := 0
	l.dyn.PrependReactor("delete", "services", func(clienttesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if refused < len(overloaded) {
			refused++
			return true, nil, overloaded[refused-1]
		}
		return false, nil, nil
	})
	const n = 3
	out := l.coldStart(l.cell(n, 0, 10*time.Second))
	l.checkGone(t, n, 0)
	for i, a := range out {
		checkCold(t, a, l, i, l.name(n, 0, i))
		if a.Step == nil || a.Step.TeardownNS <= 0 || a.Step.SetupNS <= 0 {
			t.Errorf("instance %d: step %+v, want set-up and teardown times", i, a.Step)
		}
	}
	dels := l.serviceDeletes()
	if want := n + len(overloaded); len(dels) != want {
		t.Errorf("%d deletes sent, want %d: each refused one retried, the others once", len(dels), want)
	}
	for _, d := range dels {
		if p := d.GetDeleteOptions().PropagationPolicy; p == nil || *p != metav1.DeletePropagationForeground {
			t.Errorf("delete of %s: propagation %v, want Foreground", d.GetName(), p)
		}
	}
}

// notServed are the 404s of an API server that does not serve ksvcs (yet),
// as client-go hands them over: the bare "404 page not found" of a
// starting server's last handler (kubernetes#115241), and a status that
// names no object.
func notServed(name string) []error {
	gr := ServiceGVR.GroupResource()
	return []error{
		apierrors.NewGenericServerResponse(404, "DELETE", gr, name, "404 page not found", 0, true),
		&apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound,
			Message: "the server could not find the requested resource", Details: &metav1.StatusDetails{}}},
	}
}

func TestObjectGoneOnlyWhenTheServerNamesTheObject(t *testing.T) {
	gr := ServiceGVR.GroupResource()
	if !objectGone(apierrors.NewNotFound(gr, "a"), "a") {
		t.Error("the server's NotFound for a: not gone")
	}
	for _, err := range append(notServed("a"), apierrors.NewNotFound(gr, "b"), apierrors.NewConflict(gr, "a", errors.New("x")), nil) {
		if objectGone(err, "a") {
			t.Errorf("%v: taken for a's absence", err)
		}
	}
}

// Right after a restart, an API server answered a delete with a 404 that
// named no ksvc; the teardown took it for "gone" and waited for ever for a
// ksvc nobody had deleted (CI). Such answers are retried.
func TestTeardownRetriesA404ThatNamesNoService(t *testing.T) {
	l := newLab(t, labOptions{})
	var mu sync.Mutex
	answered := 0
	l.dyn.PrependReactor("delete", "services", func(a clienttesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		errs := notServed(a.(clienttesting.DeleteAction).GetName())
		if answered < len(errs) {
			answered++
			return true, nil, errs[answered-1]
		}
		return false, nil, nil
	})
	const n = 2
	out := l.coldStart(l.cell(n, 0, 10*time.Second))
	l.checkGone(t, n, 0)
	for i, a := range out {
		checkCold(t, a, l, i, l.name(n, 0, i))
	}
	if got, want := len(l.serviceDeletes()), n+len(notServed("")); got != want {
		t.Errorf("%d deletes sent, want %d: each bare 404 retried", got, want)
	}
}

// A delete accepted but never carried out (the ksvc stays, unmarked) is
// sent again, not waited on for ever.
func TestTeardownDeletesAgainAServiceItsDeleteDidNotMark(t *testing.T) {
	defer func(d time.Duration) { redeleteAfter = d }(redeleteAfter)
	redeleteAfter = 100 * time.Millisecond
	l := newLab(t, labOptions{})
	var mu sync.Mutex
	lost := false
	l.dyn.PrependReactor("delete", "services", func(clienttesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if !lost {
			lost = true
			return true, nil, nil // "deleted", and nothing happened
		}
		return false, nil, nil
	})
	const n = 2
	l.coldStart(l.cell(n, 0, 10*time.Second))
	l.checkGone(t, n, 0)
	if got, want := len(l.serviceDeletes()), n+1; got != want {
		t.Errorf("%d deletes sent, want %d: the lost one sent again", got, want)
	}
}

// A ksvc gone while its pods still drain: the teardown is not over until
// they are gone too.
func TestTeardownWaitsUntilThePodsAreGone(t *testing.T) {
	l := newLab(t, labOptions{})
	var held sync.Map // pods whose deletion the "kubelet" has not finished
	var holding atomic.Bool
	holding.Store(true)
	l.kube.PrependReactor("delete", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if !holding.Load() {
			return false, nil, nil
		}
		held.Store(a.(clienttesting.DeleteAction).GetName(), true)
		return true, nil, nil // accepted, not done
	})
	finish := func() int { // the kubelet finishes
		holding.Store(false)
		n := 0
		held.Range(func(k, _ any) bool {
			if err := l.kube.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), l.ns, k.(string)); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
			held.Delete(k)
			n++
			return true
		})
		return n
	}
	t.Cleanup(func() { finish() }) // also when failing: Close's clean would wait for them
	const n = 2
	done := make(chan []results.Attempt)
	go func() { done <- l.s.ColdStart(context.Background(), l.cell(n, 0, 10*time.Second)) }()
	podLists := func() int {
		k := 0
		for _, a := range l.kube.Actions() {
			if la, ok := a.(clienttesting.ListAction); ok && a.GetResource().Resource == "pods" &&
				strings.Contains(la.GetListRestrictions().Labels.String(), LabelService) {
				k++
			}
		}
		return k
	}
	// Wait until the services are gone and the teardown has looked at the
	// pods since: it must still be waiting then.
	for {
		gone := !l.exists(l.name(n, 0, 0)) && !l.exists(l.name(n, 0, 1))
		select {
		case <-done:
			t.Fatal("ColdStart returned while its pods were still there")
		default:
		}
		if gone {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for seen := podLists(); podLists() < seen+2; {
		select {
		case <-done:
			t.Fatal("ColdStart returned while its pods were still there")
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
	if pods := finish(); pods != n {
		t.Errorf("%d pods held, want %d", pods, n)
	}
	out := <-done
	for i, a := range out {
		if a.Step == nil || a.Step.TeardownNS <= 0 {
			t.Errorf("instance %d: step %+v, want a teardown time", i, a.Step)
		}
	}
}

// The pods the garbage collector deletes with their service would drain for
// their whole grace period (Knative's queue-proxy: 30 s at least): the
// teardown shortens it to hurryGrace, for its own services' terminating
// pods only, each delete bound to the pod's UID.
func TestTeardownShortensTheGracePeriodOfItsTerminatingPods(t *testing.T) {
	l := newLab(t, labOptions{})
	podsGVR := corev1.SchemeGroupVersion.WithResource("pods")
	thirty := int64(30)
	// A pod of another service of the experiment, draining: not the
	// teardown's to hurry.
	now := metav1.Now()
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other-00001-deployment-1", Namespace: l.ns, UID: "uid-other",
		Labels:            map[string]string{bench.LabelExperiment: l.id, LabelService: "other", LabelRevision: "other-00001"},
		DeletionTimestamp: &now, DeletionGracePeriodSeconds: &thirty}}
	if err := l.kube.Tracker().Add(other); err != nil {
		t.Fatal(err)
	}
	k := l.drainingKubelet()
	const n = 3
	done := make(chan []results.Attempt)
	go func() { done <- l.s.ColdStart(context.Background(), l.cell(n, 0, 10*time.Second)) }()
	var out []results.Attempt
	select {
	case out = <-done:
	case <-time.After(time.Minute): // a hang guard: without the hurry the pods never go
		t.Fatal("ColdStart still tearing down after a minute: the draining pods were not hurried")
	}
	for i, a := range out {
		checkCold(t, a, l, i, l.name(n, 0, i))
	}
	k.check(t, n, other.Name)
	if _, err := l.kube.Tracker().Get(podsGVR, l.ns, other.Name); err != nil {
		t.Errorf("the other service's pod: %v", err)
	}
}

// drainingKubelet plays the API server and kubelet for pod deletes: one
// with the default grace period starts a 30 s drain that never ends here
// (the pod is marked terminating), one with hurryGrace or less ends it at
// once (the pod is deleted) and is recorded.
type drainingKubelet struct {
	mu      sync.Mutex
	hurried []clienttesting.DeleteAction
}

func (l *lab) drainingKubelet() *drainingKubelet {
	k := &drainingKubelet{}
	podsGVR := corev1.SchemeGroupVersion.WithResource("pods")
	thirty := int64(30)
	l.kube.PrependReactor("delete", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		d := a.(clienttesting.DeleteAction)
		if g := d.GetDeleteOptions().GracePeriodSeconds; g != nil && *g <= hurryGrace {
			k.mu.Lock()
			k.hurried = append(k.hurried, d)
			k.mu.Unlock()
			return false, nil, nil // the default reaction deletes it
		}
		o, err := l.kube.Tracker().Get(podsGVR, l.ns, d.GetName())
		if err != nil {
			return true, nil, err
		}
		p := o.(*corev1.Pod).DeepCopy()
		ts := metav1.Now()
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &thirty
		return true, nil, l.kube.Tracker().Update(podsGVR, p, l.ns)
	})
	return k
}

// check fails t unless n pods were hurried, each once, bound to its UID,
// none of them named in not.
func (k *drainingKubelet) check(t *testing.T, n int, not ...string) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.hurried) != n {
		t.Errorf("%d pods hurried, want %d", len(k.hurried), n)
	}
	for _, d := range k.hurried {
		if slices.Contains(not, d.GetName()) {
			t.Errorf("%s hurried, a pod of a service not being torn down", d.GetName())
		}
		if pre := d.GetDeleteOptions().Preconditions; pre == nil || pre.UID == nil || *pre.UID != types.UID("uid-"+d.GetName()) {
			t.Errorf("delete of %s: preconditions %+v, want its UID", d.GetName(), pre)
		}
	}
}

// Ctrl-C while the API server refuses every delete: the teardown stops at
// once, and the session's Close (its own context) removes what is left.
func TestTeardownStopsAtTheInterruptAndCloseRemovesTheRest(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accept := l.interruptAtFirstDelete(cancel)
	t.Cleanup(accept) // also when failing: Close's clean would retry
	done := make(chan []results.Attempt)
	go func() { done <- l.s.ColdStart(ctx, l.cell(2, 0, 10*time.Second)) }()
	var out []results.Attempt
	select {
	case out = <-done:
	case <-time.After(time.Minute): // a hang guard, not a measure of promptness
		t.Fatal("ColdStart still tearing down a minute after the interrupt")
	}
	for i, a := range out {
		checkCold(t, a, l, i, l.name(2, 0, i)) // measured before the interrupt: it stands
	}
	if !l.exists(l.name(2, 0, 0)) && !l.exists(l.name(2, 0, 1)) {
		t.Fatal("every service gone: the interrupt came too late to test anything")
	}
	accept()
	l.closeSession()
	l.checkGone(t, 2, 0)
}

// Clean (Close, `coldbench clean`) rides out an overloaded API server:
// lists and deletes that fail transiently are retried within its bound.
func TestCleanRetriesAnOverloadedAPIServer(t *testing.T) {
	l := newLab(t, labOptions{protocol: ProtocolClassic})
	out := l.coldStart(l.cell(2, 0, 10*time.Second)) // classic: its services stay
	checkCold(t, out[0], l, 0, l.name(2, 0, 0))
	var mu sync.Mutex
	failures := map[string]int{"list": 0, "delete": 0}
	for verb := range failures {
		l.dyn.PrependReactor(verb, "services", func(clienttesting.Action) (bool, runtime.Object, error) {
			mu.Lock()
			defer mu.Unlock()
			if failures[verb] < 2 {
				failures[verb]++
				return true, nil, overloaded[failures[verb]-1]
			}
			return false, nil, nil
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := l.p.Clean(ctx, l.id)
	if err != nil || n != 2 {
		t.Fatalf("Clean = %d, %v; want the 2 services despite the overloaded API server", n, err)
	}
	l.checkGone(t, 2, 0)
}

// Clean, too, does not wait for the drain of the pods it deleted.
func TestCleanShortensTheGracePeriodOfThePodsItDeleted(t *testing.T) {
	l := newLab(t, labOptions{protocol: ProtocolClassic})
	out := l.coldStart(l.cell(2, 0, 10*time.Second)) // classic: services and pods stay
	checkCold(t, out[0], l, 0, l.name(2, 0, 0))
	k := l.drainingKubelet()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard: the drain never ends here
	defer cancel()
	if n, err := l.p.Clean(ctx, l.id); err != nil || n != 2 {
		t.Fatalf("Clean = %d, %v; want the 2 services, their draining pods hurried", n, err)
	}
	k.check(t, 2)
}

// What a run whose clean-up failed reports: the experiment's ksvcs and
// pods, and the flags that make `coldbench clean` find them.
func TestLeftoversListsTheExperimentsServicesAndPods(t *testing.T) {
	l := newLab(t, labOptions{protocol: ProtocolClassic})
	out := l.coldStart(l.cell(2, 0, 10*time.Second)) // classic: services and pods stay
	checkCold(t, out[0], l, 0, l.name(2, 0, 0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	left, err := l.p.Leftovers(ctx, l.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0].Kind != "ksvc" || left[0].Count != 2 || left[0].Names[0] != l.name(2, 0, 0) ||
		left[1].Kind != "pod" || left[1].Count != 2 {
		t.Errorf("leftovers %+v, want the 2 ksvcs and their 2 pods", left)
	}
	if other, err := l.p.Leftovers(ctx, "cb-1-ffff"); err != nil || other[0].Count+other[1].Count != 0 {
		t.Errorf("another experiment's leftovers: %+v, %v; want none", other, err)
	}
	if f := strings.Join(l.p.CleanFlags(), " "); f != "--platform knative --namespace "+l.ns {
		t.Errorf("clean flags %q", f)
	}
}

// interruptAtFirstDelete makes the API server refuse every ksvc delete as
// overloaded (429), cancelling the run at the first (Ctrl-C while the
// server is overloaded), until accept is called.
func (l *lab) interruptAtFirstDelete(cancel context.CancelFunc) (accept func()) {
	var mu sync.Mutex
	refusing := true
	l.dyn.PrependReactor("delete", "services", func(clienttesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if refusing {
			cancel()
			return true, nil, apierrors.NewTooManyRequests("overloaded", 1)
		}
		return false, nil, nil
	})
	return func() { mu.Lock(); refusing = false; mu.Unlock() }
}
