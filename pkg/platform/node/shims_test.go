package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A shim still running for a sandbox the platform removed (its -id) is
// killed at Close, after the grace; a shim of another sandbox, a process
// that only names the id, and the shims of sandboxes not removed are left.
func TestCloseKillsTheShimsOfRemovedSandboxes(t *testing.T) {
	root := t.TempDir()
	oldRoot, oldGrace, oldKill := hostRoot, shimExitGrace, killProcess
	hostRoot, shimExitGrace = root, 0
	var killed []int
	killProcess = func(pid int) error { killed = append(killed, pid); return nil }
	t.Cleanup(func() { hostRoot, shimExitGrace, killProcess = oldRoot, oldGrace, oldKill })
	proc := func(pid string, args ...string) {
		dir := filepath.Join(root, "proc", pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(args, "\x00")+"\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// As the lab's containerd 2.4.2 starts runc's shim (seen in ps).
	proc("100", "/var/cache/coldbench/containerd/v2.4.2/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "aaa", "-address", "/run/coldbench/containerd/containerd.sock")
	proc("101", "/usr/bin/containerd-shim-runsc-v1", "-namespace", "k8s.io", "-id", "bbb", "-address", "/run/containerd/containerd.sock")
	proc("102", "grep", "-id", "aaa")
	proc("103", "containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "ccc")
	if err := os.MkdirAll(filepath.Join(root, "proc", "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Platform{log: slog.New(slog.DiscardHandler)}
	p.removed.add("aaa")
	p.removed.add("bbb")
	s := &session{p: p, events: &runtimeEvents{}}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(killed)
	if !slices.Equal(killed, []int{100, 101}) {
		t.Errorf("killed %v, want [100 101]", killed)
	}
	// Forgotten once checked: the next Close kills nothing.
	killed = nil
	if err := s.Close(); err != nil || len(killed) > 0 {
		t.Errorf("second close: killed %v, err %v", killed, err)
	}
}
