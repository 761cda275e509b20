package knative

// Pods a teardown waits for that their node can no longer stop: named, once
// each, with the kubelet's word on them, so that a user tells them from a
// slow cascade.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// stuckMargin is how long past its grace period a pod of a teardown may
// stay terminating before the teardown names it as stuck. After the grace
// period the kubelet kills the pod's containers and stops its sandbox; each
// of these CRI calls is bounded by the kubelet's runtime-request-timeout,
// 2 min by default, and one that fails or times out is retried at the
// pod's next sync, after a FailedKillPod event. A pod still there past its
// grace period plus 3 min has had at least one such call time out, and the
// kubelet's event for it is written by then. Such a pod is not always
// stuck for good: on the lab at N = 100 with gVisor, an overloaded runtime
// timed out kills that later succeeded, while a shim hung on a sandbox whose
// start had been cut never answered again until it was killed. The warning
// says what the kubelet said and claims no more.
const stuckMargin = 3 * time.Minute

// eventsListTimeout bounds the one List of events of a progress tick: the
// events only add to a warning, and the progress line waits for them.
const eventsListTimeout = 10 * time.Second

// stuckWarning is the teardown's warning about a pod stuck terminating (said
// once per pod). On Ctrl-C the teardown returns at once; the session's Close
// then runs Clean, which waits for the pods too (up to cleanWait), and
// closeRun (internal/cli) prints what is left and the `coldbench clean`
// command when that clean-up fails.
var stuckWarning = fmt.Sprintf("teardown: a pod is still terminating long past its grace period (kubelet_event: the kubelet's "+
	"latest word on it, if any; FailedKillPod: the node's container runtime did not stop it in time, overloaded or hung); coldbench keeps waiting for it "+
	"(said once per pod); Ctrl-C stops the wait, then the run's clean-up waits up to %v more and, if the pod is still there, "+
	"prints the `coldbench clean` command", cleanWait)

// terminatingPod is a pod being deleted, and since when the tracker has
// seen it so (the tracker's clock).
type terminatingPod struct {
	pod   *corev1.Pod
	since time.Time
}

// terminating lists the pods of the services in svcs the watch shows being
// deleted, oldest first, each with when the tracker first saw it so. A pod
// the tracker's timelines do not show terminating yet (its event is being
// handled) is left for the next call.
func (t *tracker) terminating(svcs map[string]bool) []terminatingPod {
	if t.podStore == nil {
		return nil
	}
	var pods []*corev1.Pod
	for _, o := range t.podStore.List() {
		if p, ok := o.(*corev1.Pod); ok && svcs[p.Labels[LabelService]] && p.DeletionTimestamp != nil {
			pods = append(pods, p)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []terminatingPod
	for _, p := range pods {
		r := t.revs[p.Labels[LabelRevision]]
		if r == nil {
			continue
		}
		for _, pt := range r.pods {
			if pt.name == p.Name && pt.uid == string(p.UID) && !pt.terminating.IsZero() {
				out = append(out, terminatingPod{pod: p, since: pt.terminating})
			}
		}
	}
	slices.SortFunc(out, func(a, b terminatingPod) int {
		if c := a.since.Compare(b.since); c != 0 {
			return c
		}
		return cmp.Compare(a.pod.Name, b.pod.Name)
	})
	return out
}

// graceSeen is a terminating pod's grace period and since when the
// teardown has seen it with that one.
type graceSeen struct {
	grace time.Duration
	since time.Time
}

// gracePeriod is the grace period p is being deleted with (the hurry's,
// hurryGrace, once shortened).
func gracePeriod(p *corev1.Pod) time.Duration {
	if g := p.DeletionGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 0
}

// stuck counts the torn-down services' pods that have been terminating for
// longer than their grace period plus stuckMargin (on the tracker's clock)
// and warns about each, once, with its node and the kubelet's latest event
// about it. The events are read with one List at most, and only when a pod
// not named yet is past the bound: the normal path reads nothing but the
// tracker's cache.
func (w *teardownWait) stuck(ctx context.Context) int {
	now := w.s.tr.now()
	n := 0
	var fresh []terminatingPod
	if w.graces == nil {
		w.graces = map[types.UID]graceSeen{}
	}
	for _, tp := range w.s.tr.terminating(w.ours()) {
		// The bound runs from when the pod got the grace period it has
		// now: a pod seen terminating with Knative's 300 s and hurried to
		// 1 s later has had its 1 s only since then.
		grace := gracePeriod(tp.pod)
		g, ok := w.graces[tp.pod.UID]
		if !ok {
			g = graceSeen{grace: grace, since: tp.since}
		} else if g.grace != grace {
			g = graceSeen{grace: grace, since: now}
		}
		w.graces[tp.pod.UID] = g
		if now.Sub(g.since) <= grace+stuckMargin {
			continue
		}
		n++
		if !w.warned[tp.pod.UID] {
			fresh = append(fresh, tp)
		}
	}
	if len(fresh) == 0 {
		return n
	}
	events, listed := w.kubeletEvents(ctx, fresh)
	for _, tp := range fresh {
		if w.warned == nil {
			w.warned = map[types.UID]bool{}
		}
		w.warned[tp.pod.UID] = true
		attrs := []any{"namespace", w.s.spec.Namespace, "pod", tp.pod.Name, "node", tp.pod.Spec.NodeName,
			"terminating_for", now.Sub(tp.since).Round(time.Second), "grace_period", gracePeriod(tp.pod)}
		switch e := events[tp.pod.UID]; {
		case e != nil:
			attrs = append(attrs, "kubelet_event", e.Reason, "kubelet_event_message", e.Message)
			if e.Count > 1 {
				attrs = append(attrs, "kubelet_event_count", e.Count)
			}
		case listed:
			attrs = append(attrs, "kubelet_event", "none")
		}
		w.s.log.Warn(stuckWarning, attrs...)
	}
	return n
}

// kubeletEvents is the kubelet's latest event about each of pods, by UID,
// read with one List of the namespace's core/v1 events: by the pod's UID
// for one pod, else every pod's events (a rare path: several pods stuck at
// once), matched here. core/v1, not events.k8s.io/v1: the kubelet records
// its events with the core/v1 recorder (source.component "kubelet", count
// and lastTimestamp as it wrote them), and involvedObject.uid is the field
// selector kubectl describe uses. listed is false when the List failed: an
// error here is logged at debug level and ignored, the warning goes out
// without the event.
func (w *teardownWait) kubeletEvents(ctx context.Context, pods []terminatingPod) (latest map[types.UID]*corev1.Event, listed bool) {
	want := map[types.UID]bool{}
	for _, tp := range pods {
		want[tp.pod.UID] = true
	}
	sel := "involvedObject.kind=Pod"
	if len(pods) == 1 {
		sel = "involvedObject.uid=" + string(pods[0].pod.UID)
	}
	ctx, cancel := context.WithTimeout(ctx, eventsListTimeout)
	defer cancel()
	el, err := w.s.kube.CoreV1().Events(w.s.spec.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		w.s.log.Debug("teardown: reading the events of pods stuck terminating (ignored)", "field_selector", sel, "err", err)
		return nil, false
	}
	latest = map[types.UID]*corev1.Event{}
	for i := range el.Items {
		e := &el.Items[i]
		uid := e.InvolvedObject.UID
		if !want[uid] || (e.Source.Component != "kubelet" && e.ReportingController != "kubelet") {
			continue
		}
		if cur := latest[uid]; cur == nil || eventTime(e).After(eventTime(cur)) {
			latest[uid] = e
		}
	}
	return latest, true
}

// eventTime is when e was last seen: a repeated event's lastTimestamp (or
// its series' last observation), else when it was first recorded.
func eventTime(e *corev1.Event) time.Time {
	t := e.LastTimestamp.Time
	if e.Series != nil && e.Series.LastObservedTime.After(t) {
		t = e.Series.LastObservedTime.Time
	}
	for _, o := range []time.Time{e.EventTime.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
		if t.IsZero() {
			t = o
		}
	}
	return t
}
