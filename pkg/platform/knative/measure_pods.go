package knative

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/probe"
	"github.com/coldbench/coldbench/pkg/results"
)

func init() { registerMeasurement(newPodMeasurement) }

// podMeasurement is the cold-start evidence of the session's watches
// (tracker.go): the pod that answered each attempt and its milestones as
// phases, how many pods its revision had before, whether the attempt was
// cold at all (not_cold), and the pod's reason when it failed (image, crash,
// unschedulable). Time is read from the tracker's clock.
type podMeasurement struct {
	tr     *tracker
	kube   kubernetes.Interface
	ns, id string
	log    *slog.Logger
	insts  []bench.Instance // of the cell being measured; Name is the revision
	// readyGrace bounds the wait, after the replies, for the watches to
	// show each answered pod Ready (its pod_ready phase).
	readyGrace time.Duration
}

func newPodMeasurement(s *session) bench.Measurement {
	return &podMeasurement{tr: s.tr, kube: s.kube, ns: s.spec.Namespace, id: s.id, log: s.log,
		readyGrace: s.spec.ReadinessTimeout.Duration}
}

func (*podMeasurement) Name() string { return "pods" }

// Start brings the watches' view up to date just before the release.
func (m *podMeasurement) Start(ctx context.Context, _ bench.Cell, insts []bench.Instance) error {
	m.insts = insts
	m.catchUpPods(ctx)
	return nil
}

// catchUpPods lists the experiment's pods once, untimed, before a release,
// so that what the watches have not delivered yet still counts as there
// before the requests (tracker.catchUp). Without the list (an API server
// that does not answer), the watches' view stands, as it did before.
func (m *podMeasurement) catchUpPods(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	asked := m.tr.now()
	pods, err := m.kube.CoreV1().Pods(m.ns).List(ctx, metav1.ListOptions{LabelSelector: bench.LabelExperiment + "=" + m.id})
	if err != nil {
		m.log.Debug("listing the experiment's pods before the release; the watches' view stands", "err", err)
		return
	}
	m.tr.catchUp(pods.Items, asked)
}

// podSeenGrace bounds the wait for an answered attempt's new pod to show
// in the watches at all; once it shows, its Ready is waited for longer.
const podSeenGrace = 10 * time.Second

// catchUpTimeout bounds the list before a release: an API server that
// does not answer (restarting, overloaded) costs the cell this much, untimed,
// and the watches' view stands.
const catchUpTimeout = 10 * time.Second

// Gather waits for the pods' late events, then judges each released
// attempt by what the watches saw of its revision since its start.
func (m *podMeasurement) Gather(ctx context.Context, cell bench.Cell, out []results.Attempt) {
	// The watches may deliver the last pod events a while after the reply
	// (the kubelet reports Ready on its own schedule: more than 10 s after
	// the reply at load 10 on the lab): give them until every answered
	// revision shows its pod ready or gone, within the readiness timeout,
	// the user's bound on untimed waits for the cluster; an answered
	// attempt whose new pod the watches never showed, only podSeenGrace.
	// Over as soon as they do, or at the interrupt (the cell is cut then).
	begin := m.tr.now()
	sctx, cancel := context.WithTimeout(ctx, m.readyGrace)
	m.tr.waitFor(sctx, func() bool {
		patient := m.tr.now().Sub(begin) < podSeenGrace
		for i := range out {
			v := m.tr.view(m.insts[i].Name, out[i].Start)
			// A warm pod answered: no new pod to wait for.
			if !out[i].OK || v.warmPod != "" || v.podReady || v.podGone {
				continue
			}
			if v.pod != "" || patient {
				return false
			}
		}
		return true
	})
	cancel()
	for i := range out {
		if m.insts[i].Ready {
			v := m.tr.view(m.insts[i].Name, out[i].Start)
			judge(ctx, &out[i], m.insts[i].Name, v)
			out[i].Unschedulable = waited(v, out[i].OK, attemptEnd(&out[i], cell.RequestTimeout, begin))
		}
	}
}

// waited is the attempt's wait for room on a node (nil: it had none), on
// the tracker's clock, ending at end, the attempt's, unless its pod was
// scheduled before.
//
// Both ends are when the harness's watch delivered the change (monotonic
// clock), like the pod_scheduled phase and the other milestones, not the
// conditions' lastTransitionTime: that is the API server's wall clock
// (another machine's on a real cluster) at 1 s resolution, which would
// round a wait of a few seconds by up to a second each end and could not
// be set against the attempt's phases. The watch's delay is in both ends
// and mostly cancels out.
func waited(v attemptView, answered bool, end time.Time) *results.Unschedulable {
	if v.waitSince.IsZero() {
		return nil
	}
	// An answer came from a pod with a node, even if the watch had not
	// shown its scheduling yet: then the wait is known to end by the reply.
	stop, scheduled := end, answered
	if at := v.waitScheduled; !at.IsZero() && (answered || at.Before(end)) {
		stop, scheduled = at, true
	}
	return &results.Unschedulable{Reason: v.waitReason, WaitNS: max(stop.Sub(v.waitSince), 0).Nanoseconds(), Scheduled: scheduled}
}

// attemptEnd is when attempt a ended: its reply's end, or for one without
// a reply, its client timeout, or when all the step's replies were in
// (replied) if earlier (an interrupt, a refused connection).
func attemptEnd(a *results.Attempt, timeout time.Duration, replied time.Time) time.Time {
	if a.TotalNS > 0 {
		return a.Start.Add(time.Duration(a.TotalNS))
	}
	if end := a.Start.Add(timeout); timeout > 0 && end.Before(replied) {
		return end
	}
	return replied
}

// judge adds to a, an attempt on revision rev, what the watches saw (v)
// and decides from it whether a was a cold start.
func judge(ctx context.Context, a *results.Attempt, rev string, v attemptView) {
	a.Cold.Pod, a.Cold.PriorPods = v.pod, v.prior
	a.Phases = mergePhases(a.Phases, v.phases)
	switch {
	case ctx.Err() != nil && !a.OK:
		a.ErrorClass = results.ErrCanceled
	case v.warmPod != "":
		// A pod of the revision was there at the request's start (maybe
		// draining, which still answers): whichever pod answered, the
		// sample is not provably cold.
		msg := "pod " + v.warmPod + " already existed: not a cold start"
		if !a.OK {
			msg += " (request: " + a.ErrorClass + ": " + a.Error + ")"
		}
		a.OK, a.ErrorClass, a.Error = false, results.ErrNotCold, msg
	case a.OK && startedBefore(a) > 0:
		a.OK, a.ErrorClass = false, results.ErrNotCold
		a.Error = fmt.Sprintf("the function that answered started %v before the request (its %s header): a warm instance answered", startedBefore(a).Round(time.Millisecond), probe.ProcessStartHeader)
	case a.OK && v.pod == "":
		a.OK, a.ErrorClass, a.Error = false, results.ErrNotCold, "answered, but no new pod was seen for revision "+rev
	case !a.OK && v.failCls != "":
		a.Error = v.failMsg + " (request: " + a.Error + ")"
		a.ErrorClass = v.failCls
	}
}

// startedBefore is how long before the request's start the process that
// answered had started (its function_start phase, from the function's own
// header), or 0: a cold start's process starts after the request. It is
// evidence independent of the watches; clocks of different machines may
// differ by a few ms, far less than a cold start's scheduling delay.
func startedBefore(a *results.Attempt) time.Duration {
	if off, ok := a.PhaseOffset(results.PhaseFunctionStart); ok && off < 0 {
		return -off
	}
	return 0
}

func mergePhases(a, b []results.Phase) []results.Phase {
	all := append(append([]results.Phase(nil), a...), b...)
	for i := 1; i < len(all); i++ { // insertion sort: a dozen entries
		for j := i; j > 0 && all[j].OffsetNS < all[j-1].OffsetNS; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	return all
}
