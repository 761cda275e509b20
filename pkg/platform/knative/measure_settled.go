package knative

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coldbench/coldbench/pkg/agent"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/footprint"
	"github.com/coldbench/coldbench/pkg/results"
)

// After measure_pods.go and measure_rtphases.go (file-name order): it
// needs each attempt's pod as the watches saw it, and its settle must not
// delay the runtime phases' polls.
func init() { registerMeasurement(newSettledFootprint) }

// settledFootprint measures what each answered attempt's pod costs its
// node once the cell's instances have been idle for the settle
// (spec.footprint), from two sources read side by side:
//   - the node's agent (pkg/agent's /v1/footprint): the PSS of the pod's
//     processes (its shims and their descendants, and its pod cgroup's:
//     the function, queue-proxy, pause, runsc's sandbox and gofers), the
//     pod cgroup's memory, the CPU of the cgroup and the shims, and the
//     node's MemAvailable before the cell and after the settle, read by
//     the node backend's own code;
//   - the kubelet's Summary API (summary.go): the pod cgroup's working set,
//     usage and CPU as cAdvisor last read them.
//
// Without an agent on a node the record's figures are the kubelet's
// (Source says which). Reads happen at the settle's half (CPU) and end
// (CPU and memory): the idle CPU is their difference. The CPU to the first
// byte comes from the agents' samples (measure_settled_cpu.go): the
// replies come in together and the agent is reached through the API
// server, so no read can be taken just after each reply as the node
// backend does.
type settledFootprint struct {
	tr         *tracker
	kube       kubernetes.Interface
	rc         rest.Interface // the kubelet's Summary API through the API server (nil: none)
	proxy      agentProxy
	log        *slog.Logger
	settle     time.Duration
	interleave bool
	now        func() time.Time
	sleep      func(ctx context.Context, d time.Duration) error

	insts     []bench.Instance
	skip      bool // a warm-up, or the control half of an interleaved A/B
	control   bool
	memBefore map[string]nodeMem // by node, read at Start
	// memBeforeErr: the agents could not be listed at Start.
	memBeforeErr string
	warned       map[string]bool
}

// nodeMem is a node's MemAvailable as its agent read it, or why not.
type nodeMem struct {
	bytes *int64
	why   string
}

func newSettledFootprint(s *session) bench.Measurement {
	spec := s.exp.Spec.Footprint
	if spec == nil || spec.Off {
		return nil
	}
	proxy := newAgentProxy(s.kube) // its REST client (nil with a fake clientset) reads the Summary API too
	return &settledFootprint{tr: s.tr, kube: s.kube, rc: proxy.rc, proxy: proxy, log: s.log,
		settle: spec.Settle.Duration, interleave: spec.Interleave, now: time.Now, sleep: bench.Sleep, warned: map[string]bool{}}
}

func (*settledFootprint) Name() string { return "footprint" }

// Start reads every agent's node MemAvailable before the release (the
// cell's pods are not running yet: scaled to zero, or not made).
func (m *settledFootprint) Start(ctx context.Context, cell bench.Cell, insts []bench.Instance) error {
	m.insts = insts
	m.control = !cell.Warmup && m.interleave && cell.Iteration%2 == 0
	m.memBefore, m.memBeforeErr = map[string]nodeMem{}, ""
	if m.skip = cell.Warmup || m.control; m.skip {
		return nil
	}
	agents, err := listAgents(ctx, m.kube)
	if err != nil {
		m.memBeforeErr = err.Error() // Gather says it per pod
		return nil
	}
	// Each node's MemAvailable, then its agent armed for the cell's pods.
	arm := min(cell.RequestTimeout+armMargin, time.Hour)
	var mu sync.Mutex
	armErrs := map[string]error{}
	eachAgent(agents, func(node string, ap *corev1.Pod) {
		nm := nodeMem{}
		if resp, err := m.proxy.footprint(ctx, ap, nil, false); err != nil {
			nm.why = err.Error()
		} else if nm.bytes = resp.MemAvailableBytes; nm.bytes == nil {
			nm.why = resp.MemAvailableMissing
		}
		_, _, armErr := m.proxy.cpu(ctx, ap, arm, nil, false, m.now)
		mu.Lock()
		defer mu.Unlock()
		m.memBefore[node] = nm
		if armErr != nil {
			armErrs[node] = armErr
		}
	})
	m.warnArming(arm, armErrs)
	return nil
}

// footprintBatch bounds the pods of one /v1/footprint request: the agent
// lists each pod's sandbox from containerd and reads the PSS of every one
// of its processes within the request's 5 s (agentRequestTimeout), which a
// step of hundreds of pods on a loaded node would not fit in one request.
const footprintBatch = 50

// footprintPod is an answered attempt's pod.
type footprintPod struct {
	attempt   int
	uid, node string
}

// nodeReading is one read of a node: its agent's answer and its kubelet's
// summary.
type nodeReading struct {
	agentResp *agent.FootprintResponse
	agentErr  error
	pods      map[string]agent.PodFootprint // by uid
	summary   map[string]summaryPod
	sumErr    error
}

// Gather lets the instances settle and reads them.
func (m *settledFootprint) Gather(ctx context.Context, _ bench.Cell, out []results.Attempt) {
	if m.skip {
		if m.control { // idles as long as a measured cell (see the node backend's)
			_ = m.sleep(ctx, m.settle)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	var pods []footprintPod
	byNode := map[string][]string{}
	cellPods := map[string][2]int{} // by node: the cell's pods there, and those that answered
	for i := range out {
		a := &out[i]
		if i >= len(m.insts) || !m.insts[i].Ready || a.ErrorClass == results.ErrCanceled {
			continue
		}
		v := m.tr.view(m.insts[i].Name, a.Start)
		if v.podUID == "" || v.node == "" {
			continue
		}
		c := cellPods[v.node]
		c[0]++
		if a.OK {
			c[1]++
			pods = append(pods, footprintPod{attempt: i, uid: v.podUID, node: v.node})
			byNode[v.node] = append(byNode[v.node], v.podUID)
		}
		cellPods[v.node] = c
	}
	agents, agentsErr := listAgents(ctx, m.kube)
	if len(pods) == 0 {
		m.armAgents(ctx, agents, 0)
		return
	}
	cpus := m.cpuAtFirstBytes(ctx, pods, out, agents, agentsErr)
	began := m.now()
	if err := m.sleep(ctx, m.settle/2); err != nil {
		return // the run ends: the cell is not recorded
	}
	first := m.read(ctx, byNode, agents, agentsErr, false)
	if err := m.sleep(ctx, m.settle-m.now().Sub(began)); err != nil {
		return
	}
	second := m.read(ctx, byNode, agents, agentsErr, true)
	settled := m.now().Sub(began)
	for _, p := range pods {
		c := cellPods[p.node]
		out[p.attempt].Footprint = m.record(p, first[p.node], second[p.node], m.memBefore[p.node], cpus[p.uid], began, settled, c[0], c[1])
	}
}

// read reads every node of byNode once, a few nodes at a time.
func (m *settledFootprint) read(ctx context.Context, byNode map[string][]string, agents map[string]*corev1.Pod, agentsErr error, withMemory bool) map[string]*nodeReading {
	reads := map[string]*nodeReading{}
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxAgentsInFlight)
	for node, uids := range byNode {
		rd := &nodeReading{pods: map[string]agent.PodFootprint{}}
		reads[node] = rd
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			rd.summary, rd.sumErr = readSummary(ctx, m.rc, node)
			switch ap := agents[node]; {
			case agentsErr != nil:
				rd.agentErr = agentsErr
			case ap == nil:
				rd.agentErr = fmt.Errorf("no node agent runs on node %s (deploy deploy/agent.yaml)", node)
			default:
				for len(uids) > 0 {
					n := min(len(uids), footprintBatch)
					resp, err := m.proxy.footprint(ctx, ap, uids[:n], withMemory)
					if err != nil {
						rd.agentErr = err
						break
					}
					rd.agentResp = resp
					for _, p := range resp.Pods {
						rd.pods[p.UID] = p
					}
					uids = uids[n:]
				}
			}
		})
	}
	wg.Wait()
	for node, rd := range reads {
		if rd.agentErr != nil && !m.warned[node] {
			m.warned[node] = true
			m.log.Warn("no footprint from the node agent (said once per node): the kubelet's figures stand in", "node", node, "err", rd.agentErr)
		}
	}
	return reads
}

// record makes pod p's footprint from the settle's two reads of its node.
func (m *settledFootprint) record(p footprintPod, first, second *nodeReading, before nodeMem, cpu cpuAt, repliedBy time.Time, settled time.Duration, onNode, answered int) *results.Footprint {
	f := &results.Footprint{Source: results.FootprintFromAgent, SettleNS: settled.Nanoseconds(), Sources: map[string]string{},
		NodeInstances: onNode, NodeInstancesAnswered: answered}
	var missing []string
	if why := cpuToFirstByte(f, cpu); why != "" {
		missing = append(missing, why)
	}
	f.Kubelet = kubeletFootprint(p.uid, first, second, repliedBy)
	ap, ok := second.pods[p.uid]
	switch {
	case second.agentErr != nil:
		missing = append(missing, "node agent: "+second.agentErr.Error())
	case !ok:
		missing = append(missing, "node agent: it did not answer for pod "+p.uid)
	default:
		missing = append(missing, ap.Missing...)
		if mem := ap.Memory; mem != nil {
			f.PSSBytes, f.PSSAnonShmemBytes = mem.PSSBytes, mem.PSSAnonShmemBytes
			f.CgroupUsageBytes, f.CgroupWorkingSetBytes = mem.CgroupUsageBytes, mem.CgroupWorkingSetBytes
			for _, pr := range mem.Processes {
				f.Processes = append(f.Processes, results.FootprintProcess{Comm: pr.Comm, PID: pr.PID, PSSBytes: pr.PSSBytes})
			}
			maps.Copy(f.Sources, mem.Sources)
			missing = append(missing, mem.Missing...)
		}
		if from, ok := first.pods[p.uid]; ok && from.CPUNS != nil && ap.CPUNS != nil {
			if why := idleNotComparable(from, ap); why != "" {
				missing = append(missing, "idle cpu: "+why)
			} else {
				f.IdleCPUNS, f.IdleWindowNS = ptr(*ap.CPUNS-*from.CPUNS), ap.CPUReadUnixNS-from.CPUReadUnixNS
				f.Sources["idle_cpu"] = ap.CPUSource + ", over the settle's second half, by the node agent"
			}
		} else if first.agentErr != nil {
			missing = append(missing, "idle cpu: node agent at the settle's half: "+first.agentErr.Error())
		} else if from, ok := first.pods[p.uid]; !ok || from.CPUNS == nil {
			why := "it did not answer for the pod"
			if ok {
				why = cmp.Or(strings.Join(from.Missing, "; "), "no cpu figure")
			}
			missing = append(missing, "idle cpu: node agent at the settle's half: "+why)
		}
		if before.bytes == nil {
			missing = append(missing, "node MemAvailable before the cell: "+cmp.Or(before.why, m.memBeforeErr, "no node agent answered before the cell"))
		} else if after := second.agentResp.MemAvailableBytes; after == nil {
			missing = append(missing, "node MemAvailable after the settle: "+second.agentResp.MemAvailableMissing)
		} else {
			f.NodeMemAvailableDropBytes = ptr(*before.bytes - *after)
			f.Sources["node_mem_available"] = "/proc/meminfo MemAvailable before the cell and after the settle, by the node agent"
		}
	}
	if second.agentErr != nil || !ok {
		f.Source = results.FootprintFromKubelet
		k := f.Kubelet
		f.CgroupUsageBytes, f.CgroupWorkingSetBytes, f.IdleCPUNS, f.IdleWindowNS = k.UsageBytes, k.WorkingSetBytes, k.IdleCPUNS, k.IdleWindowNS
		const src = "kubelet Summary API (cAdvisor's reading of the pod cgroup)"
		if k.UsageBytes != nil {
			f.Sources["cgroup_memory"] = src
		}
		if k.WorkingSetBytes != nil {
			f.Sources["cgroup_working_set"] = src
		}
		if k.IdleCPUNS != nil {
			f.Sources["idle_cpu"] = src + ", between two of its readings after the cell's replies"
		}
		if k.Missing != "" {
			missing = append(missing, "kubelet: "+k.Missing)
		}
	}
	f.Missing = strings.Join(slices.Compact(missing), "; ")
	return f
}

// idleNotComparable says why the agent's two CPU readings of a pod cannot
// be subtracted ("" when they can). The agent finds a pod's shims anew at
// each request, from the pod cgroup's processes; a shim found at one read
// only (a gVisor pod's shims of other containers show through processes
// that come and go) puts its whole CPU since creation on one side, which
// gave a negative idle CPU on the lab (CI, gVisor at N = 10: −314 ms).
func idleNotComparable(from, to agent.PodFootprint) string {
	if from.Instance != nil && to.Instance != nil && !sameShims(from.Instance.Shims, to.Instance.Shims) {
		return fmt.Sprintf("the node agent found the shims %s at the settle's half and %s at its end: their CPU does not subtract", shimList(from.Instance.Shims), shimList(to.Instance.Shims))
	}
	if *to.CPUNS < *from.CPUNS {
		return fmt.Sprintf("the node agent read %d ns of CPU at the settle's end, less than the %d ns at its half", *to.CPUNS, *from.CPUNS)
	}
	return ""
}

// sameShims: the same processes (pid and start time), in any order.
func sameShims(a, b []footprint.Shim) bool {
	byPID := func(x, y footprint.Shim) int {
		return cmp.Or(cmp.Compare(x.PID, y.PID), cmp.Compare(x.Started, y.Started))
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, byPID)
	slices.SortFunc(b, byPID)
	return slices.Equal(a, b)
}

func shimList(ss []footprint.Shim) string {
	pids := make([]string, len(ss))
	for i, s := range ss {
		pids[i] = strconv.Itoa(s.PID)
	}
	return "[" + strings.Join(pids, " ") + "]"
}

// kubeletFootprint is pod uid as the kubelet's summaries gave it at the
// two reads (its Missing says what they lacked). The idle CPU is taken
// only between two of cAdvisor's readings both after repliedBy, the cell's
// last reply (the node's clock read as coldbench's, to the second: a
// reading from before may hold the cold start's CPU).
func kubeletFootprint(uid string, first, second *nodeReading, repliedBy time.Time) *results.KubeletFootprint {
	k := &results.KubeletFootprint{}
	s, ok := second.summary[uid]
	switch {
	case second.sumErr != nil:
		k.Missing = second.sumErr.Error()
		return k
	case !ok:
		k.Missing = "the kubelet's summary has no pod " + uid
		return k
	}
	// A running pod's cgroup is never empty: zeros are the kubelet's
	// "nothing read yet" (cAdvisor had not read a new pod's cgroup).
	var missing []string
	if mem := s.Memory; mem != nil && (positive(mem.WorkingSetBytes) || positive(mem.UsageBytes)) {
		k.MemoryUnixNS = mem.Time.UnixNano()
		if positive(mem.WorkingSetBytes) {
			k.WorkingSetBytes = int64Of(mem.WorkingSetBytes)
		}
		if positive(mem.UsageBytes) {
			k.UsageBytes = int64Of(mem.UsageBytes)
		}
	} else {
		missing = append(missing, "memory: the kubelet had not read the pod's yet")
	}
	cpu := s.CPU
	if cpu == nil || !positive(cpu.UsageCoreNanoSeconds) {
		missing = append(missing, "cpu: the kubelet had not read the pod's yet")
		k.Missing = strings.Join(missing, "; ")
		return k
	}
	k.CPUNS, k.CPUUnixNS = int64Of(cpu.UsageCoreNanoSeconds), cpu.Time.UnixNano()
	f, ok := first.summary[uid]
	switch {
	case !ok || f.CPU == nil || !positive(f.CPU.UsageCoreNanoSeconds) || !cpu.Time.After(f.CPU.Time):
		missing = append(missing, "idle cpu: the kubelet did not read the pod's cpu again within the settle's second half")
	case f.CPU.Time.Before(repliedBy):
		missing = append(missing, "idle cpu: the kubelet's reading at the settle's half was from before the cell's last reply")
	default:
		k.IdleCPUNS = ptr(int64(*cpu.UsageCoreNanoSeconds) - int64(*f.CPU.UsageCoreNanoSeconds))
		k.IdleWindowNS = cpu.Time.Sub(f.CPU.Time).Nanoseconds()
	}
	k.Missing = strings.Join(missing, "; ")
	return k
}

func positive(v *uint64) bool { return v != nil && *v > 0 }

func int64Of(v *uint64) *int64 {
	if v == nil {
		return nil
	}
	return ptr(int64(*v))
}

func ptr[T any](v T) *T { return &v }
