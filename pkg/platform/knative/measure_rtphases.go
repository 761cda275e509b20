package knative

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coldbench/coldbench/pkg/agent"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// After measure_pods.go (file-name order): its Gather waits until the
// watches show each answered attempt's pod, whose uid and node this one needs.
func init() { registerMeasurement(newRTMeasurement) }

// rtMeasurement adds the runtime-observed phases of each attempt's cold
// pod: containerd's events of it as its node's agent (pkg/agent) kept them,
// read after the replies (untimed) through the API server's pod proxy, and
// set on coldbench's clock. The API server's phases stay as they are: both
// views are in the record. A missing, unhealthy or unreachable agent fails
// nothing: the attempt's runtime_phases says why it has no rt_ phases.
type rtMeasurement struct {
	tr    *tracker
	kube  kubernetes.Interface
	proxy agentProxy
	log   *slog.Logger
	insts []bench.Instance // of the cell being measured; Name is the revision
	// now is coldbench's wall clock, read around each request to an agent
	// for the offset between the clocks.
	now                func() time.Time
	pollEvery, pollFor time.Duration
	warned             map[string]bool // nodes whose agent could not be read, said once
}

// agentPollFor bounds, per cell, the polls for events that reach an agent
// late: by the reply every event of an answered pod was published (its
// containers run), but the agent reads each new container's labels from
// containerd before it keeps its events, which on a loaded node takes a
// while. 5 s is the node backend's 2 s bound for its own subscription plus
// those reads and the round trips through the API server; an event that
// never comes (a lost subscription) costs the cell no more. agentPollEvery
// keeps the polls a few per second per node.
const (
	agentPollFor   = 5 * time.Second
	agentPollEvery = 250 * time.Millisecond
)

// agentClockProbes small requests per node and cell precede the polls: of
// all the requests, the one with the smallest round trip gives the offset
// (through the API server the two halves of a round trip can differ, and
// the bound is half of it). clockProbeUID names no pod: the answer is the
// agent's state and clock alone.
const (
	agentClockProbes = 3
	clockProbeUID    = "coldbench-clock-probe"
)

// maxAgentsInFlight bounds the nodes read at once.
const maxAgentsInFlight = 8

func newRTMeasurement(s *session) bench.Measurement {
	return &rtMeasurement{tr: s.tr, kube: s.kube, proxy: newAgentProxy(s.kube), log: s.log,
		now: time.Now, pollEvery: agentPollEvery, pollFor: agentPollFor, warned: map[string]bool{}}
}

func (*rtMeasurement) Name() string { return "runtime phases" }

func (m *rtMeasurement) Start(_ context.Context, _ bench.Cell, insts []bench.Instance) error {
	m.insts = insts
	return nil
}

// rtMoments are the agent's stamps that make the rt_ phases, in order, of
// one sandbox of the pod and of its containers (podInstances).
var rtMoments = []struct {
	name string
	at   func(podInstances) int64
}{
	{results.PhaseRTSandboxCreated, func(p podInstances) int64 { return p.sandbox.CreatedUnixNS }},
	{results.PhaseRTSandboxStarted, func(p podInstances) int64 { return p.sandbox.StartedUnixNS }},
	{results.PhaseRTUserContainerCreated, func(p podInstances) int64 { return p.user.CreatedUnixNS }},
	{results.PhaseRTUserContainerStarted, func(p podInstances) int64 { return p.user.StartedUnixNS }},
	{results.PhaseRTQueueProxyCreated, func(p podInstances) int64 { return p.queueProxy.CreatedUnixNS }},
	{results.PhaseRTQueueProxyStarted, func(p podInstances) int64 { return p.queueProxy.StartedUnixNS }},
}

// podInstances are the sandbox and containers of a pod whose stamps make
// its rt_ phases.
type podInstances struct{ sandbox, user, queueProxy agent.Instance }

// coldInstances picks them from what the agent holds of p: its first
// sandbox (the cold start's; the kubelet may have made another since), and
// of each container the first that ran in that sandbox. A container whose
// sandbox containerd did not record (SandboxID "") is taken as it comes:
// nothing says it is another sandbox's. So a record never mixes the stamps
// of two sandboxes, e.g. when the agent missed the first sandbox's events
// and holds only those of a second one beside the first's containers.
func coldInstances(p agent.Pod) podInstances {
	if len(p.Sandboxes) == 0 {
		return podInstances{}
	}
	sb := p.Sandboxes[0]
	in := func(name string) agent.Instance {
		for _, c := range p.Containers[name] {
			if c.SandboxID == "" || c.SandboxID == sb.ID {
				return c
			}
		}
		return agent.Instance{}
	}
	return podInstances{sandbox: sb, user: in(UserContainer), queueProxy: in(QueueProxy)}
}

// agentPodComplete: every stamp of the rt_ phases is there.
func agentPodComplete(p agent.Pod) bool {
	in := coldInstances(p)
	for _, mo := range rtMoments {
		if mo.at(in) == 0 {
			return false
		}
	}
	return true
}

// coldPod is an attempt's cold pod, as its node's agent is asked about it.
type coldPod struct {
	name, uid, node string
	answered        bool   // the attempt succeeded: every event of its pod was published
	why             string // why no agent can be asked about it ("": its node's can)
}

// Gather reads, for every released attempt with a cold pod, its node's
// agent and adds the rt_ phases, the clock offset and the note.
func (m *rtMeasurement) Gather(ctx context.Context, _ bench.Cell, out []results.Attempt) {
	if ctx.Err() != nil {
		return // the cell is cut, not recorded
	}
	pods := m.coldPods(out)
	byNode := map[string][]*coldPod{}
	for _, p := range pods {
		if p != nil && p.why == "" {
			byNode[p.node] = append(byNode[p.node], p)
		}
	}
	reads := m.readAgents(ctx, byNode)
	if ctx.Err() != nil {
		return
	}
	for i, p := range pods {
		if p != nil {
			m.record(&out[i], p, reads[p.node])
		}
	}
}

// coldPods are the attempts' cold pods as the watches saw them (nil: an
// attempt not released, or cut by the interrupt).
func (m *rtMeasurement) coldPods(out []results.Attempt) []*coldPod {
	pods := make([]*coldPod, len(out))
	for i := range out {
		a := &out[i]
		if i >= len(m.insts) || !m.insts[i].Ready || a.ErrorClass == results.ErrCanceled {
			continue
		}
		v := m.tr.view(m.insts[i].Name, a.Start)
		p := &coldPod{name: v.pod, uid: v.podUID, node: v.node, answered: a.OK}
		switch {
		case v.pod == "":
			p.why = "no new pod was seen for the attempt"
		case v.podUID == "":
			p.why = "pod " + v.pod + " was seen without its uid"
		case v.node == "":
			p.why = "pod " + v.pod + " was not seen scheduled to a node"
		}
		pods[i] = p
	}
	return pods
}

// nodeRead is what one node's agent answered over a cell's polls.
type nodeRead struct {
	agent string                // the agent's pod ("": none found)
	clock *results.RuntimeClock // of the request with the smallest round trip
	state *agent.State          // as it last answered (nil: it never did)
	pods  map[string]agent.Pod  // by uid, as last answered
	err   error                 // why the polls ended early, or why there were none
}

// readAgents reads the agent of every node in byNode, a few at a time.
func (m *rtMeasurement) readAgents(ctx context.Context, byNode map[string][]*coldPod) map[string]*nodeRead {
	reads := map[string]*nodeRead{}
	if len(byNode) == 0 {
		return reads
	}
	agents, err := listAgents(ctx, m.kube)
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxAgentsInFlight)
	for node, pods := range byNode {
		rd := &nodeRead{pods: map[string]agent.Pod{}, err: err}
		reads[node] = rd
		ap := agents[node]
		if err != nil {
			continue
		}
		if ap == nil {
			rd.err = fmt.Errorf("no node agent runs on node %s (deploy deploy/agent.yaml)", node)
			continue
		}
		rd.agent = ap.Name
		wg.Add(1)
		go func(ap *corev1.Pod, pods []*coldPod) {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			m.readNode(ctx, ap, pods, rd)
		}(ap, pods)
	}
	wg.Wait()
	for node, rd := range reads {
		if rd.state == nil && !m.warned[node] && ctx.Err() == nil {
			m.warned[node] = true
			m.log.Warn("no runtime phases of the pods on this node (said once per node)", "node", node, "err", rd.err)
		}
	}
	return reads
}

// readNode asks node agent ap about pods, first with agentClockProbes small
// requests, then every pollEvery until every answered attempt's pod has
// all its events, the agent can get no more (not subscribed), a request
// fails or pollFor has passed.
func (m *rtMeasurement) readNode(ctx context.Context, ap *corev1.Pod, pods []*coldPod, rd *nodeRead) {
	ctx, cancel := context.WithTimeout(ctx, m.pollFor+agentRequestTimeout)
	defer cancel()
	for range agentClockProbes {
		if rd.err = m.ask(ctx, ap, []string{clockProbeUID}, rd); rd.err != nil {
			return // an agent that does not answer costs one request
		}
	}
	deadline := time.Now().Add(m.pollFor)
	for {
		ask := rd.incomplete(pods, false)
		for len(ask) > 0 { // as many uids per request as the agent takes
			n := min(len(ask), agent.MaxUIDs)
			if rd.err = m.ask(ctx, ap, ask[:n], rd); rd.err != nil {
				return
			}
			ask = ask[n:]
		}
		if len(rd.incomplete(pods, true)) == 0 || !rd.state.Subscription.Healthy || !time.Now().Before(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.pollEvery):
		}
	}
}

// incomplete are the uids of pods (answeredOnly: of answered attempts'
// pods) whose events rd lacks some of.
func (rd *nodeRead) incomplete(pods []*coldPod, answeredOnly bool) []string {
	var uids []string
	for _, p := range pods {
		if got, ok := rd.pods[p.uid]; (!ok || !agentPodComplete(got)) && (p.answered || !answeredOnly) {
			uids = append(uids, p.uid)
		}
	}
	return uids
}

// ask asks agent ap about uids and keeps its answer in rd.
func (m *rtMeasurement) ask(ctx context.Context, ap *corev1.Pod, uids []string, rd *nodeRead) error {
	resp, clock, err := m.proxy.events(ctx, ap, uids, m.now)
	if err != nil {
		return err
	}
	if clock != nil && (rd.clock == nil || clock.ErrorNS < rd.clock.ErrorNS) {
		rd.clock = clock
	}
	rd.state = &resp.Agent
	for _, p := range resp.Pods {
		rd.pods[p.UID] = p
	}
	return nil
}

// record adds to a the rt_ phases of its cold pod p as its node's agent
// answered (rd), on coldbench's clock, with the clock's offset and the
// note saying where they come from or why some or all are missing.
func (m *rtMeasurement) record(a *results.Attempt, p *coldPod, rd *nodeRead) {
	switch {
	case p.why != "":
		a.RuntimePhases = results.RuntimePhasesMissing + p.why
		return
	case rd.state == nil:
		a.RuntimePhases = results.RuntimePhasesMissing + fmt.Sprint(rd.err) // why it never answered
		return
	case rd.clock == nil:
		a.RuntimePhases = results.RuntimePhasesMissing + "coldbench's wall clock stepped back during every request to node agent " +
			rd.agent + ": the node's clock cannot be set against it"
		return
	}
	c := *rd.clock
	a.RuntimeClock = &c
	start := a.Start.Round(0).UnixNano() // wall clock, as function_start
	// function_start is the function's own clock, the node's: on
	// coldbench's clock, with the rt_ phases, it is off by the same offset
	// (0 when coldbench runs on the node).
	for i := range a.Phases {
		if a.Phases[i].Name == results.PhaseFunctionStart {
			a.Phases[i].OffsetNS -= c.OffsetNS
		}
	}
	got, held := rd.pods[p.uid]
	in := coldInstances(got)
	var phases []results.Phase
	var missing []string
	for _, mo := range rtMoments {
		if at := mo.at(in); at != 0 {
			phases = append(phases, results.Phase{Name: mo.name, OffsetNS: at - c.OffsetNS - start})
		} else {
			missing = append(missing, mo.name)
		}
	}
	a.Phases = mergePhases(a.Phases, phases)
	gap := subscriptionGap(rd.state.Subscription, start+c.OffsetNS)
	switch {
	case len(missing) == 0 && gap == "":
		a.RuntimePhases = results.RuntimePhasesFromAgent
	case len(phases) == 0:
		a.RuntimePhases = results.RuntimePhasesMissing + m.whyMissing(p, rd, start+c.OffsetNS, held)
	case len(missing) == 0:
		// All there, but the agent may have missed earlier ones (a
		// sandbox made before it was subscribed): they may not be the
		// cold start's own.
		a.RuntimePhases = results.RuntimePhasesPartial + "node agent " + rd.agent + " on node " + p.node + ": " + gap
	default:
		a.RuntimePhases = results.RuntimePhasesPartial + m.whyMissing(p, rd, start+c.OffsetNS, held) + "; none for " + strings.Join(missing, ", ")
	}
}

// subscriptionGap says why the agent may have missed events published
// since the attempt started (since, on the node's clock), or "".
func subscriptionGap(sub agent.Subscription, since int64) string {
	switch {
	case sub.Healthy && sub.SinceUnixNS > since:
		return fmt.Sprintf("subscribed to containerd's events only %v after the attempt started",
			time.Duration(sub.SinceUnixNS-since).Round(time.Millisecond))
	case sub.LastLossUnixNS > since:
		return "lost its subscription to containerd's events after the attempt started (" + sub.LastLossReason + ")"
	}
	return ""
}

// whyMissing says why the agent did not give all of p's events; since is
// the attempt's start on the node's clock (the pod was created after it).
func (m *rtMeasurement) whyMissing(p *coldPod, rd *nodeRead, since int64, held bool) string {
	var why []string
	if !p.answered {
		why = append(why, "the attempt failed")
	}
	st := rd.state
	var agentWhy []string
	if rd.err != nil {
		agentWhy = append(agentWhy, rd.err.Error())
	}
	if sub := st.Subscription; !sub.Healthy {
		agentWhy = append(agentWhy, "not subscribed to containerd's events: "+sub.Reason)
	} else if gap := subscriptionGap(sub, since); gap != "" {
		agentWhy = append(agentWhy, gap)
	}
	if w := st.Window; w.LastEvictedUnixNS > since {
		agentWhy = append(agentWhy, fmt.Sprintf("evicted events that arrived after the attempt started (%d so far; it holds %d events for %v at most)",
			w.EvictedEvents, w.MaxEvents, time.Duration(w.MaxAgeNS)))
	}
	if !held {
		s := "holds nothing of pod " + p.name
		if st.UnclassifiedEvents > 0 {
			s += fmt.Sprintf(" (%d events whose pod it could not tell, the last: %s)", st.UnclassifiedEvents, st.LastUnclassified)
		}
		agentWhy = append(agentWhy, s)
	}
	if p.answered && rd.err == nil && st.Subscription.Healthy {
		agentWhy = append(agentWhy, fmt.Sprintf("not all seen within %v of the reply", m.pollFor))
	}
	if len(agentWhy) > 0 {
		why = append(why, "node agent "+rd.agent+" on node "+p.node+": "+strings.Join(agentWhy, "; "))
	}
	return strings.Join(why, "; ")
}
