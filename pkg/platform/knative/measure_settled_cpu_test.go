package knative

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/agent"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// The CPU at the first byte is interpolated between the samples' midpoints
// and bounded by them; without both samples, or with counters that went
// down, it is missing and says why.
func TestCPUToFirstByteFromSamples(t *testing.T) {
	clock := &results.RuntimeClock{Node: "n1", ErrorNS: 2e6}
	sample := func(mid, cpu int64) *agent.CPUSample {
		return &agent.CPUSample{ReadFromUnixNS: mid - 1e6, ReadToUnixNS: mid + 1e6, CPUNS: cpu, Shims: 1}
	}
	for _, c := range []struct {
		name      string
		at        cpuAt
		want, err int64
		missing   string
	}{
		{name: "a quarter of the way", at: cpuAt{clock: clock, got: &agent.PodCPUAt{AtNS: 1000e6, Before: sample(990e6, 100e6), After: sample(1030e6, 140e6)}},
			want: 110e6, err: 30e6},
		{name: "the same sample time", at: cpuAt{clock: clock, got: &agent.PodCPUAt{AtNS: 1000e6, Before: sample(1000e6, 100e6), After: sample(1000e6, 100e6)}},
			want: 100e6, err: 0},
		{name: "from 0 at the sandbox's creation", at: cpuAt{clock: clock, got: &agent.PodCPUAt{AtNS: 1000e6, SampledFromUnixNS: 800e6, After: sample(1200e6, 100e6)}},
			want: 50e6, err: 50e6},
		{name: "no agent", at: cpuAt{why: "no node agent runs on node n1"}, missing: "cpu to first byte: node agent: no node agent runs on node n1"},
		{name: "no sample after", at: cpuAt{clock: clock, got: &agent.PodCPUAt{AtNS: 1000e6, Before: sample(990e6, 100e6), Missing: "no sample after the moment yet"}},
			missing: "cpu to first byte: no sample after the moment yet"},
		{name: "counters down", at: cpuAt{clock: clock, got: &agent.PodCPUAt{AtNS: 1000e6, Before: sample(990e6, 100e6), After: sample(1030e6, 40e6)}},
			missing: "less than the 100000000 ns before it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &results.Footprint{Sources: map[string]string{}}
			missing := cpuToFirstByte(f, c.at)
			if c.missing != "" {
				if !strings.Contains(missing, c.missing) || f.CPUToFirstByteNS != nil || f.CPUToFirstByteErrorNS != nil {
					t.Errorf("missing %q, cpu %v: want missing %q", missing, f.CPUToFirstByteNS, c.missing)
				}
				return
			}
			if missing != "" || f.CPUToFirstByteNS == nil || *f.CPUToFirstByteNS != c.want || *f.CPUToFirstByteErrorNS != c.err || f.Sources["cpu_to_first_byte"] == "" {
				t.Errorf("cpu %v ± %v (missing %q): want %d ± %d", f.CPUToFirstByteNS, f.CPUToFirstByteErrorNS, missing, c.want, c.err)
			}
		})
	}
}

// A pod that has no sample after its first byte yet, while the agent
// still samples it, is asked about again after a pause; the runtime
// phases' clock is used when the attempt has it (no clock probes).
func TestCPUAskedAgainUntilASampleFollowsTheFirstByte(t *testing.T) {
	api := newFakeAPI(t)
	fa := api.addAgent("n1")
	fa.footprint = func(int, []string, bool) agent.FootprintResponse {
		return agent.FootprintResponse{NodeTimeUnixNS: 1, MemAvailableBytes: i64(10 << 30)}
	}
	asked := 0
	fa.cpu = func(_ int, q url.Values) agent.CPUResponse {
		resp := agent.CPUResponse{NodeTimeUnixNS: 5}
		for _, v := range q["at"] {
			asked++
			uid, when, _ := strings.Cut(v, "@")
			ns, errNS, _ := strings.Cut(when, ":")
			at, _ := strconv.ParseInt(ns, 10, 64)
			if errNS != "3000000" {
				t.Errorf("asked %q: want the runtime phases' clock error 3 ms", v)
			}
			p := agent.PodCPUAt{UID: uid, AtNS: at, Sampling: true,
				Before: &agent.CPUSample{ReadFromUnixNS: at - 20e6, ReadToUnixNS: at - 10e6, CPUNS: 50e6}, Missing: "no sample after the moment yet"}
			if asked == 3 {
				p.Sampling, p.Missing = false, ""
				p.After = &agent.CPUSample{ReadFromUnixNS: at + 10e6, ReadToUnixNS: at + 20e6, CPUNS: 60e6}
			}
			resp.Pods = append(resp.Pods, p)
		}
		return resp
	}
	m, out, slept := settledCell(t, api)
	out[0].RuntimeClock = &results.RuntimeClock{Node: "n1", OffsetNS: 7e9, ErrorNS: 3e6}
	f := measuredCell(t, m, out, bench.Cell{RequestTimeout: 30 * time.Second})
	if f == nil || f.CPUToFirstByteNS == nil || *f.CPUToFirstByteNS != 55e6 || *f.CPUToFirstByteErrorNS != 5e6 {
		t.Fatalf("footprint %+v", f)
	}
	if asked != 3 || !slices.Equal((*slept)[:2], cpuAskWaits[:2]) {
		t.Errorf("asked %d times, slept %v: want 3 asks, pauses %v first", asked, *slept, cpuAskWaits[:2])
	}
	reqs := fa.cpuRequests()
	firstByte := out[0].Start.Round(0).UnixNano() + out[0].TTFBNS + 7e9
	if len(reqs) != 5 || reqs[0].Get("arm") != "1m30s" || reqs[1].Get("at") != "uid-0@"+strconv.FormatInt(firstByte, 10)+":3000000" || reqs[4].Get("arm") != "0s" {
		t.Errorf("requests %v", reqs)
	}
}

// An agent without /v1/cpu (older than it) leaves the CPU to the first
// byte missing with the proxy's reason, and the rest of the footprint
// stands.
func TestCPUToFirstByteFromAnAgentWithoutIt(t *testing.T) {
	api := newFakeAPI(t)
	fa := api.addAgent("n1")
	fa.footprint = func(j int, uids []string, _ bool) agent.FootprintResponse {
		resp := agent.FootprintResponse{NodeTimeUnixNS: 1, MemAvailableBytes: i64(10 << 30)}
		for _, u := range uids {
			resp.Pods = append(resp.Pods, agent.PodFootprint{UID: u, CPUNS: i64(int64(j) * 1e6), CPUReadUnixNS: int64(j) * 1e9})
		}
		return resp
	}
	m, out, _ := settledCell(t, api)
	f := measuredCell(t, m, out, bench.Cell{})
	if f == nil || f.CPUToFirstByteNS != nil || !strings.Contains(f.Missing, "cpu to first byte: node agent: GET /v1/cpu of coldbench-system/coldbench-agent-n1") ||
		f.NodeMemAvailableDropBytes == nil {
		t.Errorf("footprint %+v", f)
	}
}
