package knative

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coldbench/coldbench/pkg/results"
)

// clockedTracker is a tracker whose clock reads t0 + *at.
func clockedTracker(t0 time.Time, at *time.Duration) *tracker {
	tr := newTracker()
	tr.now = func() time.Time { return t0.Add(*at) }
	return tr
}

func podOf(rev, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelRevision: rev}}}
}

func unschedulableCond(msg string) []corev1.PodCondition {
	return []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg}}
}

// The wait for room runs, on the tracker's clock, from the first
// Unschedulable the watch showed to the scheduling it showed, with the
// scheduler's latest words; a pod never scheduled waits until the
// attempt's end and is the attempt's failure, one scheduled is not.
func TestWaitForRoomOnTheTrackersClock(t *testing.T) {
	t0 := time.Now()
	var at time.Duration
	tr := clockedTracker(t0, &at)
	p := podOf("rev", "rev-pod-1")
	step := func(d time.Duration, change func()) {
		at = d
		change()
		tr.onPod(p.DeepCopy(), false)
	}
	step(1*time.Second, func() {})
	step(2*time.Second, func() { p.Status.Conditions = unschedulableCond("0/1 nodes are available: 1 Insufficient cpu.") })
	step(5*time.Second, func() { p.Status.Conditions = unschedulableCond("0/1 nodes are available: 1 Too many pods.") })

	v := tr.view("rev", t0)
	if v.failCls != results.ErrNotScheduled || !strings.Contains(v.failMsg, "Too many pods") {
		t.Errorf("unscheduled: failure %q %q, want not_scheduled with the latest reason", v.failCls, v.failMsg)
	}
	got := waited(v, false, t0.Add(9*time.Second))
	if want := (results.Unschedulable{Reason: "0/1 nodes are available: 1 Too many pods.", WaitNS: (7 * time.Second).Nanoseconds()}); got == nil || *got != want {
		t.Errorf("never scheduled by the end at 9 s: %+v, want %+v", got, want)
	}

	step(8*time.Second, func() {
		p.Spec.NodeName = "node-1"
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
	})
	v = tr.view("rev", t0)
	if v.failCls != "" {
		t.Errorf("scheduled: failure %q %q, want none (the wait is over)", v.failCls, v.failMsg)
	}
	for _, c := range []struct {
		answered bool
		end      time.Duration
		want     results.Unschedulable
	}{
		{true, 12 * time.Second, results.Unschedulable{Reason: "0/1 nodes are available: 1 Too many pods.", WaitNS: (6 * time.Second).Nanoseconds(), Scheduled: true}},
		// The attempt failed before its pod was scheduled: its wait ended with it.
		{false, 7 * time.Second, results.Unschedulable{Reason: "0/1 nodes are available: 1 Too many pods.", WaitNS: (5 * time.Second).Nanoseconds()}},
		// Answered, though the watch showed the scheduling only later.
		{true, 7 * time.Second, results.Unschedulable{Reason: "0/1 nodes are available: 1 Too many pods.", WaitNS: (6 * time.Second).Nanoseconds(), Scheduled: true}},
	} {
		if got := waited(v, c.answered, t0.Add(c.end)); got == nil || *got != c.want {
			t.Errorf("answered %v, end %v: %+v, want %+v", c.answered, c.end, got, c.want)
		}
	}

	// A pod that never waited has no wait.
	tr.onPod(podOf("other", "other-pod-1"), false)
	if got := waited(tr.view("other", t0), true, t0.Add(time.Second)); got != nil {
		t.Errorf("never waited: %+v", *got)
	}
}

// A pod its node's kubelet refused at admission (Failed, OutOfcpu) is not
// the attempt's pod: its replacement is; the refusal is the attempt's
// failure while the replacement has no node, and its wait starts with it.
// A pod Failed for another reason is a platform failure, with the reason,
// not a crash of its containers.
func TestPodRefusedByItsNode(t *testing.T) {
	t0 := time.Now()
	var at time.Duration
	tr := clockedTracker(t0, &at)
	refused := podOf("rev", "rev-pod-1")
	at = time.Second
	tr.onPod(refused.DeepCopy(), false)
	at = 2 * time.Second
	refused.Spec.NodeName = "node-1"
	refused.Status.Phase, refused.Status.Reason, refused.Status.Message = corev1.PodFailed, "OutOfcpu", "Pod was rejected: Node didn't have enough resource: cpu"
	refused.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: UserContainer, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown"}}}}
	tr.onPod(refused.DeepCopy(), false)

	v := tr.view("rev", t0)
	if v.pod != "" || v.failCls != results.ErrNotScheduled || !strings.Contains(v.failMsg, "rev-pod-1 refused by its node: OutOfcpu: Pod was rejected") {
		t.Errorf("refused alone: pod %q failure %q %q", v.pod, v.failCls, v.failMsg)
	}
	at = 3 * time.Second
	repl := podOf("rev", "rev-pod-2")
	tr.onPod(repl.DeepCopy(), false)
	at = 6 * time.Second
	repl.Spec.NodeName = "node-1"
	tr.onPod(repl.DeepCopy(), false)
	v = tr.view("rev", t0)
	if v.pod != "rev-pod-2" || v.failCls != "" {
		t.Errorf("replaced: pod %q failure %q %q, want rev-pod-2 and no failure", v.pod, v.failCls, v.failMsg)
	}
	got := waited(v, true, t0.Add(10*time.Second))
	if got == nil || !got.Scheduled || got.WaitNS != (4*time.Second).Nanoseconds() || !strings.Contains(got.Reason, "OutOfcpu") {
		t.Errorf("replaced: waited %+v, want 4 s (refusal seen to replacement scheduled), for OutOfcpu", got)
	}

	evicted := podOf("ev", "ev-pod-1")
	at = time.Second
	evicted.Spec.NodeName = "node-1"
	evicted.Status.Phase, evicted.Status.Reason, evicted.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
	evicted.Status.ContainerStatuses = refused.Status.ContainerStatuses
	tr.onPod(evicted, false)
	v = tr.view("ev", t0)
	if v.pod != "ev-pod-1" || v.failCls != results.ErrPlatform || !strings.Contains(v.failMsg, "Evicted: The node was low on resource") {
		t.Errorf("evicted: pod %q failure %q %q", v.pod, v.failCls, v.failMsg)
	}
	if got := waited(v, false, t0.Add(5*time.Second)); got != nil {
		t.Errorf("evicted: waited %+v, want no wait for room", *got)
	}
}
