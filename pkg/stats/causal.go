package stats

import (
	"slices"

	"github.com/coldbench/coldbench/pkg/results"
)

// causalChains are the runtime view's phases in the order they happen in
// one cold start, as chains whose every link (a phase and the next present
// one) is a happens-before that holds for the stamps, not only for the
// moments they mark. pkg/compare's breakdown takes its segments from these
// links, attempt by attempt, so a link must never join two containers
// running in parallel, nor put a stamp that can come late in the middle of
// the path to the first byte.
//
// The main chain, from the attempt's start to the first byte:
//   - connected → request_sent → deployment_scaled → pod_created →
//     pod_scheduled: coldbench's request comes before the scale-up it
//     causes (Knative's activator), the Deployment is scaled before its pod
//     is created, and scheduled after.
//   - pod_scheduled → rt_sandbox_created: the kubelet asks for a sandbox
//     only once the pod is bound to its node; containerd stamps
//     /containers/create synchronously, as it creates.
//   - rt_sandbox_created → rt_sandbox_started: a task starts after its
//     container is created. rt_sandbox_started is the shim's report of the
//     pause task's start, but the user container's create is asked for only
//     after RunPodSandbox returned (the kubelet's, or coldbench's, next CRI
//     call), which takes longer than the shim's forwarding, so
//   - rt_sandbox_started → rt_user_container_created holds in practice
//     (Inversions names it where it does not).
//   - rt_user_container_created → function_start: the function's process
//     runs only after its container exists, and stamps its own start.
//   - function_start → first_byte: the reply follows the function's start.
//
// rt_user_container_started is not on it: the shim stamps /tasks/start when
// it forwards the event, after the process may already run, so it falls on
// either side of function_start attempt by attempt. It hangs off its own
// create instead (the shim can report a start only after the create), a
// segment that is "the shim's report". So does Knative's queue-proxy, the
// pod's second container, started after the sandbox in no fixed order with
// the user container: rt_sandbox_started → rt_queue_proxy_created →
// rt_queue_proxy_started.
//
// Medians need not follow the chains: on Knative the node's clock is only
// known within runtime_clock.error_ns, and a shim's stamp can be late. Bars
// stack by median all the same (a segment of a figure is never negative);
// Inversions names where the medians' order is not this one, so a note can
// say so.
var causalChains = [][]string{
	{"connected", results.PhaseRequestSent, results.PhaseDeploymentScaled, results.PhasePodCreated, results.PhasePodScheduled,
		results.PhaseRTSandboxCreated, results.PhaseRTSandboxStarted, results.PhaseRTUserContainerCreated,
		results.PhaseFunctionStart, results.PhaseFirstByte},
	{results.PhaseRTUserContainerCreated, results.PhaseRTUserContainerStarted},
	{results.PhaseRTSandboxStarted, results.PhaseRTQueueProxyCreated, results.PhaseRTQueueProxyStarted},
}

// lateStamps are pairs whose moments happen in this order though their
// stamps need not (so no segment is taken between them): the user
// container's process starts before the function in it does. Inversions
// checks them beside the chains' links.
var lateStamps = []Link{{From: results.PhaseRTUserContainerStarted, To: results.PhaseFunctionStart}}

// Link is one segment of a causal chain: From happens before To. From is
// "" for the attempt's start (offset 0).
type Link struct{ From, To string }

// CausalLinks returns the links of the causal chains among the phases for
// which present is true: in each chain, each present phase from the
// previous present one. The main chain comes first and begins at the
// attempt's start (its first link's From is ""); a side chain begins at its
// first phase (the phase it branches off), or, when that is absent, at its
// first present one, with no link into it.
func CausalLinks(present func(name string) bool) []Link {
	var out []Link
	for i, chain := range causalChains {
		prev, started := "", i == 0
		for _, name := range chain {
			if !present(name) {
				continue
			}
			if started {
				out = append(out, Link{From: prev, To: name})
			}
			prev, started = name, true
		}
	}
	return out
}

// Inversion is a pair of phases whose medians come in the opposite order
// to the one they happen in: Before happens first, yet its median is later
// than After's.
type Inversion struct {
	Before, After             string
	BeforeMedian, AfterMedian float64
}

// Inversions returns, for one cell's median offsets by phase, each causal
// link (CausalLinks among the phases the cell has) and each of lateStamps
// whose medians are in the opposite order: the chains' in chain order,
// then lateStamps'.
func Inversions(medians map[string]float64) []Inversion {
	has := func(name string) bool { _, ok := medians[name]; return ok }
	var out []Inversion
	for _, l := range append(CausalLinks(has), lateStamps...) {
		if l.From == "" || !has(l.From) || !has(l.To) {
			continue
		}
		if b, a := medians[l.From], medians[l.To]; a < b {
			inv := Inversion{Before: l.From, After: l.To, BeforeMedian: b, AfterMedian: a}
			if !slices.Contains(out, inv) {
				out = append(out, inv)
			}
		}
	}
	return out
}

// Medians returns the median of each phase's offsets (each ascending).
func Medians(offsets map[string][]float64) map[string]float64 {
	out := make(map[string]float64, len(offsets))
	for name, v := range offsets {
		if len(v) > 0 {
			out[name] = Median(v)
		}
	}
	return out
}
