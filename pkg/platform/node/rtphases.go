package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/rtevents"
)

// rtEventsWait bounds how long an attempt waits, after its reply and
// outside its timed part, for containerd's events of its pod. containerd
// publishes /containers/create before the CRI call returns; the shim
// stamps and forwards /tasks/start from its event-forwarding goroutine,
// normally a moment after the runtime's start returns but asynchronously
// to its reply (the CRI call can return first), and a subscriber got them
// 1-3 ms (median) and at most 95 ms after their timestamps (≈ 580 events
// on our loaded 2-core VM, load 5-13), so by the first reply, which needs
// the function running, they have normally arrived. 2 s is 20 times that
// worst case: it covers a containerd loaded far more, and keeps an event
// that never comes from stalling the step for long.
const rtEventsWait = 2 * time.Second

// rtPhaseNames name the phases of rtevents.Moments, in their order. Which
// event marks each (rtevents.Moment.Key; containerd 2.4's CRI plugin with
// the podsandbox controller):
//   - rt_sandbox_created: /containers/create of the pause container, whose
//     ID is the sandbox's (containerd, after the pod's network is set up);
//   - rt_sandbox_started: /tasks/start of the pause container (the shim);
//   - rt_user_container_created: /containers/create of the function's
//     container (containerd, in CRI's CreateContainer);
//   - rt_user_container_started: /tasks/start of it (the shim).
//
// /tasks/create (the runtime's create) is not used: gVisor's shim never
// publishes it, and every runtime must be measured by the same events.
var rtPhaseNames = []string{results.PhaseRTSandboxCreated, results.PhaseRTSandboxStarted,
	results.PhaseRTUserContainerCreated, results.PhaseRTUserContainerStarted}

// runtimeEvents is a session's subscription to containerd's events: one
// for the whole run, whose window every attempt reads after its reply.
type runtimeEvents struct {
	window *rtevents.Window
	sub    *rtevents.Subscription // nil when subscribing failed (window.Err says why)
}

// subscribeEvents subscribes to the events of CRI's namespace in the
// platform's containerd, on the CRI connection (the same socket serves
// containerd's own API). A failure is not the run's: its attempts record
// why they have no rt_ phases.
//
// containerd does not acknowledge a subscription, so one made an instant
// before the first RunPodSandbox could in principle still be settling when
// its first events come; those come only after the pod's network is set
// up (tens of ms at least), and an event missed would show as missing in
// the record, never as a wrong phase.
func (p *Platform) subscribeEvents(ctx context.Context) *runtimeEvents {
	w := rtevents.NewWindow(0, 0, nil)
	sub, err := rtevents.Subscribe(context.WithoutCancel(ctx), p.conn, criNamespace, w, p.log, rtevents.PodKinds...)
	if err != nil {
		p.log.Warn("no runtime phases in this run", "err", err)
	}
	return &runtimeEvents{window: w, sub: sub}
}

func (r *runtimeEvents) close() {
	if r.sub != nil {
		r.sub.Close()
	}
}

// addRuntimePhases adds to a the rt_ phases of its pod (after its reply,
// untimed) and says in a.RuntimePhases where they come from or why there
// are none. A successful attempt waits up to rtEventsWait for all four and
// records all or none; a failed one records those containerd published
// (it may never have started the container), without waiting.
func (in *instance) addRuntimePhases(ctx context.Context, a *results.Attempt) {
	if in.events == nil || in.podID == "" || a.ErrorClass == results.ErrCanceled {
		return // nothing was created, or the attempt is not recorded
	}
	phases, note := runtimePhases(ctx, in.events.window, rtEventsWait, in.t0, in.podID, in.ctrID, a.OK)
	a.Phases = append(a.Phases, phases...)
	a.RuntimePhases = note
}

// runtimePhases reads from w the events of the pod sandboxID (container
// containerID, "" if not created) as phases of an attempt started at t0,
// with the note for Attempt.RuntimePhases. complete: wait up to wait for
// all of them, and give none unless all came. t0 is also the wait's since
// (w's clock is time.Now): the pod's events cannot arrive before it, so
// only evictions after it can explain a missing one.
func runtimePhases(ctx context.Context, w *rtevents.Window, wait time.Duration, t0 time.Time, sandboxID, containerID string, complete bool) ([]results.Phase, string) {
	keys := rtevents.PodKeys(sandboxID, containerID)
	var got map[rtevents.Key]rtevents.Event
	var err error
	if complete {
		wctx, cancel := context.WithTimeoutCause(ctx, wait, fmt.Errorf("not seen within %v of the reply", wait))
		got, err = w.Wait(wctx, t0, keys...)
		cancel()
		if err != nil {
			return nil, results.RuntimePhasesMissing + err.Error()
		}
	} else {
		got = w.Get(keys...)
	}
	var phases []results.Phase
	var missing []string
	for i, k := range keys {
		ev, ok := got[k]
		if !ok {
			missing = append(missing, rtPhaseNames[i])
			continue
		}
		// Wall clock on both sides, as for function_start: containerd's
		// (or its shim's) stamp against the attempt's start.
		phases = append(phases, results.Phase{Name: rtPhaseNames[i], OffsetNS: ev.Time.Sub(t0.Round(0)).Nanoseconds()})
	}
	if len(missing) == 0 {
		return phases, results.RuntimePhasesFromEvents
	}
	why := "the attempt failed"
	if lost := w.Err(); lost != nil {
		why += "; " + lost.Error()
	}
	return phases, results.RuntimePhasesPartial + why + "; none for " + strings.Join(missing, ", ")
}
