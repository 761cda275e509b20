package stats

import (
	"slices"

	"github.com/coldbench/coldbench/pkg/results"
)

// causalChains are the runtime view's phases in the order they happen in
// one cold start: the request, the scale-up the API server reports, the
// sandbox, then the user container up to the function's first byte, and
// beside it Knative's queue-proxy (started after the sandbox, in no fixed
// order with the user container). Medians need not follow it: an rt_ phase
// is stamped when containerd or the shim publishes the event, so
// rt_user_container_started can follow function_start (the shim stamps
// /tasks/start after the process already runs), and on Knative the node's
// clock is only known within runtime_clock.error_ns. Bars stack by median
// all the same (a segment is never negative); Inversions names where that
// order is not this one, so a note can say so.
var causalChains = [][]string{
	{"connected", results.PhaseRequestSent, results.PhaseDeploymentScaled, results.PhasePodCreated, results.PhasePodScheduled,
		results.PhaseRTSandboxCreated, results.PhaseRTSandboxStarted,
		results.PhaseRTUserContainerCreated, results.PhaseRTUserContainerStarted,
		results.PhaseFunctionStart, results.PhaseFirstByte},
	{results.PhaseRTSandboxStarted, results.PhaseRTQueueProxyCreated, results.PhaseRTQueueProxyStarted},
}

// Inversion is a pair of phases whose medians come in the opposite order
// to the one they happen in: Before happens first, yet its median is later
// than After's.
type Inversion struct {
	Before, After             string
	BeforeMedian, AfterMedian float64
}

// Inversions returns, for one cell's median offsets by phase, each pair of
// phases adjacent in a causal chain (among the phases the cell has) whose
// medians are in the opposite order, in chain order.
func Inversions(medians map[string]float64) []Inversion {
	var out []Inversion
	for _, chain := range causalChains {
		prev := ""
		for _, name := range chain {
			m, ok := medians[name]
			if !ok {
				continue
			}
			if prev != "" && m < medians[prev] {
				inv := Inversion{Before: prev, After: name, BeforeMedian: medians[prev], AfterMedian: m}
				if !slices.Contains(out, inv) {
					out = append(out, inv)
				}
			}
			prev = name
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
