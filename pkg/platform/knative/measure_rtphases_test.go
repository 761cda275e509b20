package knative

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coldbench/coldbench/pkg/agent"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// rtCell is a cell's worth of attempts for the runtime phases measurement:
// each attempt on its own revision, whose cold pod (uid "uid-I", created
// after the attempt's start) the tracker saw on the given node ("": not
// scheduled; no pod at all for instance indices in noPod).
type rtCell struct {
	m     *rtMeasurement
	out   []results.Attempt
	start time.Time
}

func newRTCell(t *testing.T, api *fakeAPI, nodes []string, noPod ...int) *rtCell {
	t.Helper()
	kube := api.kube()
	m := &rtMeasurement{tr: newTracker(), kube: kube, proxy: newAgentProxy(kube), log: bench.LoggerOrDiscard(nil),
		now: time.Now, pollEvery: time.Millisecond, pollFor: time.Minute, warned: map[string]bool{}}
	start := time.Now()
	c := &rtCell{m: m, start: start}
	insts := make([]bench.Instance, len(nodes))
	for i, node := range nodes {
		rev := fmt.Sprintf("rev-%d", i)
		insts[i] = bench.Instance{Name: rev, Ready: true}
		c.out = append(c.out, results.Attempt{Instance: i, OK: true, Start: start, TTFBNS: int64(time.Second), TotalNS: int64(time.Second),
			Phases: []results.Phase{{Name: PhasePodCreated, OffsetNS: int64(100 * time.Millisecond)}, {Name: results.PhaseFirstByte, OffsetNS: int64(time.Second)}}})
		if slices.Contains(noPod, i) {
			continue
		}
		m.tr.onPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), UID: types.UID(fmt.Sprintf("uid-%d", i)),
			Labels: map[string]string{LabelRevision: rev}}, Spec: corev1.PodSpec{NodeName: node}}, false)
	}
	if err := m.Start(context.Background(), bench.Cell{}, insts); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *rtCell) gather() { c.m.Gather(context.Background(), bench.Cell{}, c.out) }

// coldPod is the agent's view of a pod whose events are at the given
// offsets (ms) from at on the node's clock: sandbox created and started,
// user-container created and started, queue-proxy created and started; 0
// is missing.
func agentPod(uid string, at int64, ms ...int64) agent.Pod {
	ts := func(k int) int64 {
		if k >= len(ms) || ms[k] == 0 {
			return 0
		}
		return at + ms[k]*int64(time.Millisecond)
	}
	return agent.Pod{UID: uid, Namespace: "coldbench", Name: "pod",
		Sandboxes: []agent.Instance{{ID: "sb", CreatedUnixNS: ts(0), StartedUnixNS: ts(1)}},
		Containers: map[string][]agent.Instance{
			UserContainer: {{ID: "uc", SandboxID: "sb", CreatedUnixNS: ts(2), StartedUnixNS: ts(3)}},
			QueueProxy:    {{ID: "qp", SandboxID: "sb", CreatedUnixNS: ts(4), StartedUnixNS: ts(5)}}}}
}

// steppedClock reads base, then base + each step in turn (1 ms once the
// steps run out): coldbench's wall clock as the measurement reads it.
type steppedClock struct {
	mu    sync.Mutex
	at    time.Time
	steps []time.Duration
}

func (c *steppedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.at
	step := time.Millisecond
	if len(c.steps) > 0 {
		step, c.steps = c.steps[0], c.steps[1:]
	}
	c.at = c.at.Add(step)
	return t
}

// exactClock has the measurement read coldbench's clock 1 ms apart around
// each request to fa, which answers with its clock skew ahead, read in the
// middle: the offset is known exactly, ±0.5 ms. fa must be the only agent
// asked.
func exactClock(c *rtCell, fa *fakeAgent, skew time.Duration) time.Time {
	base := c.start.Add(2 * time.Second) // after the reply
	clk := &steppedClock{at: base}
	c.m.now = clk.now
	// Request j was sent at base + 2j ms and answered at base + (2j+1) ms.
	fa.nodeTime = func(j int) int64 {
		return base.Add(time.Duration(2*j)*time.Millisecond + 500*time.Microsecond + skew).UnixNano()
	}
	return base
}

// With a node clock 1 h ahead of coldbench's, known exactly (coldbench's
// clock read 1 ms apart around each request, the node's in the middle),
// the rt_ phases are the agent's stamps on coldbench's clock, from the
// attempt's start; sorted among the API server's phases, which stay.
func TestRTPhasesOnColdbenchsClock(t *testing.T) {
	api := newFakeAPI(t)
	fa := api.addAgent("n1")
	c := newRTCell(t, api, []string{"n1"})
	const skew = time.Hour
	exactClock(c, fa, skew)
	fa.pods["uid-0"] = agentPod("uid-0", c.start.Add(skew).UnixNano(), 200, 250, 300, 600, 310, 400)
	// The function's header is the node's clock too: 500 ms after the
	// start on it, 1 h + 500 ms as coldbench recorded it.
	c.out[0].Phases = mergePhases(c.out[0].Phases, []results.Phase{{Name: results.PhaseFunctionStart, OffsetNS: int64(skew + 500*time.Millisecond)}})
	// Complete at the first ask: no poll waited for (a wait would outlast
	// ctx, and the cut cell would have nothing).
	c.m.pollEvery = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.m.Gather(ctx, bench.Cell{}, c.out)

	a := c.out[0]
	if a.RuntimePhases != results.RuntimePhasesFromAgent || !a.OK {
		t.Fatalf("note %q, ok %v", a.RuntimePhases, a.OK)
	}
	if want := (results.RuntimeClock{Node: "n1", OffsetNS: int64(skew), ErrorNS: int64(500 * time.Microsecond)}); a.RuntimeClock == nil || *a.RuntimeClock != want {
		t.Errorf("clock %+v, want %+v", a.RuntimeClock, want)
	}
	want := []results.Phase{{Name: PhasePodCreated, OffsetNS: 100e6},
		{Name: results.PhaseRTSandboxCreated, OffsetNS: 200e6}, {Name: results.PhaseRTSandboxStarted, OffsetNS: 250e6},
		{Name: results.PhaseRTUserContainerCreated, OffsetNS: 300e6}, {Name: results.PhaseRTQueueProxyCreated, OffsetNS: 310e6},
		{Name: results.PhaseRTQueueProxyStarted, OffsetNS: 400e6}, {Name: results.PhaseFunctionStart, OffsetNS: 500e6},
		{Name: results.PhaseRTUserContainerStarted, OffsetNS: 600e6},
		{Name: results.PhaseFirstByte, OffsetNS: 1000e6}}
	if !slices.Equal(a.Phases, want) {
		t.Errorf("phases\n%+v\nwant\n%+v", a.Phases, want)
	}
	// Three clock probes naming no pod, then the pod once: it was complete.
	if got := fa.requests(); len(got) != 4 || !slices.Equal(got[0], []string{clockProbeUID}) || !slices.Equal(got[3], []string{"uid-0"}) {
		t.Errorf("requests %q", got)
	}
}

// Of the requests, the one with the smallest round trip sets the offset
// and its bound, however far the others' halves were from even.
func TestRTPhasesClockFromTheSmallestRoundTrip(t *testing.T) {
	api := newFakeAPI(t)
	fa := api.addAgent("n1")
	c := newRTCell(t, api, []string{"n1"})
	base := c.start.Add(2 * time.Second)
	ms := time.Millisecond
	// Round trips 40, 4, 30 ms (probes) and 20 ms (the pod), 1 ms between.
	clk := &steppedClock{at: base, steps: []time.Duration{40 * ms, ms, 4 * ms, ms, 30 * ms, ms, 20 * ms}}
	c.m.now = clk.now
	sent := []time.Duration{0, 41 * ms, 46 * ms, 77 * ms}
	// The node read its clock early in every round trip (an uneven path);
	// 3 ms into the 4 ms one.
	into := []time.Duration{time.Millisecond, 3 * ms, time.Millisecond, time.Millisecond}
	fa.nodeTime = func(j int) int64 { return base.Add(sent[j] + into[j]).UnixNano() }
	fa.pods["uid-0"] = agentPod("uid-0", c.start.UnixNano(), 1, 2, 3, 4, 5, 6)
	c.gather()
	// The node's clock is coldbench's: the estimate is 1 ms off, within its 2 ms bound.
	want := results.RuntimeClock{Node: "n1", OffsetNS: int64(ms), ErrorNS: int64(2 * ms)}
	if got := c.out[0].RuntimeClock; got == nil || *got != want {
		t.Errorf("clock %+v, want %+v", got, want)
	}
	if off, _ := c.out[0].PhaseOffset(results.PhaseRTSandboxCreated); off != 0 {
		t.Errorf("rt_sandbox_created at %v, want 1 ms − the 1 ms offset", off)
	}
}

// Pods are asked for by node, at most agent.MaxUIDs per request; each
// node's agent is asked only for its pods.
func TestRTPhasesBatchesUIDsPerNode(t *testing.T) {
	api := newFakeAPI(t)
	a1, a2 := api.addAgent("n1"), api.addAgent("n2")
	nodes := make([]string, agent.MaxUIDs+5) // 3 on n2, the rest (MaxUIDs + 2) on n1
	for i := range nodes {
		nodes[i] = "n1"
		if i%400 == 7 {
			nodes[i] = "n2"
		}
	}
	c := newRTCell(t, api, nodes)
	for i, node := range nodes {
		uid := fmt.Sprintf("uid-%d", i)
		fa := a1
		if node == "n2" {
			fa = a2
		}
		fa.pods[uid] = agentPod(uid, c.start.UnixNano(), 1, 2, 3, 4, 5, 6)
	}
	c.gather()
	for i, a := range c.out {
		if a.RuntimePhases != results.RuntimePhasesFromAgent || a.RuntimeClock == nil || a.RuntimeClock.Node != nodes[i] {
			t.Fatalf("attempt %d on %s: note %q, clock %+v", i, nodes[i], a.RuntimePhases, a.RuntimeClock)
		}
	}
	sizes := func(reqs [][]string) []int {
		var n []int
		for _, r := range reqs {
			n = append(n, len(r))
		}
		return n
	}
	if got := sizes(a1.requests()); !slices.Equal(got, []int{1, 1, 1, agent.MaxUIDs, 2}) {
		t.Errorf("n1's requests of %v uids, want 3 probes of 1, then %d and the other 2", got, agent.MaxUIDs)
	}
	if got := sizes(a2.requests()); !slices.Equal(got, []int{1, 1, 1, 3}) {
		t.Errorf("n2's requests of %v uids, want 3 probes of 1, then its 3 pods", got)
	}
}

// Events that reach the agent late are polled for until they are there.
func TestRTPhasesPollsUntilLateEventsArrive(t *testing.T) {
	api := newFakeAPI(t)
	fa := api.addAgent("n1")
	c := newRTCell(t, api, []string{"n1", "n1"})
	fa.pods["uid-0"] = agentPod("uid-0", c.start.UnixNano(), 1, 2, 3, 4, 5, 6)
	fa.pods["uid-1"] = agentPod("uid-1", c.start.UnixNano(), 1, 2, 3, 4, 5, 6)
	fa.heldFrom["uid-1"] = 6 // the 3 probes, then 3 polls without it
	c.gather()
	for i, a := range c.out {
		if a.RuntimePhases != results.RuntimePhasesFromAgent {
			t.Errorf("attempt %d: %q", i, a.RuntimePhases)
		}
	}
	reqs := fa.requests()
	if len(reqs) != 7 || !slices.Equal(reqs[3], []string{"uid-0", "uid-1"}) || !slices.Equal(reqs[6], []string{"uid-1"}) {
		t.Errorf("requests %q: want the complete pod no more asked for, the late one until it came", reqs)
	}
}

// Polls stop at pollFor: what never comes is missing, with why.
func TestRTPhasesPollsNoLongerThanTheBound(t *testing.T) {
	api := newFakeAPI(t)
	fa := api.addAgent("n1")
	c := newRTCell(t, api, []string{"n1"})
	c.m.pollFor, c.m.pollEvery = 30*time.Millisecond, 5*time.Millisecond
	fa.pods["uid-0"] = agentPod("uid-0", c.start.UnixNano(), 1, 2, 3, 0, 5, 6)
	began := time.Now()
	c.gather()
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("Gather took %v", took)
	}
	want := results.RuntimePhasesPartial + "node agent coldbench-agent-n1 on node n1: not all seen within 30ms of the reply; none for " + results.PhaseRTUserContainerStarted
	if a := c.out[0]; a.RuntimePhases != want || !a.OK || len(a.Phases) != 2+5 {
		t.Errorf("note %q (ok %v, %d phases)\nwant %q", a.RuntimePhases, a.OK, len(a.Phases), want)
	}
	if n := len(fa.requests()); n < 5 {
		t.Errorf("%d requests: want it polled", n)
	}
}

// Every reason an attempt has no or not all rt_ phases is in its note; none
// changes whether or how the attempt failed, and only a node agent that
// answered sets a clock.
func TestRTPhasesNotesSayWhy(t *testing.T) {
	const agentN1 = "node agent coldbench-agent-n1 on node n1: "
	for _, c := range []struct {
		name   string
		nodes  []string
		noPod  []int
		failed bool
		set    func(api *fakeAPI, fa *fakeAgent, start time.Time)
		want   string
		clock  bool
	}{
		{name: "no new pod", nodes: []string{"n1"}, noPod: []int{0},
			want: results.RuntimePhasesMissing + "no new pod was seen for the attempt"},
		{name: "not scheduled", nodes: []string{""},
			want: results.RuntimePhasesMissing + "pod pod-0 was not seen scheduled to a node"},
		{name: "no agent on the node", nodes: []string{"n2"},
			want: results.RuntimePhasesMissing + "no node agent runs on node n2 (deploy deploy/agent.yaml)"},
		{name: "agents not listable", nodes: []string{"n1"},
			set:  func(api *fakeAPI, _ *fakeAgent, _ time.Time) { api.listErr = http.StatusForbidden },
			want: results.RuntimePhasesMissing + "listing the node agents in namespace coldbench-system (app.kubernetes.io/name=coldbench-agent): pods is forbidden: User \"x\" cannot list resource \"pods\" in the namespace \"coldbench-system\""},
		{name: "agent answers 503", nodes: []string{"n1"},
			set: func(_ *fakeAPI, fa *fakeAgent, _ time.Time) {
				fa.status, fa.body = http.StatusServiceUnavailable, "upstream connect error"
			},
			want: results.RuntimePhasesMissing + "GET /v1/events of coldbench-system/coldbench-agent-n1 through the API server's proxy: the server is currently unable to handle the request (get pods http:coldbench-agent-n1:8080): upstream connect error"},
		{name: "agent not subscribed", nodes: []string{"n1"}, clock: true,
			set: func(_ *fakeAPI, fa *fakeAgent, _ time.Time) {
				fa.state.Subscription = agent.Subscription{Reason: "containerd event stream lost: EOF", Losses: 1}
			},
			want: results.RuntimePhasesMissing + agentN1 + "not subscribed to containerd's events: containerd event stream lost: EOF; holds nothing of pod pod-0"},
		{name: "subscribed after the pod's creation", nodes: []string{"n1"}, clock: true,
			set: func(_ *fakeAPI, fa *fakeAgent, start time.Time) {
				fa.state.Subscription.SinceUnixNS = start.Add(2 * time.Second).UnixNano()
				fa.pods["uid-0"] = agentPod("uid-0", start.UnixNano(), 0, 0, 0, 2500, 0, 2600)
			},
			want: results.RuntimePhasesPartial + agentN1 + "subscribed to containerd's events only 2s after the attempt started; not all seen within 50ms of the reply; none for " +
				results.PhaseRTSandboxCreated + ", " + results.PhaseRTSandboxStarted + ", " + results.PhaseRTUserContainerCreated + ", " + results.PhaseRTQueueProxyCreated},
		{name: "all six, subscribed after the attempt's start", nodes: []string{"n1"}, clock: true,
			set: func(_ *fakeAPI, fa *fakeAgent, start time.Time) {
				fa.state.Subscription.SinceUnixNS = start.Add(50 * time.Millisecond).UnixNano()
				fa.pods["uid-0"] = agentPod("uid-0", start.UnixNano(), 200, 250, 300, 600, 310, 400)
			},
			want: results.RuntimePhasesPartial + agentN1 + "subscribed to containerd's events only 50ms after the attempt started"},
		{name: "all six, subscription lost and made again since the start", nodes: []string{"n1"}, clock: true,
			set: func(_ *fakeAPI, fa *fakeAgent, start time.Time) {
				fa.state.Subscription.SinceUnixNS = start.Add(-time.Hour).UnixNano() // as if not updated: the loss says it
				fa.state.Subscription.LastLossUnixNS, fa.state.Subscription.LastLossReason = start.Add(time.Millisecond).UnixNano(), "EOF"
				fa.pods["uid-0"] = agentPod("uid-0", start.UnixNano(), 200, 250, 300, 600, 310, 400)
			},
			want: results.RuntimePhasesPartial + agentN1 + "lost its subscription to containerd's events after the attempt started (EOF)"},
		{name: "evicted after the pod's creation", nodes: []string{"n1"}, clock: true,
			set: func(_ *fakeAPI, fa *fakeAgent, start time.Time) {
				fa.state.Window.EvictedEvents, fa.state.Window.LastEvictedUnixNS = 40, start.Add(time.Second).UnixNano()
			},
			want: results.RuntimePhasesMissing + agentN1 + "evicted events that arrived after the attempt started (40 so far; it holds 16384 events for 10m0s at most); holds nothing of pod pod-0; not all seen within 50ms of the reply"},
		{name: "pod unknown to the agent", nodes: []string{"n1"}, clock: true,
			set: func(_ *fakeAPI, fa *fakeAgent, _ time.Time) {
				fa.state.UnclassifiedEvents, fa.state.LastUnclassified = 2, "container c1: not found"
			},
			want: results.RuntimePhasesMissing + agentN1 + "holds nothing of pod pod-0 (2 events whose pod it could not tell, the last: container c1: not found); not all seen within 50ms of the reply"},
		{name: "failed attempt", nodes: []string{"n1"}, failed: true, clock: true,
			set: func(_ *fakeAPI, fa *fakeAgent, start time.Time) {
				fa.pods["uid-0"] = agentPod("uid-0", start.UnixNano(), 1, 2, 3, 0, 5, 0)
			},
			want: results.RuntimePhasesPartial + "the attempt failed; none for " + results.PhaseRTUserContainerStarted + ", " + results.PhaseRTQueueProxyStarted},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := newFakeAPI(t)
			fa := api.addAgent("n1")
			cell := newRTCell(t, api, c.nodes, c.noPod...)
			cell.m.pollFor = 50 * time.Millisecond
			if c.failed {
				cell.out[0].OK, cell.out[0].ErrorClass, cell.out[0].Error = false, results.ErrCrashed, "user-container exited 1"
			}
			if c.set != nil {
				c.set(api, fa, cell.start)
			}
			exactClock(cell, fa, 0)
			before := cell.out[0]
			cell.gather()
			a := cell.out[0]
			if a.RuntimePhases != c.want {
				t.Errorf("note\n%q\nwant\n%q", a.RuntimePhases, c.want)
			}
			if a.OK != before.OK || a.ErrorClass != before.ErrorClass || a.Error != before.Error {
				t.Errorf("the attempt's outcome changed: %v %q %q", a.OK, a.ErrorClass, a.Error)
			}
			if (a.RuntimeClock != nil) != c.clock {
				t.Errorf("clock %+v, want one: %v", a.RuntimeClock, c.clock)
			}
		})
	}
}

// An interrupted cell is not recorded: nothing is asked or added.
func TestRTPhasesNothingOnceInterrupted(t *testing.T) {
	api := newFakeAPI(t)
	fa := api.addAgent("n1")
	c := newRTCell(t, api, []string{"n1"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.m.Gather(ctx, bench.Cell{}, c.out)
	if a := c.out[0]; a.RuntimePhases != "" || a.RuntimeClock != nil || len(fa.requests()) != 0 {
		t.Errorf("interrupted: note %q, clock %+v, %d requests", a.RuntimePhases, a.RuntimeClock, len(fa.requests()))
	}
}

// A pod whose first sandbox the agent holds beside containers of another
// sandbox (the kubelet made a second one, or the agent missed the first's
// events): its rt_ phases are of one sandbox only, never a mix, and a
// container of no recorded sandbox is taken as it comes.
func TestColdInstancesNeverMixSandboxes(t *testing.T) {
	p := agent.Pod{UID: "u",
		Sandboxes: []agent.Instance{{ID: "sb2", CreatedUnixNS: 20, StartedUnixNS: 21}},
		Containers: map[string][]agent.Instance{
			UserContainer: {{ID: "uc1", SandboxID: "sb1", CreatedUnixNS: 5, StartedUnixNS: 6}, {ID: "uc2", SandboxID: "sb2", CreatedUnixNS: 22, StartedUnixNS: 23}},
			QueueProxy:    {{ID: "qp1", SandboxID: "sb1", CreatedUnixNS: 7, StartedUnixNS: 8}},
		}}
	in := coldInstances(p)
	if in.sandbox.ID != "sb2" || in.user.ID != "uc2" || in.queueProxy.ID != "" {
		t.Errorf("picked %+v", in)
	}
	if agentPodComplete(p) {
		t.Error("complete without a queue-proxy of sandbox sb2")
	}
	p.Containers[QueueProxy] = append(p.Containers[QueueProxy], agent.Instance{ID: "qp?", CreatedUnixNS: 24, StartedUnixNS: 25})
	if in := coldInstances(p); in.queueProxy.ID != "qp?" || !agentPodComplete(p) {
		t.Errorf("a container of no recorded sandbox not taken: %+v", in)
	}
	if in := coldInstances(agent.Pod{UID: "u", Containers: p.Containers}); in != (podInstances{}) {
		t.Errorf("no sandbox held, yet picked %+v", in)
	}
}
