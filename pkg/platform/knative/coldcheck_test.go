package knative

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coldbench/coldbench/pkg/results"
)

// A pod being deleted drains and still answers (Knative's queue-proxy keeps
// serving while it drains): it is live until its object is gone, and a
// request started while it drains is not cold. Seen on the lab: the classic
// protocol released requests when the deletionTimestamp appeared, and the
// draining pod answered in a few ms while a new pod was created anyway.
func TestTerminatingPodIsLiveAndWarm(t *testing.T) {
	tr := newTracker()
	clock := time.Unix(1000, 0)
	tr.now = func() time.Time { return clock }
	rev := "svc-00001"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: rev + "-deployment-abc", Labels: map[string]string{LabelRevision: rev}}}
	tr.onPod(pod, false)

	clock = clock.Add(10 * time.Second)
	now := metav1.NewTime(clock)
	draining := pod.DeepCopy()
	draining.DeletionTimestamp = &now
	tr.onPod(draining, false)
	if tr.livePods(rev) != 1 {
		t.Fatal("a terminating pod was counted gone: classic would release into a draining pod")
	}
	if v := tr.view(rev, clock.Add(time.Second)); v.warmPod != pod.Name {
		t.Errorf("request while the pod drains: view %+v, want the pod flagged warm", v)
	}

	clock = clock.Add(20 * time.Second)
	tr.onPod(draining, true)
	if tr.livePods(rev) != 0 {
		t.Error("a deleted pod still counted live")
	}
	if v := tr.view(rev, clock.Add(time.Second)); v.warmPod != "" {
		t.Errorf("request after the pod was deleted: view %+v, want no warm pod", v)
	}
}

// A pod its node refused (Failed, OutOfcpu) runs nothing and its
// ReplicaSet ignores it, so it stays until its ksvc goes: it is not live
// (classic and pool would wait for it to scale to zero for ever) and a
// later request is not warm because of it.
func TestRefusedPodIsNotLive(t *testing.T) {
	tr := newTracker()
	clock := time.Unix(1000, 0)
	tr.now = func() time.Time { return clock }
	rev := "svc-00001"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: rev + "-deployment-abc", Labels: map[string]string{LabelRevision: rev}}}
	tr.onPod(pod, false)
	clock = clock.Add(time.Second)
	refused := pod.DeepCopy()
	refused.Status.Phase, refused.Status.Reason, refused.Status.Message = corev1.PodFailed, "OutOfcpu", "Pod was rejected: Node didn't have enough resource: cpu"
	tr.onPod(refused, false)
	if n := tr.livePods(rev); n != 0 {
		t.Errorf("%d live pods: a refused pod counted live", n)
	}
	if v := tr.view(rev, clock.Add(time.Second)); v.warmPod != "" || v.prior != 1 {
		t.Errorf("request after the refusal: view %+v, want one prior pod and none warm", v)
	}
}

// The function's own process start is evidence independent of the watches:
// a process that started before the request answered warm.
func TestStartedBefore(t *testing.T) {
	at := func(off time.Duration) *results.Attempt {
		return &results.Attempt{Phases: []results.Phase{{Name: results.PhaseFunctionStart, OffsetNS: off.Nanoseconds()}}}
	}
	if d := startedBefore(at(-6 * time.Second)); d != 6*time.Second {
		t.Errorf("process 6 s older than the request: %v", d)
	}
	if d := startedBefore(at(1200 * time.Millisecond)); d != 0 {
		t.Errorf("process started 1.2 s after the request: %v", d)
	}
	if d := startedBefore(&results.Attempt{}); d != 0 {
		t.Errorf("no header: %v", d)
	}
}
