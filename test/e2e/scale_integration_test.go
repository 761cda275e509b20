package e2e

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coldbench/coldbench/pkg/results"
)

// The guard of the study's scale in CI (issue 14): one real step of N =
// 100 on the lab, with every attempt recorded and answered or classified,
// no pod that had to wait for room on the node (the lab is sized for 500),
// the step's set-up and teardown recorded, and nothing left once run
// returns, without clean.
func TestKnativeScaleStep100(t *testing.T) {
	l := setupKnativeLab(t)
	ns := "cb-e2e-" + suffix()
	defer l.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	out := filepath.Join(t.TempDir(), "n100.jsonl")
	const n = 100
	args := l.args(ns, "--runtimes", "runc", "--scales", "100", "--iterations", "1", "--warmups", "0",
		"--timeout", "120s", "-o", out)
	started := time.Now()
	o, err := exec.Command(l.bin, args...).CombinedOutput()
	var ee *exec.ExitError
	// 0: all answered; 3: some failed, each with its class (checked below).
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		t.Fatalf("run: %v\n%s", err, o)
	}
	wall := time.Since(started)
	set, rerr := results.ReadFile(out)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(set.Attempts) != n {
		t.Fatalf("%d attempts recorded, want %d:\n%s", len(set.Attempts), n, o)
	}
	answered, waited := 0, 0
	var ttfb []time.Duration
	for _, a := range set.Attempts {
		switch {
		case a.OK:
			answered++
			ttfb = append(ttfb, time.Duration(a.TTFBNS))
		case a.ErrorClass == "" || a.Error == "":
			t.Errorf("instance %d failed without a class or a reason: %+v", a.Instance, a)
		case a.ErrorClass == results.ErrCanceled:
			t.Errorf("instance %d canceled in a run nobody interrupted: %s", a.Instance, a.Error)
		}
		if a.Unschedulable != nil {
			waited++
			t.Errorf("instance %d waited %v for room on the node (%s): the lab holds 500 function pods",
				a.Instance, time.Duration(a.Unschedulable.WaitNS), a.Unschedulable.Reason)
		}
	}
	st := set.Attempts[0].Step
	if st == nil {
		t.Fatal("no step figures on the attempts")
	}
	if st.SetupNS <= 0 || st.TeardownNS <= 0 || st.WallNS < st.SetupNS+st.TeardownNS {
		t.Errorf("step figures inconsistent: %+v", *st)
	}
	if s, r, p := l.leftovers(t, ns, set.Headers[0].ExperimentID); s+r+p != 0 {
		t.Errorf("left behind after run returned (no clean): %d ksvcs, %d revisions, %d pods", s, r, p)
	}
	slices.Sort(ttfb)
	p50 := time.Duration(0)
	if len(ttfb) > 0 {
		p50 = ttfb[len(ttfb)/2]
	}
	cores := set.Headers[0].Testbed.Cores
	t.Logf("N=%d: %d answered, %d waited for room, p50 %v; step wall %v (set-up %v, teardown %v); harness CPU %v = %.2f%% of %d cores, peak RSS %.1f MiB (%s); run's wall %v",
		n, answered, waited, p50, time.Duration(st.WallNS), time.Duration(st.SetupNS), time.Duration(st.TeardownNS),
		time.Duration(st.HarnessCPUNS), 100*float64(st.HarnessCPUNS)/float64(st.WallNS)/float64(max(cores, 1)), cores,
		float64(st.HarnessPeakRSSBytes)/(1<<20), st.HarnessPeakRSSScope, wall)
}
