package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coldbench/coldbench/pkg/results"
)

// A density run on the lab: runc, steps of 2 up to 8, each step's pods
// started while the earlier steps' still run. The revisions' stable window
// is 6 s, so without the pod retention a kept pod would go within a step or
// two. Every start answers and is cold, no kept pod is lost, each step
// records the density it met and the node's MemAvailable (the agent's),
// the run stops at the cap, and nothing is left.
func TestKnativeDensity(t *testing.T) {
	l := setupKnativeLab(t)
	ns := "cb-e2e-" + suffix()
	t.Cleanup(func() { l.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	out := filepath.Join(t.TempDir(), "density.jsonl")
	args := l.args(ns, "--runtimes", "runc", "--step", "2", "--max", "8", "--warmups", "0", "--window", "6s",
		"--deadline", "15m", "--footprint", "--footprint-settle", "12s", "-o", out)
	args[0] = "density"
	o, err := exec.Command(l.bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("density: %v\n%s", err, o)
	}
	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Attempts) != 8 {
		t.Fatalf("%d attempts, want 8 (4 steps of 2)\n%s", len(set.Attempts), o)
	}
	var first, last time.Time
	for _, a := range set.Attempts {
		d := a.Density
		switch {
		case !a.OK:
			t.Errorf("step %d instance %d failed: %s %s", a.Iteration, a.Instance, a.ErrorClass, a.Error)
		case d == nil:
			t.Errorf("step %d instance %d: no density", a.Iteration, a.Instance)
		case d.Alive != 2*a.Iteration || d.Lost != 0:
			t.Errorf("step %d instance %d: density %+v, want alive %d and none lost", a.Iteration, a.Instance, *d, 2*a.Iteration)
		case d.MemAvailableBytes == nil:
			t.Errorf("step %d instance %d: no MemAvailable (the node agent's)", a.Iteration, a.Instance)
		}
		if a.OK && (first.IsZero() || a.Start.Before(first)) {
			first = a.Start
		}
		if a.OK && a.Start.After(last) {
			last = a.Start
		}
		if a.Iteration == 3 && (d == nil || !strings.Contains(strings.Join(d.Stop, "; "), "cap of 8")) {
			t.Errorf("last step's stop: %+v, want the cap of 8", d)
		}
	}
	// Knative scales an idle revision to zero after its stable window (6 s)
	// and at most its grace period (30 s); the first step's pods met the
	// last step only through the retention (without the annotation, this
	// run lost the first step's two pods after its second step: checked).
	// The settle (12 s a step) makes the run long enough for that to show.
	if span := last.Sub(first); span < 36*time.Second {
		t.Errorf("steps spanned %v: shorter than the 6 s window and 30 s grace, so the run shows nothing of the retention", span.Round(time.Second))
	}
	if s, r, p := l.leftovers(t, ns, set.Headers[0].ExperimentID); s+r+p != 0 {
		t.Errorf("left behind: %d ksvcs, %d revisions, %d pods", s, r, p)
	}
}
