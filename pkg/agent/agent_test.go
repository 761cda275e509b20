package agent

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types"
	"google.golang.org/protobuf/proto"

	"github.com/coldbench/coldbench/pkg/rtevents"
)

// fakeClock is the agent's clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)

func newClock() *fakeClock { return &fakeClock{t: t0} }

// ourPod is a Knative pod of coldbench's: its pod labels say so.
func ourPod(n string) testPod {
	return testPod{uid: "uid-" + n, namespace: "coldbench", name: "fn-" + n + "-deployment-abc",
		labels:  map[string]string{LabelManagedBy: LabelManagedByVal, "serving.knative.dev/service": "fn-" + n},
		sandbox: "sb-" + n, containers: map[string]string{"user-container": "uc-" + n, "queue-proxy": "qp-" + n}}
}

// lifecycle is the events of p's creation, its sandbox first, each a
// millisecond after the one before from at.
func lifecycle(t *testing.T, p testPod, at time.Time) []*types.Envelope {
	ms := func(i int) time.Time { return at.Add(time.Duration(i)*time.Millisecond + 7) }
	return []*types.Envelope{created(t, p.sandbox, ms(0)), started(t, p.sandbox, ms(1)),
		created(t, p.containers["user-container"], ms(2)), started(t, p.containers["user-container"], ms(3)),
		created(t, p.containers["queue-proxy"], ms(4)), started(t, p.containers["queue-proxy"], ms(5))}
}

// Only coldbench's pods are kept: a pod without its label, a container no
// kubelet made (no CRI kind), a sandbox whose image alone says managed-by
// but that belongs to no pod are looked at and left out. Each container is
// read from containerd once, and a pod's containers are told by its
// sandbox without reading it again.
func TestKeepsOnlyColdbenchPods(t *testing.T) {
	f := newFakeContainerd(t)
	ours, theirs := ourPod("a"), ourPod("b")
	theirs.labels = map[string]string{"app": "other"}
	f.store(ours, false)
	f.store(theirs, false)
	f.containers["ctr-made"] = proto.Clone(f.containers["uc-b"]).(*containerdContainer)
	f.containers["ctr-made"].Labels = map[string]string{LabelManagedBy: LabelManagedByVal}
	f.containers["no-pod"] = proto.Clone(f.containers["sb-b"]).(*containerdContainer)
	f.containers["no-pod"].Labels = map[string]string{labelKind: kindSandbox, LabelManagedBy: LabelManagedByVal}
	a := runAgent(t, f, Config{})

	at := time.Now()
	f.publish(t, lifecycle(t, theirs, at)...)
	f.publish(t, created(t, "ctr-made", at), started(t, "ctr-made", at), created(t, "no-pod", at))
	f.publish(t, lifecycle(t, ours, at)...)
	eventually(t, "ours held", func() bool { return a.window.Len() == 6 })

	resp := a.Events([]string{ours.uid, theirs.uid, "uid-never"})
	if !slices.Equal(resp.Unknown, []string{theirs.uid, "uid-never"}) || len(resp.Pods) != 1 {
		t.Fatalf("pods %+v, unknown %v: want only %s", resp.Pods, resp.Unknown, ours.uid)
	}
	p := resp.Pods[0]
	if p.UID != ours.uid || p.Namespace != "coldbench" || p.Name != ours.name {
		t.Errorf("pod %s %s/%s", p.UID, p.Namespace, p.Name)
	}
	want := func(i int) int64 { return at.Add(time.Duration(i)*time.Millisecond + 7).UnixNano() }
	if len(p.Sandboxes) != 1 || p.Sandboxes[0] != (Instance{ID: "sb-a", CreatedUnixNS: want(0), StartedUnixNS: want(1)}) {
		t.Errorf("sandboxes %+v", p.Sandboxes)
	}
	uc, qp := p.Containers["user-container"], p.Containers["queue-proxy"]
	if len(p.Containers) != 2 || len(uc) != 1 || len(qp) != 1 ||
		uc[0] != (Instance{ID: "uc-a", SandboxID: "sb-a", CreatedUnixNS: want(2), StartedUnixNS: want(3)}) ||
		qp[0] != (Instance{ID: "qp-a", SandboxID: "sb-a", CreatedUnixNS: want(4), StartedUnixNS: want(5)}) {
		t.Errorf("containers %+v", p.Containers)
	}
	for _, id := range []string{"sb-a", "uc-a", "qp-a", "sb-b", "uc-b", "qp-b", "ctr-made", "no-pod"} {
		if n := f.getCount(id); n != 1 {
			t.Errorf("container %s read %d times, want once", id, n)
		}
	}
	if st := a.State(); st.UnclassifiedEvents != 0 || st.Window.Pods != 1 || st.Window.Events != 6 || !st.Subscription.Healthy {
		t.Errorf("state %+v", st)
	}
	if all := a.Events(nil); len(all.Pods) != 1 || all.Pods[0].UID != ours.uid || all.Unknown != nil {
		t.Errorf("every pod held: %+v", all)
	}
}

// What containerd 2.4.2 really sent during a runc cold start (pkg/rtevents'
// captured envelopes: a snapshot event, the pause container's and the
// function's create, task create, task start, and an exit) becomes the
// pod's four moments at the envelopes' timestamps; the subscription asks
// containerd for the pod kinds in k8s.io only.
func TestCapturedRuncPod(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "rtevents", "testdata", "containerd-2.4.2", "runc-*.pb"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no captured envelopes: %v", err)
	}
	slices.Sort(paths)
	var envs []*types.Envelope
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		env := new(types.Envelope)
		if err := proto.Unmarshal(b, env); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		envs = append(envs, env)
	}
	id := func(i int) string {
		ev, ok, err := rtevents.Decode(envs[i])
		if err != nil || !ok {
			t.Fatalf("envelope %d: %v", i, err)
		}
		return ev.ID()
	}
	p := ourPod("r")
	p.sandbox, p.containers = id(1), map[string]string{"user-container": id(4)}
	f := newFakeContainerd(t)
	f.store(p, false)
	a := runAgent(t, f, Config{})
	if got, want := f.current(t).filters, rtevents.Filters("k8s.io", rtevents.PodKinds...); !slices.Equal(got, want) {
		t.Errorf("filters %q, want %q", got, want)
	}
	f.publish(t, envs...)
	eventually(t, "the pod's four events", func() bool { return a.window.Len() == 4 })
	got := a.Events([]string{p.uid}).Pods[0]
	at := func(i int) int64 { return envs[i].GetTimestamp().AsTime().UnixNano() }
	if got.Sandboxes[0] != (Instance{ID: p.sandbox, CreatedUnixNS: at(1), StartedUnixNS: at(3)}) {
		t.Errorf("sandbox %+v", got.Sandboxes)
	}
	if uc := got.Containers["user-container"]; len(uc) != 1 || uc[0] != (Instance{ID: id(4), SandboxID: p.sandbox, CreatedUnixNS: at(4), StartedUnixNS: at(6)}) {
		t.Errorf("user-container %+v", uc)
	}
}

// An agent started after a pod's sandbox and container were created (a
// restarted agent) still tells the pod's container by its sandbox: read
// from containerd by the container's record, or, where containerd records
// no sandbox (before 2.0), found by the pod's uid.
func TestContainerOfAPodSeenLate(t *testing.T) {
	for name, noSandboxField := range map[string]bool{"sandbox recorded": false, "sandbox found by uid": true} {
		t.Run(name, func(t *testing.T) {
			f := newFakeContainerd(t)
			p := ourPod("late")
			f.store(p, noSandboxField)
			a := runAgent(t, f, Config{})
			f.publish(t, started(t, "uc-late", time.Now()))
			eventually(t, "the start held", func() bool { return a.window.Len() == 1 })
			got := a.Events(nil).Pods
			wantSandbox := "sb-late"
			if noSandboxField {
				wantSandbox = ""
			}
			if len(got) != 1 || len(got[0].Sandboxes) != 0 || got[0].Containers["user-container"][0].SandboxID != wantSandbox ||
				got[0].Containers["user-container"][0].CreatedUnixNS != 0 || got[0].Containers["user-container"][0].StartedUnixNS == 0 {
				t.Errorf("pods %+v", got)
			}
			f.mu.Lock()
			lists := f.lists
			f.mu.Unlock()
			if noSandboxField != (lists == 1) {
				t.Errorf("%d Lists", lists)
			}
		})
	}
}

// A container containerd cannot show (deleted before the agent looked) is
// counted and said, not kept, and not remembered as not ours: its next
// event is looked up again.
func TestContainerNotFound(t *testing.T) {
	f := newFakeContainerd(t)
	a := runAgent(t, f, Config{})
	p := ourPod("gone")
	f.publish(t, created(t, p.sandbox, time.Now()))
	eventually(t, "the failed lookup counted", func() bool { return a.State().UnclassifiedEvents == 1 })
	if st := a.State(); st.LastUnclassified == "" || a.window.Len() != 0 {
		t.Errorf("state %+v, %d events", st, a.window.Len())
	}
	f.store(p, false)
	f.publish(t, started(t, p.sandbox, time.Now()))
	eventually(t, "the next event kept", func() bool { return a.window.Len() == 1 })
}

// The bounds: the events by count (the oldest go, counted, with when the
// newest of them arrived), then everything by age: events, pods, and the
// owners remembered, also of containers not coldbench's.
func TestBounds(t *testing.T) {
	f := newFakeContainerd(t)
	clk := newClock()
	a := runAgent(t, f, Config{MaxEvents: 6, MaxAge: time.Minute, now: clk.now})
	pa, pb, other := ourPod("a"), ourPod("b"), ourPod("other")
	other.labels = nil
	for _, p := range []testPod{pa, pb, other} {
		f.store(p, false)
	}
	f.publish(t, lifecycle(t, pa, t0)...)
	eventually(t, "a held", func() bool { return a.window.Len() == 6 })
	clk.advance(time.Second)
	f.publish(t, lifecycle(t, other, t0)...)
	f.publish(t, lifecycle(t, pb, t0)...)
	eventually(t, "b held", func() bool {
		ps := a.Events([]string{pb.uid}).Pods
		return len(ps) == 1 && len(ps[0].Containers["queue-proxy"]) == 1 && ps[0].Containers["queue-proxy"][0].StartedUnixNS != 0
	})
	st := a.State().Window
	if st.Events != 6 || st.EvictedEvents != 6 || st.LastEvictedUnixNS != t0.UnixNano() || st.MaxEvents != 6 || st.MaxAgeNS != time.Minute.Nanoseconds() {
		t.Errorf("window %+v: want a's 6 events evicted, the last arrived at %d", st, t0.UnixNano())
	}
	if ps := a.Events([]string{pa.uid}).Pods; len(ps) == 1 && ps[0].Sandboxes[0].CreatedUnixNS != 0 {
		t.Errorf("a's evicted events still reported: %+v", ps[0])
	}
	if n := a.owners.m.len(clk.now()); n != 6 {
		t.Errorf("%d owners remembered, want the count bound's 6", n)
	}
	clk.advance(time.Minute + time.Second) // b arrived a second after a
	if st := a.State().Window; st.Events != 0 || st.Pods != 0 || st.EvictedEvents != 12 {
		t.Errorf("after a minute: %+v, want nothing held", st)
	}
	if n := a.owners.m.len(clk.now()); n != 0 {
		t.Errorf("%d owners remembered after a minute", n)
	}
	if resp := a.Events([]string{pa.uid, pb.uid}); len(resp.Pods) != 0 || len(resp.Unknown) != 2 {
		t.Errorf("after a minute: %+v", resp)
	}
}

// bounded keeps a key's place when its value changes, and forgets by
// count and by age from the key's first insertion.
func TestBoundedMap(t *testing.T) {
	b := newBounded[string, int](2, time.Minute)
	b.put("a", 1, t0)
	b.put("b", 1, t0.Add(time.Second))
	b.put("a", 2, t0.Add(2*time.Second)) // updated, still the oldest
	b.put("c", 1, t0.Add(3*time.Second))
	if _, ok := b.get("a", t0.Add(3*time.Second)); ok || b.len(t0.Add(3*time.Second)) != 2 {
		t.Errorf("a kept over the count bound: %v", b.m)
	}
	if _, ok := b.get("b", t0.Add(61*time.Second)); !ok {
		t.Error("b forgotten before a minute")
	}
	if _, ok := b.get("b", t0.Add(62*time.Second)); ok || b.len(t0.Add(62*time.Second)) != 1 {
		t.Errorf("b kept after a minute: %v", b.m)
	}
	var keys []string
	b.each(t0.Add(62*time.Second), func(k string, _ int) { keys = append(keys, k) })
	if !slices.Equal(keys, []string{"c"}) {
		t.Errorf("each: %v", keys)
	}
}
