package knative

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/coldbench/coldbench/pkg/bench"
)

// maxDeletesInFlight bounds the ksvc deletions sent at once (a cell's
// teardown, Clean). The API server is the bottleneck, not this side: each
// foreground delete is a write that starts a cascade the garbage collector
// and Knative's controllers carry out through the same API server. A
// handful in flight already keeps the server busy (a delete is one etcd
// write); hundreds would only queue on the server (API Priority and Fairness
// gives one client a few seats before answering 429), crowd out the
// controllers doing the actual removal, and turn slow answers into timeouts
// that are retried, which is more work still. Sequential would waste the
// round trips: 250 services at 1 s each under load is four minutes.
const maxDeletesInFlight = 16

// deleteCallTimeout bounds one delete request: the API server's own request
// timeout (60 s by default), so that a slow server still gets to answer, but
// a connection that died without a word does not hold a slot for ever.
const deleteCallTimeout = time.Minute

// deleteBackoff is the wait between tries of one deletion: 200 ms doubled up
// to 10 s, then 10 s for as long as the context lives, with jitter so that
// the deletions refused together (429) do not come back together. client-go
// has already retried a 429 that carried Retry-After (up to 10 times).
var deleteBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.5, Cap: 10 * time.Second, Steps: math.MaxInt32}

// hurryGrace is the grace period, in seconds, the teardown leaves a pod the
// garbage collector is deleting with its service. Knative's queue-proxy
// waits 30 s after SIGTERM before it stops (drainSleepDuration, so that
// load balancers notice it leaving), and the pod's grace period is the
// revision's request timeout (300 s). After a cell's replies nothing is sent
// to its pods, so the drain protects no request: waiting for it made every
// fresh cell's teardown last at least 30 s, and a step of N = 100 minutes.
// 1, not 0: a grace period of 0 deletes the object at once while the
// kubelet may still be stopping its containers, and "the pods are gone"
// would no longer mean the node is quiet.
const hurryGrace int64 = 1

// progressEvery is how often a long teardown or clean says what it waits for.
const progressEvery = 30 * time.Second

// retryable reports whether a failed delete or list is worth trying again:
// the API server is unreachable, overloaded (429, 5xx, its own timeouts) or
// our call timed out (deleteCallTimeout) while the caller's ctx lives.
func retryable(ctx context.Context, err error) bool {
	if transient(err) || apierrors.IsConflict(err) {
		return true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code >= 500 {
		return true
	}
	return ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded)
}

// notServedPatience is how long a delete answered by a 404 that names no
// object (objectGone) is retried: an API server that has just started
// serves custom resources within seconds; one that still answers so after
// two minutes does not serve ksvcs at all.
var notServedPatience = 2 * time.Minute

// objectGone says whether err is the API server's word that the object name
// does not exist. A 404 that does not name the object, or that client-go
// made up from a reply that was not a status of the server's (the cause
// UnexpectedServerResponse), says instead that the server does not serve
// the resource (yet): right after it starts, an API server can answer a
// custom resource's requests with a bare 404 while its caches fill
// (kubernetes/kubernetes#115241). Taken for "gone", such an answer once left
// a ksvc in place and a teardown waiting for it (CI, an API server
// restart).
func objectGone(err error, name string) bool {
	var st apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	if d == nil || d.Name != name {
		return false
	}
	for _, c := range d.Causes {
		if c.Type == metav1.CauseTypeUnexpectedServerResponse {
			return false
		}
	}
	return true
}

// notServedClock is when the deletions of one call first met a 404 that
// names no object: the patience is the call's, not each deletion's (a
// server that does not serve ksvcs would otherwise hold every one of
// hundreds of deletions for notServedPatience, maxDeletesInFlight at a time).
type notServedClock struct {
	mu    sync.Mutex
	since time.Time
}

// patient says whether a 404 that names no object met now is still within
// notServedPatience of the first.
func (c *notServedClock) patient() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since.IsZero() {
		c.since = time.Now()
	}
	return time.Since(c.since) < notServedPatience
}

// deleteService deletes the ksvc name with foreground propagation (see
// Clean for why), retrying what retryable accepts until ctx ends. Gone
// already is success; a 404 that names no object is retried while ns is
// patient (objectGone).
func deleteService(ctx context.Context, svcs dynamic.ResourceInterface, name string, ns *notServedClock) error {
	fg := metav1.DeletePropagationForeground
	tries := 0
	var last, out error
	werr := deleteBackoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		tries++
		cctx, cancel := context.WithTimeout(ctx, deleteCallTimeout)
		err := svcs.Delete(cctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
		cancel()
		switch {
		case err == nil || objectGone(err, name):
			return true, nil
		case apierrors.IsNotFound(err):
			if ns.patient() {
				last = err
				return false, nil
			}
			out = fmt.Errorf("deleting ksvc %q: the API server answers 404 without naming the ksvc, for %v now (does it serve ksvcs?): %w",
				name, notServedPatience, err)
			return true, nil
		case retryable(ctx, err):
			last = err
			return false, nil
		}
		out = fmt.Errorf("deleting ksvc %q: %w", name, err)
		return true, nil
	})
	if werr != nil {
		if last == nil {
			last = werr
		}
		return fmt.Errorf("deleting ksvc %q: %w (tried %d times until %v)", name, last, tries, werr)
	}
	return out
}

// deleteServices deletes every named ksvc, maxDeletesInFlight at a time,
// each retried until ctx ends. pending counts those not yet accepted,
// failed ones included (for progress messages). It returns the deletions that failed, by name.
func deleteServices(ctx context.Context, svcs dynamic.ResourceInterface, names []string, pending *atomic.Int64) map[string]error {
	pending.Store(int64(len(names)))
	var (
		mu     sync.Mutex
		failed = map[string]error{}
		wg     sync.WaitGroup
	)
	slots := make(chan struct{}, maxDeletesInFlight)
	ns := &notServedClock{}
	for _, name := range names {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			mu.Lock()
			failed[name] = fmt.Errorf("deleting ksvc %q: not sent: %w", name, ctx.Err())
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			err := deleteService(ctx, svcs, name, ns)
			if err == nil {
				pending.Add(-1)
			}
			if err != nil {
				mu.Lock()
				failed[name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// teardown removes the cell's services this experiment created (ts; the
// others are not ours or were never made) and returns once they are gone
// and so are their pods, so that the next cell starts on a quiet node. Only
// ctx (the run's: Ctrl-C) or a deletion the API server refuses for good
// (forbidden, say) stops it early; Session.Close's Clean then removes what
// is left. "Gone" is: the session's watches saw the ksvc deleted (with
// foreground propagation, after its revisions, Deployments, ReplicaSets and
// pods), then a list of the experiment's pods, the API server's word and
// not a watch that may lag, shows none of these services' pods, terminating
// ones included.
func (s *session) teardown(ctx context.Context, ts []target) error {
	var names []string
	for _, t := range ts {
		if t.owned {
			names = append(names, t.name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	w := &teardownWait{s: s, names: names}
	w.pods.Store(-1)
	stopProgress := w.progress(ctx)
	defer stopProgress()
	stopHurry := w.hurry(ctx)
	defer stopHurry()
	svcs := s.dyn.Resource(ServiceGVR).Namespace(s.spec.Namespace)
	failed := deleteServices(ctx, svcs, names, &w.pending)
	stopRedelete := w.redelete(ctx, svcs, failed)
	defer stopRedelete()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(failed)) {
		errs = append(errs, failed[name])
	}
	// Woken by the watches at every change: no polling of an API server
	// that is likely busy already.
	if err := s.tr.waitFor(ctx, func() bool { return len(w.servicesLeft(failed)) == 0 }); err != nil {
		left := w.servicesLeft(failed)
		return errors.Join(append(errs, fmt.Errorf("waiting for %d ksvc(s) to go (%s): %w", len(left), strings.Join(firstOf(left, 3), ", "), err))...)
	}
	if err := w.waitPodsGone(ctx, failed); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// teardownWait is what one teardown waits for.
type teardownWait struct {
	s       *session
	names   []string
	pending atomic.Int64 // deletions not yet accepted
	pods    atomic.Int64 // pods left at the last list; -1: not listed yet
	// warned: the pods named stuck terminating (stuck.go), each once. The
	// progress goroutine's alone.
	warned map[types.UID]bool
	// graces: per terminating pod, the grace period it was last seen with
	// and since when (stuck.go): the hurry shortens it after the fact.
	graces map[types.UID]graceSeen
}

// ours is the set of the torn-down services' names.
func (w *teardownWait) ours() map[string]bool {
	ours := make(map[string]bool, len(w.names))
	for _, name := range w.names {
		ours[name] = true
	}
	return ours
}

// servicesLeft lists the services the watches still see, but those in
// skip (deletions that failed).
func (w *teardownWait) servicesLeft(skip map[string]error) []string {
	var left []string
	for _, name := range w.names {
		if skip[name] != nil {
			continue
		}
		if _, ok := w.s.tr.service(w.s.spec.Namespace, name); ok {
			left = append(left, name)
		}
	}
	return left
}

// waitPodsGone lists the experiment's pods until none of the torn-down
// services' is left. The ksvcs are gone by then, so after foreground
// deletion the first list usually finds none.
func (w *teardownWait) waitPodsGone(ctx context.Context, failed map[string]error) error {
	ours := map[string]bool{}
	for _, name := range w.names {
		ours[name] = failed[name] == nil
	}
	sel := bench.LabelExperiment + "=" + w.s.id + "," + LabelService
	pods := w.s.kube.CoreV1().Pods(w.s.spec.Namespace)
	var left []string
	err := poll(ctx, time.Second, func(ctx context.Context) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err() // poll's first call does not look
		}
		pl, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			if retryable(ctx, err) {
				return false, nil
			}
			return false, fmt.Errorf("listing the pods of the torn-down ksvcs: %w", err)
		}
		left = left[:0]
		for _, p := range pl.Items {
			if ours[p.Labels[LabelService]] {
				left = append(left, p.Name)
			}
		}
		w.pods.Store(int64(len(left)))
		return len(left) == 0, nil
	})
	if err != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("waiting for %d pod(s) of the torn-down ksvcs to go (%s): %w", len(left), strings.Join(firstOf(left, 3), ", "), err)
	}
	return err
}

// redeleteAfter is how long after its delete was accepted a ksvc the
// watches still show without a deletion timestamp is looked at again. A
// foreground delete marks the ksvc at once, so one the API server still
// shows unmarked after that long was not deleted (a lost answer, an API
// server that had just restarted); waiting on would wait for ever. The
// wait doubles after each look (up to 8×): a watch far behind under load
// costs a few reads, not a stream of deletes.
var redeleteAfter = 20 * time.Second

// redelete deletes again, from redeleteAfter on until stop is called, the
// torn-down services the watches show unmarked and a read from the API
// server confirms unmarked, but those in skip (deletions that failed for
// good).
func (w *teardownWait) redelete(ctx context.Context, svcs dynamic.ResourceInterface, skip map[string]error) (stop func()) {
	accepted := time.Now()
	return inBackground(ctx, func(ctx context.Context) {
		wait := redeleteAfter
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 8*redeleteAfter)
			var todo []string
			for _, name := range w.servicesLeft(skip) {
				if svc, ok := w.s.tr.service(w.s.spec.Namespace, name); !ok || svc.GetDeletionTimestamp() != nil {
					continue
				}
				cctx, ccancel := context.WithTimeout(ctx, deleteCallTimeout)
				svc, err := svcs.Get(cctx, name, metav1.GetOptions{})
				ccancel()
				if err == nil && svc.GetDeletionTimestamp() == nil {
					todo = append(todo, name)
				}
			}
			if len(todo) == 0 {
				continue
			}
			w.s.log.Warn("teardown: ksvc(s) still not being deleted after their delete was accepted; deleting them again",
				"namespace", w.s.spec.Namespace, "ksvcs", len(todo), "some", strings.Join(firstOf(todo, 3), ","),
				"accepted_ago", time.Since(accepted).Round(time.Second))
			var pending atomic.Int64
			for name, err := range deleteServices(ctx, svcs, todo, &pending) {
				if ctx.Err() == nil {
					w.s.log.Warn("teardown: deleting a ksvc again failed", "ksvc", name, "err", err)
				}
			}
		}
	})
}

// hurry shortens, to hurryGrace, the grace period of the torn-down
// services' pods that are being deleted, from now until stop is called.
func (w *teardownWait) hurry(ctx context.Context) (stop func()) {
	return inBackground(ctx, func(ctx context.Context) {
		ours := w.ours()
		pods := w.s.kube.CoreV1().Pods(w.s.spec.Namespace)
		sent := map[types.UID]bool{}
		for {
			var todo []*corev1.Pod
			if w.s.tr.waitFor(ctx, func() bool {
				todo = w.s.tr.draining(ours, sent)
				return len(todo) > 0
			}) != nil {
				return
			}
			for _, p := range todo {
				sent[p.UID] = true
			}
			shortenGrace(ctx, pods, todo, w.s.log)
		}
	})
}

// inBackground runs f in a goroutine until stop is called: stop cancels
// f's context and returns once f has.
func inBackground(ctx context.Context, f func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f(ctx) }()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// draining says whether p is being deleted with a grace period longer than
// hurryGrace. Only such pods are hurried: the garbage collector deletes a
// service's pods once their ReplicaSet is being deleted, while deleting a
// live pod could have its ReplicaSet start a new one.
func draining(p *corev1.Pod) bool {
	if p.DeletionTimestamp == nil {
		return false
	}
	g := p.DeletionGracePeriodSeconds
	return g == nil || *g > hurryGrace
}

// shortenGrace deletes each pod again with the grace period hurryGrace,
// bound to its UID, maxDeletesInFlight at a time. A delete that fails is not
// retried: that pod then only takes its full grace period to go.
func shortenGrace(ctx context.Context, pods typedcorev1.PodInterface, todo []*corev1.Pod, log *slog.Logger) {
	grace := hurryGrace
	slots := make(chan struct{}, maxDeletesInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range todo {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, deleteCallTimeout)
			defer cancel()
			uid := p.UID
			err := pods.Delete(cctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
				log.Debug("shortening a deleted pod's grace period", "pod", p.Name, "err", err)
			}
		}()
	}
}

// progress logs, every progressEvery until stop is called, what the
// teardown still waits for, naming first the pods stuck terminating (see
// stuck). ctx bounds the reading of their events.
func (w *teardownWait) progress(ctx context.Context) (stop func()) {
	return inBackground(ctx, func(ctx context.Context) {
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			w.report(ctx)
		}
	})
}

// report is one tick of progress: the warnings about pods newly found stuck
// terminating, then the progress line.
func (w *teardownWait) report(ctx context.Context) {
	stuck := w.stuck(ctx)
	left := w.servicesLeft(nil)
	attrs := []any{"namespace", w.s.spec.Namespace, "ksvcs", len(w.names), "deletes_not_yet_accepted", w.pending.Load(),
		"ksvcs_left", len(left), "some", strings.Join(firstOf(left, 3), ",")}
	// Whether what is left is being deleted, and what holds it: a ksvc
	// nobody deleted (redelete) and one the garbage collector or a
	// finalizer's controller does not finish are different failures.
	unmarked, holds := 0, map[string]bool{}
	for _, name := range left {
		svc, ok := w.s.tr.service(w.s.spec.Namespace, name)
		if !ok {
			continue
		}
		if svc.GetDeletionTimestamp() == nil {
			unmarked++
		}
		for _, f := range svc.GetFinalizers() {
			holds[f] = true
		}
	}
	if len(left) > 0 {
		attrs = append(attrs, "not_marked_deleted", unmarked, "finalizers", strings.Join(slices.Sorted(maps.Keys(holds)), ","))
	}
	if n := w.pods.Load(); n >= 0 {
		attrs = append(attrs, "pods_left", n)
	}
	if stuck > 0 {
		attrs = append(attrs, "stuck_terminating", stuck)
	}
	w.s.log.Info("teardown: waiting for the cell's services and their pods to go", attrs...)
}

// firstOf is up to n of names, for messages.
func firstOf(names []string, n int) []string {
	if len(names) > n {
		return append(names[:n:n], fmt.Sprintf("… %d more", len(names)-n))
	}
	return names
}
