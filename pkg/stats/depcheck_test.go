package stats

import (
	"os/exec"
	"strings"
	"testing"
)

// heavyPrefixes are import paths that must never reach the light packages:
// anything that only wants to read results and print a report should not pay
// for Kubernetes, containerd or gRPC, nor should pkg/release, which every
// backend may use.
var heavyPrefixes = []string{"k8s.io/", "github.com/containerd/", "google.golang.org/grpc", "sigs.k8s.io/"}

func TestLightDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go command not in PATH: the dependency check cannot run")
	}
	pkgs := []string{"./pkg/stats", "./pkg/report", "./pkg/results", "./pkg/plot", "./pkg/compare", "./pkg/outfile", "./pkg/release"}
	cmd := exec.Command(goBin, append([]string{"list", "-deps"}, pkgs...)...)
	cmd.Dir = "../.." // module root; tests run in the package directory
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %v: %v\n%s", pkgs, err, msg)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, p := range heavyPrefixes {
			if strings.HasPrefix(dep, p) {
				t.Errorf("%s is a dependency of %v; keep these packages free of %s*", dep, pkgs, p)
			}
		}
	}
}
