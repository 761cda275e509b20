package knative

import (
	"testing"

	"github.com/coldbench/coldbench/pkg/release"
	"github.com/coldbench/coldbench/pkg/stats"
)

// The runtime view (pkg/stats) keeps the phases before the pod exists: the
// pod's milestones are results' constants, shared with stats, but release's
// connected is a name stats repeats, and the kubelet's phases, this
// package's own, must stay out of it.
func TestRuntimeViewKnowsThePrePodPhases(t *testing.T) {
	for _, name := range []string{PhaseDeploymentScaled, PhasePodCreated, PhasePodScheduled, release.PhaseConnected} {
		if !stats.RuntimeViewPhase(name) {
			t.Errorf("the runtime view leaves out %s, which comes before the pod exists", name)
		}
	}
	for _, name := range []string{PhaseSandboxReady, PhaseQPStarted, PhaseUserStarted, PhaseQPReady, PhaseUserReady, PhasePodReady} {
		if stats.RuntimeViewPhase(name) {
			t.Errorf("the runtime view shows %s, which the API server reports late", name)
		}
	}
}
