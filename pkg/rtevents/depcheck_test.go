package rtevents

import (
	"os/exec"
	"strings"
	"testing"
)

// rtevents is for a node agent beside a kubelet too: it must not pull in
// Kubernetes (client-go, the CRI API), only containerd's API and gRPC.
func TestNoKubernetesDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go command not in PATH: the dependency check cannot run")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps .: %v: %s", err, stderr)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") {
			t.Errorf("%s is a dependency of pkg/rtevents; keep it free of Kubernetes", dep)
		}
	}
}
