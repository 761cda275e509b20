package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/footprint"
	"github.com/coldbench/coldbench/pkg/results"
)

// A density run (bench.DensitySession) keeps the instances that answered:
// each step starts among those of the steps before it.

// Add starts cell.Scale instances as ColdStart does, removes those that
// failed and keeps the others running for the next steps.
func (s *session) Add(ctx context.Context, cell bench.Cell) []results.Attempt {
	out, insts, setup := s.start(ctx, cell)
	var failed []*instance
	for i, in := range insts {
		if out[i].OK {
			s.kept = append(s.kept, in)
		} else {
			failed = append(failed, in)
		}
	}
	tornDown := time.Now()
	removeAll(ctx, failed)
	setStep(out, setup, time.Since(tornDown))
	return out
}

// hostRoot is where this host's /proc is read from (a variable for tests).
var hostRoot = "/"

// MemAvailable is this host's MemAvailable (the node backend's node).
func (s *session) MemAvailable(context.Context) (int64, bool) {
	m, err := footprint.NewFS(hostRoot).ReadMemInfo()
	if err == nil && m.MemAvailableBytes == nil {
		err = errors.New("/proc/meminfo has no MemAvailable (a kernel before 3.14)")
	}
	if err != nil {
		s.p.log.Warn("reading MemAvailable for the density run's memory floor", "err", err)
		return 0, false
	}
	return *m.MemAvailableBytes, true
}

// RemoveKept removes the kept instances, removeParallel at a time (a
// thousand StopPodSandbox calls at once would queue inside containerd
// anyway, and each holds a goroutine and a gRPC stream), each retried
// until it is gone or ctx ends.
func (s *session) RemoveKept(ctx context.Context) error {
	kept := s.kept
	s.kept = nil
	sem := make(chan struct{}, removeParallel)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		left []string
		last error
	)
	for _, in := range kept {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := in.removeUntilGone(ctx); err != nil {
				mu.Lock()
				left, last = append(left, in.podID), err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(left) > 0 {
		return fmt.Errorf("%d of %d kept sandboxes are not removed (first %s; last error: %w)", len(left), len(kept), left[0], last)
	}
	return nil
}

// removeParallel bounds the removals RemoveKept runs at once.
const removeParallel = 32

// retryRemovalFor bounds the retries of one sandbox's removal: a run does
// not stall on a sandbox the runtime cannot stop (its Close names it).
var retryRemovalFor = 5 * time.Minute

// isNotFound says whether err (wrapped or not) is a gRPC NotFound.
func isNotFound(err error) bool {
	var se interface{ GRPCStatus() *status.Status }
	return errors.As(err, &se) && se.GRPCStatus().Code() == codes.NotFound
}

// KeptRunning counts the kept instances whose function container is still
// running (one CRI list of the experiment's running containers): one the
// OOM killer took, or that crashed, is not part of the density any more.
func (s *session) KeptRunning(ctx context.Context) (int, error) {
	if len(s.kept) == 0 {
		return 0, nil
	}
	resp, err := s.p.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{bench.LabelExperiment: s.id},
	}})
	if err != nil {
		return 0, fmt.Errorf("listing the running containers of %s: %w", s.id, err)
	}
	running := map[string]bool{}
	for _, c := range resp.Containers {
		running[c.Id] = true
	}
	n := 0
	for _, in := range s.kept {
		if running[in.ctrID] {
			n++
		}
	}
	return n, nil
}

// removeUntilGone removes the instance's sandbox, retrying with a growing
// pause until it is gone, ctx ends or retryRemovalFor has passed (each try
// bounded by teardownTimeout); what is left then is the session Close's
// to remove or to name. A sandbox containerd no longer knows is gone: an
// earlier try's removal may have finished after its client gave up, and
// containerd before 1.6.35/1.7.21 answers StopPodSandbox with NotFound then.
func (in *instance) removeUntilGone(ctx context.Context) error {
	if in.podID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, retryRemovalFor)
	defer cancel()
	pause := 500 * time.Millisecond
	for {
		tctx, cancel := context.WithTimeout(ctx, teardownTimeout)
		err := in.p.removeSandbox(tctx, in.podID)
		cancel()
		if err == nil || isNotFound(err) {
			removePodCgroup(in.sandbox.Metadata.Uid)
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
		in.p.log.Debug("retrying the removal of a kept sandbox", "sandbox", in.podID, "err", err)
		pause = min(2*pause, 10*time.Second)
	}
}

// checkMemoryFloor checks a density run's memory floor against this
// host: one at or above its memory can never be met, one above what is
// available now stops the run before its first step.
func checkMemoryFloor(fsys footprint.FS, floor *resource.Quantity) bench.Check {
	c := bench.Check{Name: "density memory floor"}
	if floor == nil || floor.IsZero() {
		c.OK, c.Detail = true, "none (spec.density.minMemAvailable 0): nothing keeps the node from running out of memory"
		return c
	}
	m, err := fsys.ReadMemInfo()
	if err == nil && (m.MemAvailableBytes == nil || m.MemTotalBytes == nil) {
		err = errors.New("/proc/meminfo has no MemTotal or MemAvailable (a kernel before 3.14)")
	}
	if err != nil {
		c.Detail, c.Fix = "cannot read this node's memory: "+err.Error(), "run on Linux 3.14 or later, or set --min-mem-available 0 to run without a floor"
		return c
	}
	f, total, avail := floor.Value(), *m.MemTotalBytes, *m.MemAvailableBytes
	switch {
	case f >= total:
		c.Detail = fmt.Sprintf("--min-mem-available %s is not below this node's memory (%s)", floor, mib(total))
		c.Fix = "give a floor well below the node's memory, e.g. 2Gi"
	case avail <= f:
		c.Detail = fmt.Sprintf("MemAvailable is %s, already at or below --min-mem-available %s: the run would stop before its first step", mib(avail), floor)
		c.Fix = "free memory on the node, or lower --min-mem-available"
	default:
		c.OK, c.Detail = true, fmt.Sprintf("stops at MemAvailable %s (now %s of %s)", floor, mib(avail), mib(total))
	}
	return c
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
