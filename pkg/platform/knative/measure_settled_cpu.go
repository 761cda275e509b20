package knative

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/coldbench/coldbench/pkg/agent"
	"github.com/coldbench/coldbench/pkg/results"
)

// The CPU to each pod's first byte, from the node agents' samples
// (pkg/agent's cpu.go): the footprint measurement arms the agents just
// before a measured cell's release, so that they sample every pod created
// in it, and once the replies are in asks each agent for the samples
// around each of its pods' first byte, then disarms them.

// armMargin is how long past the request timeout the agents stay armed:
// a pod is created within the timeout of its request, and Gather disarms
// them as soon as the cell's replies are in.
const armMargin = time.Minute

// cpuAskWaits are the pauses between asks while a pod has no sample after
// its first byte yet, or the ask failed (the agent samples every 100 ms or
// more, more on a loaded node; the API server's proxy can fail a request
// on a loaded one).
var cpuAskWaits = []time.Duration{300 * time.Millisecond, time.Second, 3 * time.Second, 5 * time.Second}

// cpuAt is a pod's samples around its first byte as its agent gave them,
// the clock used to put the first byte on the node's clock, or why not.
type cpuAt struct {
	got   *agent.PodCPUAt
	clock *results.RuntimeClock
	why   string
}

// cpu asks agent ap for its arming (arm ≥ 0: arm or disarm; < 0: leave)
// and the samples of the moments ats (UID@UNIXNS[:ERRNS]); done: the
// agent stops sampling the pods whose answer is whole.
func (ap agentProxy) cpu(ctx context.Context, p *corev1.Pod, arm time.Duration, ats []string, done bool, now func() time.Time) (*agent.CPUResponse, *results.RuntimeClock, error) {
	q := url.Values{}
	if arm >= 0 {
		q.Set("arm", arm.String())
	}
	if len(ats) > 0 {
		q["at"] = ats
	}
	if done {
		q.Set("done", "1")
	}
	var resp agent.CPUResponse
	clock, err := ap.getTimed(ctx, p, "/v1/cpu", q, now, &resp, func() int64 { return resp.NodeTimeUnixNS })
	if err != nil {
		return nil, nil, err
	}
	return &resp, clock, nil
}

// armAgents arms (d > 0) or disarms (d = 0) every agent.
func (m *settledFootprint) armAgents(ctx context.Context, agents map[string]*corev1.Pod, d time.Duration) {
	var mu sync.Mutex
	errs := map[string]error{}
	eachAgent(agents, func(node string, ap *corev1.Pod) {
		if _, _, err := m.proxy.cpu(ctx, ap, d, nil, false, m.now); err != nil {
			mu.Lock()
			defer mu.Unlock()
			errs[node] = err
		}
	})
	m.warnArming(d, errs)
}

// warnArming logs the nodes whose agent could not be armed (d > 0) or
// disarmed (d = 0), once per node and operation: Gather says per pod what
// is missing, and a disarm that failed ends on its own, at the arming's
// end.
func (m *settledFootprint) warnArming(d time.Duration, errs map[string]error) {
	op, what := "arm", "cannot arm the node agent's cpu sampling (said once per node): no cpu to first byte on it"
	if d == 0 {
		op, what = "disarm", "cannot disarm the node agent's cpu sampling (said once per node): it samples new pods until the arming ends"
	}
	for node, err := range errs {
		if key := op + " cpu " + node; !m.warned[key] {
			m.warned[key] = true
			m.log.Warn(what, "node", node, "err", err)
		}
	}
}

// cpuAtFirstBytes asks each node's agent for the samples around the first
// byte of each of pods (answered attempts of out), a few times while some
// have no sample after it yet, then disarms the agents.
func (m *settledFootprint) cpuAtFirstBytes(ctx context.Context, pods []footprintPod, out []results.Attempt, agents map[string]*corev1.Pod, agentsErr error) map[string]cpuAt {
	got := map[string]cpuAt{}
	byNode := map[string][]footprintPod{}
	for _, p := range pods {
		byNode[p.node] = append(byNode[p.node], p)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxAgentsInFlight)
	for node, ps := range byNode {
		ap := agents[node]
		if ap == nil {
			why := "no node agent runs on node " + node
			if agentsErr != nil {
				why = agentsErr.Error()
			}
			for _, p := range ps {
				got[p.uid] = cpuAt{why: why}
			}
			continue
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			res := m.askCPU(ctx, ap, ps, out)
			mu.Lock()
			defer mu.Unlock()
			for uid, c := range res {
				got[uid] = c
			}
		})
	}
	wg.Wait()
	m.armAgents(ctx, agents, 0)
	return got
}

// askCPU asks agent ap about ps, again after a pause while some have no
// sample after their first byte and the agent still samples them.
func (m *settledFootprint) askCPU(ctx context.Context, ap *corev1.Pod, ps []footprintPod, out []results.Attempt) map[string]cpuAt {
	res := map[string]cpuAt{}
	clock, why := m.nodeClock(ctx, ap, ps, out)
	if clock == nil {
		for _, p := range ps {
			res[p.uid] = cpuAt{why: why}
		}
		return res
	}
	left := ps
	for try := 0; ; try++ {
		var again []footprintPod
		for from := 0; from < len(left); from += footprintBatch {
			batch := left[from:min(from+footprintBatch, len(left))]
			ats := make([]string, len(batch))
			for k, p := range batch {
				a := &out[p.attempt]
				firstByte := a.Start.Round(0).UnixNano() + a.TTFBNS + clock.OffsetNS // on the node's clock
				ats[k] = fmt.Sprintf("%s@%d:%d", p.uid, firstByte, clock.ErrorNS)
			}
			resp, _, err := m.proxy.cpu(ctx, ap, -1, ats, true, m.now)
			for k, p := range batch {
				switch {
				case err != nil:
					res[p.uid] = cpuAt{why: err.Error()}
					if !apierrors.IsNotFound(err) { // not an agent older than /v1/cpu
						again = append(again, p)
					}
				case k >= len(resp.Pods) || resp.Pods[k].UID != p.uid:
					res[p.uid] = cpuAt{why: "node agent " + ap.Name + " answered for other pods than asked"}
				default:
					pa := resp.Pods[k]
					res[p.uid] = cpuAt{got: &pa, clock: clock}
					if pa.After == nil && pa.Sampling {
						again = append(again, p)
					}
				}
			}
		}
		if len(again) == 0 || try >= len(cpuAskWaits) {
			return res
		}
		if err := m.sleep(ctx, cpuAskWaits[try]); err != nil {
			return res
		}
		left = again
	}
}

// nodeClock is agent ap's node's clock against coldbench's: the runtime
// phases' (the best of their few requests) if they took one, else the
// best of a few requests now; nil and why if none could be taken.
func (m *settledFootprint) nodeClock(ctx context.Context, ap *corev1.Pod, ps []footprintPod, out []results.Attempt) (*results.RuntimeClock, string) {
	var best *results.RuntimeClock
	for _, p := range ps {
		if c := out[p.attempt].RuntimeClock; c != nil && c.Node == ap.Spec.NodeName && (best == nil || c.ErrorNS < best.ErrorNS) {
			best = c
		}
	}
	if best != nil {
		return best, ""
	}
	why := "coldbench's wall clock stepped back during every request to node agent " + ap.Name
	for range agentClockProbes {
		_, c, err := m.proxy.cpu(ctx, ap, -1, nil, false, m.now)
		if err != nil {
			return nil, err.Error()
		}
		if c != nil && (best == nil || c.ErrorNS < best.ErrorNS) {
			best = c
		}
	}
	return best, why
}

// cpuToFirstByte fills f's CPU to the first byte from c, or says why not.
// The agent's counters only grow, so the CPU at the first byte lies
// between the sample read wholly before it (and before the clock's error)
// and the one read wholly after: the figure is the interpolation between
// the two samples' midpoints, and its error the larger distance to either.
func cpuToFirstByte(f *results.Footprint, c cpuAt) string {
	if c.got == nil {
		return "cpu to first byte: node agent: " + c.why
	}
	g := c.got
	b, a := g.Before, g.After
	from := fmt.Sprintf("%.0f ms before", float64(g.AtNS-ptrOr(b).ReadToUnixNS)/1e6)
	if b == nil && a != nil && g.SampledFromUnixNS > 0 && g.SampledFromUnixNS <= g.AtNS {
		// No sample read before the first byte (a quick start, or reads
		// that failed while the containers were being made): the counters
		// start at 0 with the pod, so 0 bounds it from below.
		b = &agent.CPUSample{ReadFromUnixNS: g.SampledFromUnixNS, ReadToUnixNS: g.SampledFromUnixNS}
		from = "from 0 at the sandbox's creation (no sample before the first byte)"
	}
	if b == nil || a == nil {
		return "cpu to first byte: " + g.Missing
	}
	if a.CPUNS < b.CPUNS {
		return fmt.Sprintf("cpu to first byte: the node agent read %d ns after the first byte, less than the %d ns before it (shims found: %d, then %d)", a.CPUNS, b.CPUNS, b.Shims, a.Shims)
	}
	bt, at := (b.ReadFromUnixNS+b.ReadToUnixNS)/2, (a.ReadFromUnixNS+a.ReadToUnixNS)/2
	v := b.CPUNS
	if at > bt {
		frac := float64(min(max(g.AtNS-bt, 0), at-bt)) / float64(at-bt)
		v += int64(frac * float64(a.CPUNS-b.CPUNS))
	}
	f.CPUToFirstByteNS = ptr(v)
	f.CPUToFirstByteErrorNS = ptr(max(v-b.CPUNS, a.CPUNS-v))
	f.Sources["cpu_to_first_byte"] = fmt.Sprintf("pod cgroup + shims, sampled by the node agent %s and %.0f ms after the first byte (node clock, offset ± %.1f ms), interpolated",
		from, float64(a.ReadFromUnixNS-g.AtNS)/1e6, float64(c.clock.ErrorNS)/1e6)
	return ""
}

func ptrOr(s *agent.CPUSample) agent.CPUSample {
	if s == nil {
		return agent.CPUSample{}
	}
	return *s
}
