package knative

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/coldbench/coldbench/pkg/agent"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/footprint"
	"github.com/coldbench/coldbench/pkg/results"
)

// The kubelet's summary as the lab's kubelet served it (trimmed to three
// pods) is read by uid with each figure and its time.
func TestParseSummaryOfTheLab(t *testing.T) {
	body, err := os.ReadFile("testdata/kubelet-summary.json")
	if err != nil {
		t.Fatal(err)
	}
	pods, err := parseSummary(body)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := pods["e86d53d2-8f5c-4790-acdc-70c4a22483d8"]
	if len(pods) != 3 || !ok {
		t.Fatalf("pods %v", pods)
	}
	if p.Memory == nil || *p.Memory.WorkingSetBytes != 25628672 || *p.Memory.UsageBytes != 25640960 ||
		p.CPU == nil || *p.CPU.UsageCoreNanoSeconds != 9175016248 || !p.CPU.Time.Equal(time.Date(2026, 12, 7, 11, 43, 58, 0, time.UTC)) {
		t.Errorf("pod %+v", p)
	}
	if _, err := parseSummary([]byte("<html>")); err == nil {
		t.Error("a body that is not JSON was read")
	}
}

// summaryJSON is a node's summary with one pod: working set ws, usage and
// CPU cpu read at at.
func summaryJSON(uid string, ws, usage, cpu uint64, at time.Time) []byte {
	ts := at.UTC().Format(time.RFC3339)
	return fmt.Appendf(nil, `{"node":{"nodeName":"n1"},"pods":[{"podRef":{"name":"p","namespace":"cb","uid":%q},`+
		`"cpu":{"time":%q,"usageCoreNanoSeconds":%d},"memory":{"time":%q,"usageBytes":%d,"workingSetBytes":%d}}]}`, uid, ts, cpu, ts, usage, ws)
}

// settledCell is one answered attempt on revision rev-0 whose pod uid-0
// runs on node n1, with a settle of 2 s on a fake clock.
func settledCell(t *testing.T, api *fakeAPI) (*settledFootprint, []results.Attempt, *[]time.Duration) {
	t.Helper()
	kube := api.kube()
	start := time.Now() // the tracker takes a pod seen after it as the attempt's
	clock := start.Add(3 * time.Second)
	var slept []time.Duration
	m := &settledFootprint{tr: newTracker(), kube: kube, rc: kube.CoreV1().RESTClient(), proxy: newAgentProxy(kube), log: bench.LoggerOrDiscard(nil),
		settle: 2 * time.Second, now: func() time.Time { return clock },
		sleep: func(_ context.Context, d time.Duration) error {
			slept = append(slept, d)
			clock = clock.Add(d)
			return nil
		}, warned: map[string]bool{}}
	m.tr.onPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-0", UID: types.UID("uid-0"), Labels: map[string]string{LabelRevision: "rev-0"}},
		Spec: corev1.PodSpec{NodeName: "n1"}}, false)
	out := []results.Attempt{{Instance: 0, OK: true, Start: start, TTFBNS: int64(time.Second), TotalNS: int64(time.Second)}}
	return m, out, &slept
}

func i64(v int64) *int64 { return &v }

// measuredCell runs m around the cell of settledCell (a measured one:
// iteration 1) and returns its attempt's footprint.
func measuredCell(t *testing.T, m *settledFootprint, out []results.Attempt, cell bench.Cell) *results.Footprint {
	t.Helper()
	cell.Iteration = 1
	if err := m.Start(context.Background(), cell, []bench.Instance{{Name: "rev-0", Ready: true}}); err != nil {
		t.Fatal(err)
	}
	m.Gather(context.Background(), cell, out)
	return out[0].Footprint
}

// With an agent and a kubelet on the node, the record has the agent's
// figures (PSS, cgroup memory, idle CPU over the settle's second half,
// MemAvailable's drop since before the cell) and the kubelet's beside
// them; the CPU to the first byte is said to be not read.
func TestSettledFootprintFromAgentAndKubelet(t *testing.T) {
	api := newFakeAPI(t)
	fa := api.addAgent("n1")
	fa.footprint = func(j int, uids []string, memory bool) agent.FootprintResponse {
		resp := agent.FootprintResponse{NodeTimeUnixNS: 1, MemAvailableBytes: i64(10 << 30)}
		switch j {
		case 0: // Start: the node only
			if len(uids) != 0 || memory {
				t.Errorf("request %d: uids %v, memory %v: want the node only", j, uids, memory)
			}
		case 1: // the settle's half: CPU
			if len(uids) != 1 || uids[0] != "uid-0" || memory {
				t.Errorf("request %d: uids %v, memory %v", j, uids, memory)
			}
			resp.Pods = []agent.PodFootprint{{UID: "uid-0", CPUNS: i64(100e6), CPUReadUnixNS: 5e9, CPUSource: "pod cgroup /kubepods/pod-0 (v1 cpu usage)"}}
		case 2: // the end: CPU and memory
			if !memory {
				t.Errorf("request %d without memory", j)
			}
			resp.MemAvailableBytes = i64(10<<30 - 30<<20)
			resp.Pods = []agent.PodFootprint{{UID: "uid-0", CPUNS: i64(103e6), CPUReadUnixNS: 6e9, CPUSource: "pod cgroup /kubepods/pod-0 (v1 cpu usage)",
				Memory: &footprint.Memory{PSSBytes: i64(20 << 20), PSSAnonShmemBytes: i64(12 << 20), CgroupUsageBytes: i64(24 << 20), CgroupWorkingSetBytes: i64(22 << 20),
					Processes: []footprint.ProcessMemory{{Comm: "containerd-shim", PID: 7, PSSBytes: 5 << 20}, {Comm: "queue-proxy", PID: 9, PSSBytes: 15 << 20}},
					Sources:   map[string]string{"pss": "smaps_rollup"}}}}
		default:
			t.Errorf("request %d: more than three", j)
		}
		return resp
	}
	// The node's clock is at 1e18 whenever the agent answers /v1/cpu: the
	// samples it has of uid-0 are 80 ms of CPU read 50 ms before the first
	// byte (on the node's clock) and 90 ms read 50 ms after it.
	const nodeNow = int64(1e18)
	fa.cpu = func(_ int, q url.Values) agent.CPUResponse {
		resp := agent.CPUResponse{NodeTimeUnixNS: nodeNow}
		for _, v := range q["at"] {
			uid, when, _ := strings.Cut(v, "@")
			ns, _, _ := strings.Cut(when, ":")
			at, _ := strconv.ParseInt(ns, 10, 64)
			resp.Pods = append(resp.Pods, agent.PodCPUAt{UID: uid, AtNS: at, Samples: 30,
				Before: &agent.CPUSample{ReadFromUnixNS: at - 51e6, ReadToUnixNS: at - 50e6, CPUNS: 80e6, Shims: 1},
				After:  &agent.CPUSample{ReadFromUnixNS: at + 50e6, ReadToUnixNS: at + 51e6, CPUNS: 90e6, Shims: 1}})
		}
		return resp
	}
	m, out, slept := settledCell(t, api)
	// The kubelet's readings (to the second) after the replies, which the
	// cell's clock puts 3 s after the start.
	at := out[0].Start.Add(5 * time.Second)
	api.summaries = map[string][][]byte{"n1": {summaryJSON("uid-0", 21<<20, 23<<20, 90e6, at), summaryJSON("uid-0", 22<<20, 24<<20, 95e6, at.Add(time.Second))}}
	f := measuredCell(t, m, out, bench.Cell{})
	if f == nil {
		t.Fatal("no footprint")
	}
	if f.Source != results.FootprintFromAgent || f.SettleNS != int64(2*time.Second) || len(*slept) != 2 {
		t.Errorf("source %q, settle %d, sleeps %v", f.Source, f.SettleNS, *slept)
	}
	if *f.PSSBytes != 20<<20 || *f.PSSAnonShmemBytes != 12<<20 || *f.CgroupUsageBytes != 24<<20 || *f.CgroupWorkingSetBytes != 22<<20 || len(f.Processes) != 2 {
		t.Errorf("memory %+v", f)
	}
	if *f.IdleCPUNS != 3e6 || f.IdleWindowNS != 1e9 || *f.NodeMemAvailableDropBytes != 30<<20 || f.NodeInstances != 1 || f.NodeInstancesAnswered != 1 {
		t.Errorf("idle cpu %d over %d, drop %d, instances %d/%d", *f.IdleCPUNS, f.IdleWindowNS, *f.NodeMemAvailableDropBytes, f.NodeInstancesAnswered, f.NodeInstances)
	}
	// Between the two samples' midpoints, halfway: 85 ms, within ± 5 ms.
	if f.CPUToFirstByteNS == nil || *f.CPUToFirstByteNS != 85e6 || *f.CPUToFirstByteErrorNS != 5e6 || f.Missing != "" ||
		!strings.Contains(f.Sources["cpu_to_first_byte"], "50 ms before and 50 ms after the first byte") {
		t.Errorf("cpu to first byte %v ± %v, missing %q, source %q", f.CPUToFirstByteNS, f.CPUToFirstByteErrorNS, f.Missing, f.Sources["cpu_to_first_byte"])
	}
	// Armed at Start for the request timeout and a minute, asked about the
	// first byte on the node's clock (three clock probes first: the cell
	// has no runtime phases' clock), disarmed once answered.
	firstByte := nodeNow - int64(2*time.Second) // the start is 3 s before the requests, the first byte 1 s after it
	var got []string
	for _, q := range fa.cpuRequests() {
		got = append(got, q.Encode())
	}
	want := []string{"arm=1m0s", "", "", "", url.Values{"at": {fmt.Sprintf("uid-0@%d:0", firstByte)}, "done": {"1"}}.Encode(), "arm=0s"}
	if !slices.Equal(got, want) {
		t.Errorf("/v1/cpu requests\n%q\nwant\n%q", got, want)
	}
	k := f.Kubelet
	if k == nil || *k.WorkingSetBytes != 22<<20 || *k.UsageBytes != 24<<20 || *k.CPUNS != 95e6 || *k.IdleCPUNS != 5e6 || k.IdleWindowNS != 1e9 || k.Missing != "" {
		t.Errorf("kubelet %+v", k)
	}
}

// Two readings of the agent that do not subtract give no idle CPU, and say
// why: other shims found at each read (the lab's gVisor pod at N = 10 in
// CI), or less CPU at the end than at the half.
func TestSettledFootprintIdleCPUOnlyFromComparableReads(t *testing.T) {
	shims := func(pids ...int) *footprint.Instance {
		in := &footprint.Instance{CgroupPath: "/kubepods/pod-0"}
		for _, p := range pids {
			in.Shims = append(in.Shims, footprint.Shim{PID: p, Started: time.Duration(p) * time.Second})
		}
		return in
	}
	for _, c := range []struct {
		name        string
		half, end   *footprint.Instance
		cpuHalf     int64
		cpuEnd      int64
		want        int64 // idle cpu; -1: none
		wantMissing string
	}{
		{"same shims in another order", shims(7, 8), shims(8, 7), 100e6, 103e6, 3e6, ""},
		{"a shim lost", shims(7, 8, 9), shims(7, 8), 400e6, 86e6, -1, "found the shims [7 8 9] at the settle's half and [7 8] at its end"},
		{"a shim gained", shims(7), shims(7, 8), 100e6, 400e6, -1, "found the shims [7] at the settle's half and [7 8] at its end"},
		{"a shim restarted with its pid", shims(7), &footprint.Instance{Shims: []footprint.Shim{{PID: 7, Started: time.Hour}}}, 100e6, 103e6, -1, "found the shims [7]"},
		{"less cpu at the end", shims(7), shims(7), 100e6, 90e6, -1, "read 90000000 ns of CPU at the settle's end, less than the 100000000 ns at its half"},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := newFakeAPI(t)
			fa := api.addAgent("n1")
			fa.footprint = func(j int, uids []string, memory bool) agent.FootprintResponse {
				resp := agent.FootprintResponse{NodeTimeUnixNS: 1, MemAvailableBytes: i64(10 << 30)}
				switch j {
				case 1:
					resp.Pods = []agent.PodFootprint{{UID: "uid-0", Instance: c.half, CPUNS: i64(c.cpuHalf), CPUReadUnixNS: 5e9, CPUSource: "pod cgroup"}}
				case 2:
					resp.Pods = []agent.PodFootprint{{UID: "uid-0", Instance: c.end, CPUNS: i64(c.cpuEnd), CPUReadUnixNS: 6e9, CPUSource: "pod cgroup",
						Memory: &footprint.Memory{PSSBytes: i64(20 << 20)}}}
				}
				return resp
			}
			m, out, _ := settledCell(t, api)
			f := measuredCell(t, m, out, bench.Cell{})
			if f == nil || f.Source != results.FootprintFromAgent {
				t.Fatalf("footprint %+v: want the agent's", f)
			}
			switch {
			case c.want < 0 && f.IdleCPUNS != nil:
				t.Errorf("idle cpu %d: want none", *f.IdleCPUNS)
			case c.want >= 0 && (f.IdleCPUNS == nil || *f.IdleCPUNS != c.want):
				t.Errorf("idle cpu %v (missing %q): want %d", f.IdleCPUNS, f.Missing, c.want)
			}
			if c.wantMissing != "" && !strings.Contains(f.Missing, "idle cpu: the node agent "+c.wantMissing) {
				t.Errorf("missing %q: want %q", f.Missing, "idle cpu: the node agent "+c.wantMissing)
			}
		})
	}
}

// Without an agent the figures are the kubelet's, and the record says so
// and why; a kubelet that did not read the pod again within the settle
// gives no idle CPU, and says it.
func TestSettledFootprintWithoutAnAgent(t *testing.T) {
	api := newFakeAPI(t)
	m, out, _ := settledCell(t, api)
	api.summaries = map[string][][]byte{"n1": {summaryJSON("uid-0", 22<<20, 24<<20, 95e6, out[0].Start.Add(5*time.Second))}}
	f := measuredCell(t, m, out, bench.Cell{})
	if f == nil || f.Source != results.FootprintFromKubelet || f.PSSBytes != nil || *f.CgroupWorkingSetBytes != 22<<20 || *f.CgroupUsageBytes != 24<<20 || f.IdleCPUNS != nil {
		t.Fatalf("footprint %+v", f)
	}
	if !strings.Contains(f.Missing, "no node agent runs on node n1") || !strings.Contains(f.Kubelet.Missing, "did not read the pod's cpu again") ||
		f.Sources["cgroup_working_set"] == "" || f.Sources["idle_cpu"] != "" {
		t.Errorf("missing %q; kubelet's %q; sources %v", f.Missing, f.Kubelet.Missing, f.Sources)
	}
}

// A kubelet reading from before the cell's last reply may hold the cold
// start's CPU: no idle CPU is taken from it.
func TestSettledFootprintKubeletReadingBeforeTheReplies(t *testing.T) {
	api := newFakeAPI(t)
	m, out, _ := settledCell(t, api)
	before := out[0].Start.Add(-2 * time.Second)
	api.summaries = map[string][][]byte{"n1": {summaryJSON("uid-0", 22<<20, 24<<20, 90e6, before), summaryJSON("uid-0", 22<<20, 24<<20, 300e6, out[0].Start.Add(8*time.Second))}}
	if err := m.Start(context.Background(), bench.Cell{Iteration: 1}, []bench.Instance{{Name: "rev-0", Ready: true}}); err != nil {
		t.Fatal(err)
	}
	m.Gather(context.Background(), bench.Cell{Iteration: 1}, out)
	k := out[0].Footprint.Kubelet
	if k.IdleCPUNS != nil || !strings.Contains(k.Missing, "from before the cell's last reply") || out[0].Footprint.IdleCPUNS != nil {
		t.Errorf("kubelet %+v, idle cpu %v", k, out[0].Footprint.IdleCPUNS)
	}
}

// An interleaved A/B's control cell idles the settle and reads nothing;
// a warm-up neither.
func TestSettledFootprintControlAndWarmup(t *testing.T) {
	for _, c := range []struct {
		name  string
		cell  bench.Cell
		sleep []time.Duration
	}{
		{"control", bench.Cell{Iteration: 2}, []time.Duration{2 * time.Second}},
		{"warm-up", bench.Cell{Iteration: 0, Warmup: true}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := newFakeAPI(t)
			m, out, slept := settledCell(t, api)
			m.interleave = true
			if err := m.Start(context.Background(), c.cell, []bench.Instance{{Name: "rev-0", Ready: true}}); err != nil {
				t.Fatal(err)
			}
			m.Gather(context.Background(), c.cell, out)
			if out[0].Footprint != nil || fmt.Sprint(*slept) != fmt.Sprint(c.sleep) {
				t.Errorf("footprint %+v, sleeps %v, want %v", out[0].Footprint, *slept, c.sleep)
			}
		})
	}
}

// doctor says whether the kubelet's Summary API may be read (get
// nodes/proxy): a warning naming the optional RBAC file when not.
func TestDoctorChecksTheKubeletSummary(t *testing.T) {
	for _, allowed := range []bool{true, false} {
		kube := fake.NewClientset()
		var asked *authv1.ResourceAttributes
		kube.PrependReactor("create", "selfsubjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
			r := a.(clienttesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
			asked = r.Spec.ResourceAttributes
			r.Status.Allowed = allowed
			return true, r, nil
		})
		p := &Platform{kube: kube}
		c := p.checkKubeletSummary(context.Background())
		if asked == nil || asked.Verb != "get" || asked.Resource != "nodes" || asked.Subresource != "proxy" || asked.Namespace != "" {
			t.Errorf("asked %+v: want get nodes/proxy, cluster-wide", asked)
		}
		if !c.OK || c.Warn == allowed || (!allowed && !strings.Contains(c.Fix, "deploy/rbac-kubelet-summary.yaml")) {
			t.Errorf("allowed %v: check %+v", allowed, c)
		}
	}
}
