package knative

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// Milestones of a pod, first seen locally (condition times have 1 s
// resolution; informer events carry none, so coldbench stamps them itself).
const (
	PhaseDeploymentScaled = results.PhaseDeploymentScaled
	PhasePodCreated       = results.PhasePodCreated
	PhasePodScheduled     = results.PhasePodScheduled
	PhaseSandboxReady     = results.PhaseSandboxReady
	PhaseQPStarted        = "queue_proxy_started"
	PhaseUserStarted      = "user_container_started"
	PhaseQPReady          = "queue_proxy_ready"
	PhaseUserReady        = "user_container_ready"
	PhasePodReady         = "pod_ready"
)

// podTimeline is what was seen of one pod.
type podTimeline struct {
	name    string
	uid     string // the pod's, and node once scheduled: where its node agent finds it
	node    string
	created time.Time // first event seen
	seen    map[string]time.Time
	// terminating: the deletion was asked for (deletionTimestamp seen). The
	// pod drains for a while and still answers requests (Knative's
	// queue-proxy keeps serving while it drains): it is not gone yet.
	terminating time.Time
	gone        time.Time // the pod object deleted: its containers are gone
	// Latest failure of its containers observed (image pull error, crash).
	failClass, failMsg string
	// unschedAt: when the watch first showed the scheduler's PodScheduled
	// False/Unschedulable condition; unschedMsg: its latest message (e.g.
	// "0/1 nodes are available: 1 Insufficient cpu.").
	unschedAt  time.Time
	unschedMsg string
	// failedAt: when the watch first showed the pod itself Failed with a
	// reason (the kubelet refused it at admission: OutOfcpu, OutOfpods,
	// …; or evicted it); failedMsg is "reason: message". The kubelet then
	// marks its containers terminated too (exit 137, ContainerStatusUnknown):
	// consequences, so the pod's reason is the cause that is recorded.
	failedAt  time.Time
	failedMsg string
}

// noRoom says the pod failed because its node had no room for it: the
// kubelet's admission refused it (reason OutOf<resource>), which it does
// when its own accounting disagrees with the scheduler's.
func (p *podTimeline) noRoom() bool {
	return !p.failedAt.IsZero() && strings.HasPrefix(p.failedMsg, "OutOf")
}

// failure is the pod's reason for never answering, and its class: the pod
// Failed (no room on its node: not_scheduled; else platform), its
// containers' failure, or the scheduler finding no room for it while it
// is still unscheduled (once scheduled, that wait is over: not a failure).
func (p *podTimeline) failure() (class, msg string) {
	_, scheduled := p.seen[PhasePodScheduled]
	switch {
	case p.noRoom():
		return results.ErrNotScheduled, "pod " + p.name + " refused by its node: " + p.failedMsg
	case !p.failedAt.IsZero():
		return results.ErrPlatform, "pod " + p.name + " failed: " + p.failedMsg
	case p.failClass != "":
		return p.failClass, p.failMsg
	case !scheduled && p.unschedMsg != "":
		return results.ErrNotScheduled, p.unschedMsg
	}
	return "", ""
}

// revTimeline is what was seen of one revision's deployment and pods.
type revTimeline struct {
	replicas int32
	scaledUp []time.Time // each 0 -> >0 of the deployment's spec.replicas
	pods     []*podTimeline
	// Deployment-level failure (e.g. ReplicaFailure: RuntimeClass missing).
	failMsg string
}

// tracker watches one experiment's services, deployments and pods with
// informers (list+watch, re-listing on watch errors) and stamps what it sees.
type tracker struct {
	mu      sync.Mutex
	revs    map[string]*revTimeline
	changed chan struct{} // closed and replaced on every event
	now     func() time.Time

	svcLister cache.GenericLister
	podStore  cache.Store // the pods as last seen, for the teardown
	stop      chan struct{}
}

func newTracker() *tracker {
	return &tracker{revs: map[string]*revTimeline{}, changed: make(chan struct{}), now: time.Now}
}

// start runs informers on namespace ns for experiment id and waits for
// their caches.
func (t *tracker) start(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, ns, id string) error {
	sel := bench.LabelExperiment + "=" + id
	t.stop = make(chan struct{})
	pods, deps, svcInf := trackerInformers(kube, dyn, ns, sel) // watch.go: they ride out API server restarts
	pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.onPod(o, false) },
		UpdateFunc: func(_, o any) { t.onPod(o, false) },
		DeleteFunc: func(o any) { t.onPod(o, true) },
	})
	deps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.onDeployment(o) },
		UpdateFunc: func(_, o any) { t.onDeployment(o) },
	})
	svcInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { t.notify() },
		UpdateFunc: func(_, _ any) { t.notify() },
		DeleteFunc: func(any) { t.notify() },
	})
	t.svcLister = cache.NewGenericLister(svcInf.GetIndexer(), ServiceGVR.GroupResource())
	t.podStore = pods.GetStore()
	for _, inf := range []cache.SharedIndexInformer{pods, deps, svcInf} {
		go inf.Run(t.stop)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(sctx.Done(), pods.HasSynced, deps.HasSynced, svcInf.HasSynced) {
		close(t.stop)
		return fmt.Errorf("watching pods, deployments and ksvcs in namespace %q: caches did not sync", ns)
	}
	return nil
}

func (t *tracker) close() {
	if t.stop != nil {
		close(t.stop)
		t.stop = nil
	}
}

func (t *tracker) notify() {
	t.mu.Lock()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// waitFor blocks until cond (called under no lock) holds or ctx ends.
func (t *tracker) waitFor(ctx context.Context, cond func() bool) error {
	for { // not wait.Poll*: woken by the watches' changes, which wait's timers cannot do
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-time.After(time.Second): // cond may depend on time too
		}
	}
}

func (t *tracker) rev(name string) *revTimeline {
	r := t.revs[name]
	if r == nil {
		r = &revTimeline{}
		t.revs[name] = r
	}
	return r
}

func (t *tracker) onDeployment(o any) {
	d, ok := o.(*appsv1.Deployment)
	if !ok {
		return
	}
	rev := d.Labels[LabelRevision]
	if rev == "" {
		return
	}
	now := t.now()
	var replicas int32 = 1
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	t.mu.Lock()
	r := t.rev(rev)
	if r.replicas == 0 && replicas > 0 {
		r.scaledUp = append(r.scaledUp, now)
	}
	r.replicas = replicas
	r.failMsg = ""
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			r.failMsg = c.Reason + ": " + c.Message
		}
	}
	t.mu.Unlock()
	t.notify()
}

func (t *tracker) onPod(o any, deleted bool) {
	if tomb, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = tomb.Obj
	}
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	rev := p.Labels[LabelRevision]
	if rev == "" {
		return
	}
	now := t.now()
	t.mu.Lock()
	r := t.rev(rev)
	var pt *podTimeline
	for _, x := range r.pods {
		if x.name == p.Name {
			pt = x
		}
	}
	if pt == nil {
		pt = &podTimeline{name: p.Name, created: now, seen: map[string]time.Time{PhasePodCreated: now}}
		r.pods = append(r.pods, pt)
	}
	pt.uid = string(p.UID)
	if p.Spec.NodeName != "" {
		pt.node = p.Spec.NodeName
	}
	if (deleted || p.DeletionTimestamp != nil) && pt.terminating.IsZero() {
		pt.terminating = now
	}
	if deleted && pt.gone.IsZero() {
		pt.gone = now
	}
	mark := func(phase string, cond bool) {
		if _, done := pt.seen[phase]; cond && !done {
			pt.seen[phase] = now
		}
	}
	mark(PhasePodScheduled, p.Spec.NodeName != "")
	for _, c := range p.Status.Conditions {
		on := c.Status == corev1.ConditionTrue
		switch c.Type {
		case corev1.PodScheduled:
			mark(PhasePodScheduled, on)
			if c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				if pt.unschedAt.IsZero() {
					pt.unschedAt = now
				}
				pt.unschedMsg = c.Message
			}
		case "PodReadyToStartContainers":
			mark(PhaseSandboxReady, on)
		case corev1.PodReady:
			mark(PhasePodReady, on)
		}
	}
	if p.Status.Phase == corev1.PodFailed && p.Status.Reason != "" && pt.failedAt.IsZero() {
		pt.failedAt, pt.failedMsg = now, p.Status.Reason+": "+p.Status.Message
	}
	for _, cs := range p.Status.ContainerStatuses {
		started, ready := PhaseUserStarted, PhaseUserReady
		if cs.Name == QueueProxy {
			started, ready = PhaseQPStarted, PhaseQPReady
		} else if cs.Name != UserContainer {
			continue
		}
		mark(started, cs.State.Running != nil)
		mark(ready, cs.Ready)
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError":
				pt.failClass, pt.failMsg = results.ErrImage, cs.Name+": "+w.Reason+": "+w.Message
			case "CrashLoopBackOff", "RunContainerError", "CreateContainerError":
				pt.failClass, pt.failMsg = results.ErrCrashed, cs.Name+": "+w.Reason+": "+w.Message
			}
		}
		if term := cs.State.Terminated; term != nil && term.ExitCode != 0 {
			pt.failClass, pt.failMsg = results.ErrCrashed, fmt.Sprintf("%s exited %d: %s %s", cs.Name, term.ExitCode, term.Reason, term.Message)
		}
	}
	t.mu.Unlock()
	t.notify()
}

// livePods counts pods of rev not (yet) deleted, terminating ones included:
// a draining pod still answers, and a request sent then is not cold.
func (t *tracker) livePods(rev string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.rev(rev).pods {
		// A pod that Failed (refused by its node, evicted) runs nothing,
		// and its ReplicaSet ignores it: it stays until its ksvc goes.
		if p.gone.IsZero() && p.failedAt.IsZero() {
			n++
		}
	}
	return n
}

// draining lists the pods of the services in svcs that are draining (see
// the function), but those in skip.
func (t *tracker) draining(svcs map[string]bool, skip map[types.UID]bool) []*corev1.Pod {
	if t.podStore == nil {
		return nil
	}
	var out []*corev1.Pod
	for _, o := range t.podStore.List() {
		p, ok := o.(*corev1.Pod)
		if ok && svcs[p.Labels[LabelService]] && !skip[p.UID] && draining(p) {
			out = append(out, p)
		}
	}
	return out
}

// catchUp brings the pod timelines up to date with a list of the
// experiment's pods taken just now (before a release): a watch may deliver
// a pod's events seconds late on a loaded cluster, and a pod that already
// exists must count as existing before the requests (prior, warm), never
// as the cold pod they created. A pod the tracker saw before the list was
// asked for (listed is when) but that the list lacks was deleted before
// the list: it is gone now. One it saw after may be newer than the list's
// snapshot: the watch decides for it.
func (t *tracker) catchUp(pods []corev1.Pod, listed time.Time) {
	inList := map[string]bool{}
	for i := range pods {
		inList[pods[i].Name] = true
		t.onPod(&pods[i], false)
	}
	now := t.now()
	t.mu.Lock()
	for _, r := range t.revs {
		for _, p := range r.pods {
			if !inList[p.name] && p.gone.IsZero() && p.created.Before(listed) {
				p.gone = now
				if p.terminating.IsZero() {
					p.terminating = now
				}
			}
		}
	}
	t.mu.Unlock()
}

// attemptView is what the tracker knows about one attempt on rev started at t0.
type attemptView struct {
	pod      string
	podUID   string // the cold pod's uid and node ("": not scheduled yet)
	node     string
	phases   []results.Phase
	warmPod  string // a pod that already existed at t0 (not a cold start)
	prior    int    // pods created before t0 (gone by t0 unless warmPod)
	failCls  string
	failMsg  string
	podReady bool
	podGone  bool // the cold pod was deleted: it will never show Ready
	// The attempt's wait for room on a node, on the tracker's clock (zero
	// waitSince: it never waited): from when the watch first showed its
	// pod unschedulable (or a pod of it refused by its node for lack of
	// room) to when it showed the cold pod scheduled (zero: not yet).
	waitSince, waitScheduled time.Time
	waitReason               string
}

// view summarises rev's timeline relative to an attempt started at t0: the
// first pod created after t0 is the attempt's cold pod, unless its node
// refused it for lack of room (the ReplicaSet then makes another, which is
// the one that can answer).
func (t *tracker) view(rev string, t0 time.Time) attemptView {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rev(rev)
	var v attemptView
	off := func(name string, at time.Time) {
		v.phases = append(v.phases, results.Phase{Name: name, OffsetNS: at.Sub(t0).Nanoseconds()})
	}
	for _, s := range r.scaledUp {
		if !s.Before(t0) {
			off(PhaseDeploymentScaled, s)
			break
		}
	}
	var cold, refused *podTimeline
	for _, p := range r.pods {
		switch {
		case !p.created.Before(t0) && p.noRoom():
			// Only one the cold pod replaced (seen before it) explains a wait.
			if refused == nil && cold == nil {
				refused = p
			}
		case !p.created.Before(t0):
			if cold == nil {
				cold = p
			}
		default:
			v.prior++
			failedBefore := !p.failedAt.IsZero() && p.failedAt.Before(t0) // runs nothing: not warm
			if (p.gone.IsZero() || !p.gone.Before(t0)) && !failedBefore {
				v.warmPod = p.name
			}
		}
	}
	if refused != nil {
		v.failCls, v.failMsg = refused.failure()
		v.waitSince, v.waitReason = refused.failedAt, v.failMsg
	}
	if cold != nil {
		v.pod, v.podUID, v.node = cold.name, cold.uid, cold.node
		names := make([]string, 0, len(cold.seen))
		for n := range cold.seen {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return cold.seen[names[i]].Before(cold.seen[names[j]]) })
		for _, n := range names {
			off(n, cold.seen[n])
		}
		_, v.podReady = cold.seen[PhasePodReady]
		v.podGone = !cold.gone.IsZero()
		_, scheduled := cold.seen[PhasePodScheduled]
		if cls, msg := cold.failure(); cls != "" || scheduled {
			// The cold pod's own state supersedes its refused predecessor's:
			// once it has a node, the refusal is no failure of the attempt.
			v.failCls, v.failMsg = cls, msg
		}
		if !cold.unschedAt.IsZero() {
			if v.waitSince.IsZero() || cold.unschedAt.Before(v.waitSince) {
				v.waitSince = cold.unschedAt
			}
			v.waitReason = cold.unschedMsg // the scheduler's own words
		}
		v.waitScheduled = cold.seen[PhasePodScheduled]
	}
	if v.failCls == "" && r.failMsg != "" {
		v.failCls, v.failMsg = results.ErrPlatform, r.failMsg
		if containsAny(r.failMsg, "RuntimeClass", "runtimeclass") {
			v.failCls = results.ErrRuntime
		}
	}
	return v
}

// service returns the ksvc named name from the informer cache.
func (t *tracker) service(ns, name string) (*unstructured.Unstructured, bool) {
	o, err := t.svcLister.ByNamespace(ns).Get(name)
	if err != nil {
		return nil, false
	}
	u, ok := o.(*unstructured.Unstructured)
	return u, ok
}
