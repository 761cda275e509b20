package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// managedLeftovers counts every ksvc, revision and pod carrying coldbench's
// managed-by label in ns.
func (l *knativeLab) managedLeftovers(t *testing.T, ns string) (int, int, int) {
	t.Helper()
	return l.leftoversBy(t, ns, bench.LabelManagedBy+"="+bench.LabelManagedByVal)
}

// Kill test on the lab, as TestKillAndResume on the node backend: coldbench
// killed with SIGKILL and with SIGINT at random moments (from its start to
// well into its cells), each time resumed with --resume, until the
// experiment is complete. At the end every planned attempt is recorded
// exactly once, and after `coldbench clean` no ksvc, revision or pod with
// coldbench's labels is left. COLDBENCH_LAB_KILLS sets the kills per signal
// (default 10).
func TestKnativeKillAndResume(t *testing.T) {
	t.Parallel() // with the other lab tests that stop no daemon
	l := setupKnativeLab(t)
	t0 := time.Now()
	perSignal := 10
	if v, err := strconv.Atoi(os.Getenv("COLDBENCH_LAB_KILLS")); err == nil && v > 0 {
		perSignal = v
	}
	ns := l.namespace(t, "cb-e2e-kill-")
	out := filepath.Join(t.TempDir(), "killed.jsonl")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 11))
	start := l.args(ns, "--runtimes", "runc", "--scales", "1,2", "--iterations", "3", "--warmups", "0", "-o", out)
	resume := []string{"run", "--resume", out, "--kubeconfig", l.kubeconfig, "--ingress", l.ingress}
	const planned = (1 + 2) * 3

	kills := map[syscall.Signal]int{}
	finished := false
	session := 0
	for ; session < 2*perSignal && !finished; session++ {
		sig := syscall.SIGKILL
		if session%2 == 1 {
			sig = syscall.SIGINT
		}
		args := resume
		if session == 0 || !fileHasHeader(out) {
			args = start // killed before its header: nothing to resume yet
			os.Remove(out)
		}
		p := l.start(t, args...)
		// From the start (preflight, the resume's clean-up) to a few cells in.
		delay := time.Duration(300+rng.IntN(11700)) * time.Millisecond
		select {
		case <-p.done:
			if p.err != nil {
				t.Fatalf("session %d ended on its own: %v\n%s", session, p.err, p.stderr.String())
			}
			finished = true
		case <-time.After(delay):
			p.cmd.Process.Signal(sig)
			err := p.wait(t, 5*time.Minute)
			kills[sig]++
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			t.Logf("session %d: %v after %v: exit %d, %d attempts recorded", session, sig, delay, code, len(recorded(out)))
		}
	}
	// Finish the experiment.
	if o, err := execColdbench(l.bin, resume...); err != nil {
		t.Fatalf("final resume: %v\n%s", err, o)
	}
	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) != 0 {
		t.Errorf("warnings after the final resume: %v", set.Warnings)
	}
	seen := map[string]int{}
	for _, a := range set.Attempts {
		seen[fmt.Sprintf("%s/%d/%d/%d", a.Runtime, a.Scale, a.Iteration, a.Instance)]++
		if !a.OK {
			t.Errorf("attempt %s N=%d #%d: %s: %s", a.Runtime, a.Scale, a.Iteration, a.ErrorClass, a.Error)
		}
	}
	lost, dup := planned-len(seen), len(set.Attempts)-len(seen)
	id := set.Headers[0].ExperimentID
	for _, h := range set.Headers {
		if h.ExperimentID != id {
			t.Errorf("header of another experiment: %s", h.ExperimentID)
		}
	}
	// What the last session left (it cleans up after itself), then what
	// clean leaves.
	s0, r0, p0 := l.managedLeftovers(t, ns)
	cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if o, err := execColdbenchCtx(cctx, l.bin, "clean", "--platform", "knative", "--kubeconfig", l.kubeconfig, "-n", ns); err != nil {
		t.Fatalf("clean: %v\n%s", err, o)
	}
	// Revisions go with their ksvc by garbage collection: give it a moment.
	var s, r, pods int
	for i := 0; i < 20; i++ {
		if s, r, pods = l.managedLeftovers(t, ns); s+r+pods == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("kills: %d (%d SIGKILL + %d SIGINT), sessions: %d, records: %d of %d planned, lost: %d, duplicated: %d; "+
		"left by the last session: %d ksvcs, %d revisions, %d pods; leaked after clean: %d ksvcs, %d revisions, %d pods; seed %d; %v",
		kills[syscall.SIGKILL]+kills[syscall.SIGINT], kills[syscall.SIGKILL], kills[syscall.SIGINT], len(set.Headers), len(set.Attempts), planned,
		lost, dup, s0, r0, p0, s, r, pods, seed, time.Since(t0).Round(time.Second))
	if lost != 0 || dup != 0 {
		t.Errorf("records lost: %d, duplicated: %d", lost, dup)
	}
	if s+r+pods != 0 {
		t.Errorf("after clean: %d ksvcs, %d revisions, %d pods with coldbench's labels left", s, r, pods)
	}
	if kills[syscall.SIGKILL] < perSignal || kills[syscall.SIGINT] < perSignal {
		t.Logf("only %d SIGKILL and %d SIGINT landed before the experiment was complete", kills[syscall.SIGKILL], kills[syscall.SIGINT])
	}
}

// fileHasHeader reports whether path holds a header record.
func fileHasHeader(path string) bool {
	set, err := results.ReadFile(path)
	return err == nil && len(set.Headers) > 0
}
