package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod cgroup is removed with the empty container cgroups below it,
// deepest first, in every hierarchy; one still in use (here: holding a
// file, as a cgroup with processes refuses rmdir) stays, and so does its
// pod cgroup.
func TestRemovePodCgroupWithItsChildren(t *testing.T) {
	root := t.TempDir()
	old := cgroupRoot
	cgroupRoot = root
	t.Cleanup(func() { cgroupRoot = old })
	mk := func(elem ...string) string {
		dir := filepath.Join(append([]string{root}, elem...)...)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	emptyPod := mk("memory", "coldbench", "podA", "ctr1")
	mk("cpu", "coldbench", "podA", "ctr1", "nested")
	busy := mk("memory", "coldbench", "podB", "ctr2")
	if err := os.WriteFile(filepath.Join(busy, "in-use"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	removePodCgroup("A")
	removePodCgroup("B")
	for _, gone := range []string{filepath.Dir(emptyPod), filepath.Join(root, "cpu", "coldbench", "podA")} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is left (%v)", gone, err)
		}
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("the cgroup in use was removed: %v", err)
	}
}

// A RunPodSandbox that failed (interrupted: context canceled) left its pod
// cgroup behind, and the instance no sandbox to remove: its teardown
// removes the cgroup.
func TestTeardownOfAFailedSandboxRemovesItsPodCgroup(t *testing.T) {
	root := t.TempDir()
	old := cgroupRoot
	cgroupRoot = root
	t.Cleanup(func() { cgroupRoot = old })
	left := filepath.Join(root, "memory", "coldbench", "podC")
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	in := &instance{sandbox: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Uid: "C"}}}
	in.teardown(context.Background())
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("%s is left (%v)", left, err)
	}
}
