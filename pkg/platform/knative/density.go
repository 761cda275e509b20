package knative

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// A density run (bench.DensitySession) on Knative keeps the services whose
// cold start answered, with their pod: each step's new ksvcs start while
// the earlier steps' pods still run. A ksvc's pod would go once Knative's
// autoscaler saw no traffic for its stable window; the annotation
// AnnPodRetention, set on a density run's revisions when they are created
// (changing it later would make a new revision, and a new pod), keeps it
// for up to densityRetention more.

// AnnPodRetention keeps a revision's last pod for a while after the
// autoscaler decided to scale it to zero.
const AnnPodRetention = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"

// densityRetention is the longest retention Knative accepts (its webhook
// refuses more than its WindowMax, 1 h).
const densityRetention = time.Hour

// maxDensityDeadline bounds a Knative density run's deadline: a pod kept
// from the first step must outlive the run's last step (the deadline ends
// the steps; the removal follows). Knative keeps an idle pod for its
// stable window (60 s by default) plus the retention; 10 minutes of the
// retention's hour are left for the last step and its footprint settle.
const maxDensityDeadline = densityRetention - 10*time.Minute

// Add starts cell.Scale new services as ColdStart does, deletes those
// whose cold start failed, and keeps the others (and their pods) for the
// next steps.
func (s *session) Add(ctx context.Context, cell bench.Cell) []results.Attempt {
	out, targets, setup := s.coldStart(ctx, cell)
	ok := map[int]bool{}
	for _, a := range out {
		if a.OK {
			ok[a.Instance] = true
		}
	}
	var failed []target
	for i, t := range targets {
		if ok[i] {
			s.kept = append(s.kept, t)
		} else {
			failed = append(failed, t)
		}
	}
	began := time.Now()
	if err := s.teardown(ctx, failed); err != nil {
		if ctx.Err() != nil {
			// Interrupted or past the deadline: RemoveKept, which runs
			// then with a context of its own, deletes them with the kept.
			s.dropped = append(s.dropped, failed...)
		} else {
			s.log.Warn("deleting the step's services that did not answer", "runtime", cell.Runtime.Name, "n", cell.Scale,
				"step", cell.Iteration, "err", err)
		}
	}
	stampStep(out, setup, time.Since(began))
	return out
}

// KeptRunning counts the kept services whose pod still runs as it
// started, from one list of the experiment's pods (the API server's word,
// not the watches'): the pod a kept service had when first counted, running
// and ready, none of its containers restarted. A pod the OOM killer took
// (the kubelet restarts its container), that crashed, or that Knative
// scaled away (a later one of the service is another instance) is not part
// of the density any more.
func (s *session) KeptRunning(ctx context.Context) (int, error) {
	if len(s.kept) == 0 {
		return 0, nil
	}
	sel := bench.LabelExperiment + "=" + s.id + "," + LabelService
	pl, err := retryList(ctx, func(ctx context.Context) (*corev1.PodList, error) {
		return s.kube.CoreV1().Pods(s.spec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	})
	if err != nil {
		return 0, fmt.Errorf("listing the pods of the kept services: %w", err)
	}
	running := map[string][]*corev1.Pod{}
	for i := range pl.Items {
		p := &pl.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p) && !restarted(p) {
			running[p.Labels[LabelService]] = append(running[p.Labels[LabelService]], p)
		}
	}
	if s.keptPod == nil {
		s.keptPod = map[string]types.UID{}
	}
	n := 0
	for _, t := range s.kept {
		pods := running[t.name]
		first, seen := s.keptPod[t.name]
		if !seen && len(pods) == 1 {
			first, s.keptPod[t.name] = pods[0].UID, pods[0].UID
		}
		if slices.ContainsFunc(pods, func(p *corev1.Pod) bool { return p.UID == first }) {
			n++
		}
	}
	return n, nil
}

// restarted says whether a container of p has restarted.
func restarted(p *corev1.Pod) bool {
	for _, c := range p.Status.ContainerStatuses {
		if c.RestartCount > 0 {
			return true
		}
	}
	return false
}

// MemAvailable is the lowest MemAvailable of the nodes whose agent
// answered (the node closest to the floor sets it); false when none did (no
// agent: the run goes on without a memory floor, and says so once). Made
// for one node, like the lab: on several, the lowest may be another node's
// from one step to the next, and the runner's drop per step then compares
// two nodes.
func (s *session) MemAvailable(ctx context.Context) (int64, bool) {
	why := func(err error) (int64, bool) {
		if !s.memWarned {
			s.memWarned = true
			s.log.Warn("no node MemAvailable for the density run's memory floor (deploy the node agent: deploy/agent.yaml)", "err", err)
		}
		return 0, false
	}
	agents, err := listAgents(ctx, s.kube)
	if err != nil {
		return why(err)
	}
	if len(agents) == 0 {
		return why(errors.New("no node agent running"))
	}
	proxy := newAgentProxy(s.kube)
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		lowest int64 = -1
		errs   []error
	)
	for node, ap := range agents {
		wg.Go(func() {
			resp, err := proxy.footprint(ctx, ap, nil, false)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("node %s: %w", node, err))
			case resp.MemAvailableBytes == nil:
				errs = append(errs, fmt.Errorf("node %s: %s", node, resp.MemAvailableMissing))
			case lowest < 0 || *resp.MemAvailableBytes < lowest:
				lowest = *resp.MemAvailableBytes
			}
		})
	}
	wg.Wait()
	if lowest < 0 {
		return why(errors.Join(errs...))
	}
	return lowest, true
}

// RemoveKept deletes the kept services and returns once they and their
// pods are gone (the teardown of a cell, for all of them at once).
func (s *session) RemoveKept(ctx context.Context) error {
	kept := append(s.kept, s.dropped...)
	s.kept, s.dropped, s.keptPod = nil, nil, nil
	if err := s.teardown(ctx, kept); err != nil {
		return fmt.Errorf("removing the %d kept services: %w", len(kept), err)
	}
	return nil
}

// checkDensityFloor checks a density run's memory floor against the
// cluster's nodes: one at or above a node's memory can never be met (the
// smallest node's capacity, from the API server), and one the run cannot
// watch, for want of a node agent to read MemAvailable, is refused rather
// than silently not kept.
func (p *Platform) checkDensityFloor(ctx context.Context, floor *resource.Quantity) bench.Check {
	c := bench.Check{Name: "density memory floor"}
	if floor == nil || floor.IsZero() {
		c.OK, c.Detail = true, "none (spec.density.minMemAvailable 0): nothing keeps the nodes from running out of memory"
		return c
	}
	nodes, err := p.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		c.Detail, c.Fix = "cannot list the nodes: "+err.Error(), "grant list on nodes (deploy/rbac.yaml), or set --min-mem-available 0 to run without a floor"
		return c
	}
	smallest, name := int64(-1), ""
	for _, n := range nodes.Items {
		if m, ok := n.Status.Capacity[corev1.ResourceMemory]; ok && (smallest < 0 || m.Value() < smallest) {
			smallest, name = m.Value(), n.Name
		}
	}
	if smallest >= 0 && floor.Value() >= smallest {
		c.Detail = fmt.Sprintf("--min-mem-available %s is not below node %s's memory (%s)", floor, name, mib(smallest))
		c.Fix = "give a floor well below the nodes' memory, e.g. 2Gi"
		return c
	}
	s := &session{Platform: p, memWarned: true} // MemAvailable's warning: this check says it
	avail, ok := s.MemAvailable(ctx)
	switch {
	case !ok:
		c.Detail = "no node agent answered, so the nodes' MemAvailable cannot be watched"
		c.Fix = "deploy the node agent (deploy/agent.yaml), or set --min-mem-available 0 to run without a floor"
	case avail <= floor.Value():
		c.Detail = fmt.Sprintf("MemAvailable is %s on the fullest node, already at or below --min-mem-available %s: the run would stop before its first step", mib(avail), floor)
		c.Fix = "free memory on the nodes, or lower --min-mem-available"
	default:
		c.OK, c.Detail = true, fmt.Sprintf("stops at MemAvailable %s (now %s on the fullest node)", floor, mib(avail))
	}
	return c
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
