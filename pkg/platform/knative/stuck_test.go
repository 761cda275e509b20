package knative

// A teardown's pods that their node can no longer stop (the lab: a gVisor
// sandbox whose shim hung, StopPodSandbox timing out every 2 min): named
// once each, with the kubelet's latest event, and counted in the progress
// line. The progress ticks are driven by hand, on the tracker's clock.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/coldbench/coldbench/pkg/bench"
)

// stuckLab is a teardown of services fn-a, fn-b and fn-c whose progress
// ticks a test calls itself, at clock, with pods added by terminate.
type stuckLab struct {
	t     *testing.T
	kube  *fake.Clientset
	clock time.Time
	log   bytes.Buffer
	w     *teardownWait
}

func newStuckLab(t *testing.T, objs ...runtime.Object) *stuckLab {
	l := &stuckLab{t: t, kube: fake.NewClientset(objs...), clock: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	exp := bench.Default()
	exp.Spec.SetSection(Name, &Spec{Namespace: "cb-test"})
	tr := newTracker()
	tr.now = func() time.Time { return l.clock }
	tr.podStore = cache.NewStore(cache.MetaNamespaceKeyFunc)
	tr.svcLister = cache.NewGenericLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}), ServiceGVR.GroupResource())
	log := slog.New(slog.NewTextHandler(&l.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := &session{Platform: NewWithClients(exp, l.kube, nil, "", log), id: "cb-1-abcd", tr: tr}
	l.w = &teardownWait{s: s, names: []string{"fn-a", "fn-b", "fn-c"}}
	l.w.pods.Store(-1)
	return l
}

// terminate has the watch see pod name of service svc on node-1 being
// deleted now, with a grace period of grace seconds.
func (l *stuckLab) terminate(svc, name string, grace int64) *corev1.Pod {
	l.t.Helper()
	ts := metav1.NewTime(l.clock.Add(time.Duration(grace) * time.Second))
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "cb-test", UID: types.UID("uid-" + name),
		Labels:            map[string]string{bench.LabelExperiment: "cb-1-abcd", LabelService: svc, LabelRevision: svc + "-00001"},
		DeletionTimestamp: &ts, DeletionGracePeriodSeconds: &grace},
		Spec: corev1.PodSpec{NodeName: "node-1"}}
	if err := l.w.s.tr.podStore.Add(p); err != nil {
		l.t.Fatal(err)
	}
	l.w.s.tr.onPod(p, false)
	return p
}

// tickAt is a progress tick at the lab's start plus d.
func (l *stuckLab) tickAt(start time.Time, d time.Duration) {
	l.clock = start.Add(d)
	l.w.report(context.Background())
}

// lines are the log lines at level.
func (l *stuckLab) lines(level string) []string {
	var out []string
	for _, line := range strings.Split(l.log.String(), "\n") {
		if strings.Contains(line, "level="+level+" ") {
			out = append(out, line)
		}
	}
	return out
}

// eventLists are the Lists of events sent, by field selector.
func (l *stuckLab) eventLists() []string {
	var out []string
	for _, a := range l.kube.Actions() {
		if la, ok := a.(clienttesting.ListAction); ok && a.GetResource().Resource == "events" {
			out = append(out, la.GetListRestrictions().Fields.String())
		}
	}
	return out
}

// kubeletEvent is an event of the kubelet on node-1 about pod, last seen at.
func kubeletEvent(pod *corev1.Pod, name, reason, msg string, at time.Time, count int32) *corev1.Event {
	return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "cb-test"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "cb-test", Name: pod.Name, UID: pod.UID},
		Reason:         reason, Message: msg, Type: corev1.EventTypeWarning, Count: count,
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: metav1.NewTime(at.Add(-time.Duration(count-1) * 2 * time.Minute)), LastTimestamp: metav1.NewTime(at)}
}

const failedKill = `error killing pod: [failed to "KillPodSandbox" for "uid-fn-a-00001-deployment-x1" with KillPodSandboxError: "rpc error: code = DeadlineExceeded desc = context deadline exceeded"]`

func TestTeardownNamesAPodStuckTerminatingOnceWithTheKubeletsEvent(t *testing.T) {
	l := newStuckLab(t)
	t0 := l.clock
	stuck := l.terminate("fn-a", "fn-a-00001-deployment-x1", hurryGrace)
	// Deleted with a long grace period (the hurry failed): within its
	// bound all along.
	l.terminate("fn-c", "fn-c-00001-deployment-z3", 300)
	// Not a torn-down service's: never counted.
	l.terminate("other", "other-00001-deployment-o1", 1)
	l.clock = t0.Add(2 * time.Minute)
	young := l.terminate("fn-b", "fn-b-00001-deployment-y2", hurryGrace)
	for _, e := range []*corev1.Event{
		kubeletEvent(stuck, "e1", "Killing", "Stopping container user-container", t0.Add(time.Second), 1),
		kubeletEvent(stuck, "e2", "FailedKillPod", failedKill, t0.Add(3*time.Minute), 2),
		// Newer, but not the kubelet's, or not this pod's (the fake
		// clientset ignores field selectors: matched by UID here).
		{ObjectMeta: metav1.ObjectMeta{Name: "e3", Namespace: "cb-test"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", UID: stuck.UID},
			Reason: "Noted", Message: "not the kubelet's", Source: corev1.EventSource{Component: "someone"}, LastTimestamp: metav1.NewTime(t0.Add(4 * time.Minute))},
		kubeletEvent(young, "e4", "FailedKillPod", "the young pod's", t0.Add(4*time.Minute), 1),
	} {
		if _, err := l.kube.CoreV1().Events("cb-test").Create(context.Background(), e, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	l.kube.ClearActions()

	// Within grace + stuckMargin: nothing said, nothing read.
	l.tickAt(t0, time.Duration(hurryGrace)*time.Second+stuckMargin)
	if w := l.lines("WARN"); len(w) != 0 {
		t.Errorf("warned within the bound:\n%s", strings.Join(w, "\n"))
	}
	if lists := l.eventLists(); len(lists) != 0 {
		t.Errorf("events listed with no pod past the bound: %q", lists)
	}
	if info := l.lines("INFO"); len(info) != 1 || strings.Contains(info[0], "stuck_terminating") {
		t.Errorf("progress lines %q, want one without stuck_terminating", info)
	}

	// Past it: one warning, however many ticks follow; counted in every
	// progress line.
	for _, d := range []time.Duration{3*time.Minute + 30*time.Second, 4 * time.Minute, 4*time.Minute + 30*time.Second, 5 * time.Minute} {
		l.tickAt(t0, d)
	}
	warns := l.lines("WARN")
	if len(warns) != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", len(warns), l.log.String())
	}
	for _, want := range []string{
		"pod=fn-a-00001-deployment-x1", "node=node-1", "terminating_for=3m30s", "grace_period=1s",
		"kubelet_event=FailedKillPod", "kubelet_event_count=2", strings.ReplaceAll(failedKill, `"`, `\"`),
		"did not stop it in time", "coldbench keeps waiting", "Ctrl-C stops the wait", "up to 5m0s more", "`coldbench clean`",
	} {
		if !strings.Contains(warns[0], want) {
			t.Errorf("the warning lacks %q:\n%s", want, warns[0])
		}
	}
	for _, not := range []string{"fn-b", "fn-c", "other", "not the kubelet's", "Stopping container"} {
		if strings.Contains(warns[0], not) {
			t.Errorf("the warning names %q:\n%s", not, warns[0])
		}
	}
	if lists := l.eventLists(); !slices.Equal(lists, []string{"involvedObject.uid=" + string(stuck.UID)}) {
		t.Errorf("events lists %q, want one, by the stuck pod's UID", lists)
	}
	info := l.lines("INFO")
	if len(info) != 5 {
		t.Fatalf("%d progress lines, want 5", len(info))
	}
	for _, line := range info[1:] {
		if !strings.Contains(line, "stuck_terminating=1") {
			t.Errorf("progress line without stuck_terminating=1: %s", line)
		}
	}
}

// Several pods past the bound at the same tick: one List (the namespace's
// pod events), one warning each, each with its own event.
func TestTeardownReadsTheEventsOfSeveralStuckPodsWithOneList(t *testing.T) {
	l := newStuckLab(t)
	t0 := l.clock
	a := l.terminate("fn-a", "fn-a-00001-deployment-x1", hurryGrace)
	b := l.terminate("fn-b", "fn-b-00001-deployment-y2", hurryGrace)
	for _, e := range []*corev1.Event{
		kubeletEvent(a, "ea", "FailedKillPod", "a's message", t0.Add(3*time.Minute), 1),
		kubeletEvent(b, "eb", "FailedKillPod", "b's message", t0.Add(3*time.Minute), 1),
	} {
		if _, err := l.kube.CoreV1().Events("cb-test").Create(context.Background(), e, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	l.kube.ClearActions()
	l.tickAt(t0, 4*time.Minute)
	l.tickAt(t0, 5*time.Minute)
	warns := l.lines("WARN")
	if len(warns) != 2 || !strings.Contains(warns[0], "pod=fn-a-00001-deployment-x1") || !strings.Contains(warns[0], `"a's message"`) ||
		!strings.Contains(warns[1], "pod=fn-b-00001-deployment-y2") || !strings.Contains(warns[1], `"b's message"`) {
		t.Errorf("warnings, want one per pod with its event:\n%s", strings.Join(warns, "\n"))
	}
	if lists := l.eventLists(); !slices.Equal(lists, []string{"involvedObject.kind=Pod"}) {
		t.Errorf("events lists %q, want one of the namespace's pod events", lists)
	}
	if info := l.lines("INFO"); len(info) != 2 || !strings.Contains(info[1], "stuck_terminating=2") {
		t.Errorf("progress lines %q, want stuck_terminating=2", info)
	}
}

// The events cannot be read (forbidden, say: an RBAC without list on
// events): the warning goes out all the same, without an event, once; the
// error is said at debug level only.
func TestTeardownWarnsAboutAStuckPodWhenTheEventsCannotBeRead(t *testing.T) {
	l := newStuckLab(t)
	t0 := l.clock
	l.terminate("fn-a", "fn-a-00001-deployment-x1", hurryGrace)
	l.kube.PrependReactor("list", "events", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New(`events is forbidden: User "x" cannot list resource "events"`)
	})
	l.tickAt(t0, 4*time.Minute)
	l.tickAt(t0, 5*time.Minute)
	warns := l.lines("WARN")
	if len(warns) != 1 || !strings.Contains(warns[0], "pod=fn-a-00001-deployment-x1") || strings.Contains(warns[0], " kubelet_event=") {
		t.Errorf("warnings, want one naming the pod, without an event:\n%s", l.log.String())
	}
	if d := l.lines("DEBUG"); len(d) != 1 || !strings.Contains(d[0], "forbidden") {
		t.Errorf("debug lines %q, want the List's error once", d)
	}
	if len(l.lines("ERROR")) != 0 {
		t.Errorf("an error logged:\n%s", l.log.String())
	}
	if info := l.lines("INFO"); len(info) != 2 || !strings.Contains(info[1], "stuck_terminating=1") {
		t.Errorf("progress lines %q, want stuck_terminating=1", info)
	}
}

// A pod found stuck whose kubelet recorded nothing about it: said so.
func TestTeardownSaysWhenTheKubeletRecordedNothing(t *testing.T) {
	l := newStuckLab(t)
	l.terminate("fn-a", "fn-a-00001-deployment-x1", hurryGrace)
	l.tickAt(l.clock, 4*time.Minute)
	if warns := l.lines("WARN"); len(warns) != 1 || !strings.Contains(warns[0], "kubelet_event=none") {
		t.Errorf("warnings %q, want one with kubelet_event=none", warns)
	}
}

// deploy/rbac.yaml's Role in the study's namespace grants exactly what a
// run uses there (namespaceNeeds, which doctor checks), nothing more.
func TestRBACGrantsWhatARunUsesInItsNamespace(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.Role
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		var r rbacv1.Role
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == "Role" && r.Namespace == "coldbench" {
			role = &r
		}
	}
	if role == nil {
		t.Fatal("no Role in namespace coldbench in deploy/rbac.yaml")
	}
	granted := map[string]bool{}
	for _, rule := range role.Rules {
		if len(rule.ResourceNames) > 0 {
			t.Errorf("rule %+v: names resources, a run's are not known in advance", rule)
		}
		for _, g := range rule.APIGroups {
			for _, r := range rule.Resources {
				for _, v := range rule.Verbs {
					granted[g+"/"+r+"/"+v] = true
				}
			}
		}
	}
	needed := map[string]bool{}
	for _, n := range namespaceNeeds {
		needed[n.group+"/"+n.resource+"/"+n.verb] = true
	}
	for k := range needed {
		if !granted[k] {
			t.Errorf("deploy/rbac.yaml does not grant %s, which a run uses (namespaceNeeds)", k)
		}
	}
	for k := range granted {
		if !needed[k] {
			t.Errorf("deploy/rbac.yaml grants %s, which no run uses (not in namespaceNeeds)", k)
		}
	}
	if !needed["/events/list"] {
		t.Error("namespaceNeeds lacks list on events (stuck.go reads the kubelet's events)")
	}
}

// doctor and run's preflight: without list on events a run goes on (a
// warning saying what is lost); without a verb it needs, it does not.
func TestCheckNamespaceWarnsWithoutListOnEvents(t *testing.T) {
	check := func(deny string) bench.Check {
		kube := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cb-test"}})
		kube.PrependReactor("create", "selfsubjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
			r := a.(clienttesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview).DeepCopy()
			ra := r.Spec.ResourceAttributes
			r.Status.Allowed = ra.Verb+" "+ra.Resource != deny
			return true, r, nil
		})
		exp := bench.Default()
		exp.Spec.SetSection(Name, &Spec{Namespace: "cb-test"})
		return NewWithClients(exp, kube, nil, "", nil).checkNamespace(context.Background(), "cb-test")
	}
	if c := check(""); !c.OK || c.Warn {
		t.Errorf("every verb allowed: %+v, want ok without a warning", c)
	}
	if c := check("list events"); !c.OK || !c.Warn || !strings.Contains(c.Detail, "not allowed: list events: ") ||
		!strings.Contains(c.Detail, "kubelet's event") || !strings.Contains(c.Fix, "deploy/rbac.yaml") {
		t.Errorf("list events denied: %+v, want ok with a warning saying what is lost", c)
	}
	if c := check("watch pods"); c.OK || !strings.Contains(c.Detail, "watch pods") {
		t.Errorf("watch pods denied: %+v, want a failure", c)
	}
}

// A pod seen terminating with Knative's 300 s and hurried to 1 s later has
// had its 1 s only since the hurry: the bound runs from then (as the
// progress ticks saw it), not from when the pod began terminating.
func TestTeardownBoundRunsFromTheGracePeriodThePodHasNow(t *testing.T) {
	l := newStuckLab(t)
	t0 := l.clock
	l.terminate("fn-a", "fn-a-00001-deployment-x1", 300)
	l.tickAt(t0, 30*time.Second)
	l.clock = t0.Add(time.Minute)
	l.terminate("fn-a", "fn-a-00001-deployment-x1", hurryGrace)
	l.tickAt(t0, time.Minute) // the hurried grace period is seen here
	l.tickAt(t0, 3*time.Minute+30*time.Second)
	if w := l.lines("WARN"); len(w) != 0 {
		t.Fatalf("warned %v after the hurry, within 1 s + %v:\n%s", 3*time.Minute+30*time.Second-time.Minute, stuckMargin, strings.Join(w, "\n"))
	}
	l.tickAt(t0, 4*time.Minute+30*time.Second)
	if w := l.lines("WARN"); len(w) != 1 || !strings.Contains(w[0], "grace_period=1s") {
		t.Fatalf("warnings %q, want one, with grace_period=1s", w)
	}
}
