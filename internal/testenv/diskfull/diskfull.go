// Package diskfull gives tests a full disk: a real one (a 64 KiB tmpfs
// filled up) and a simulated one (a writer that fails after k bytes). It
// imports only the standard library, so the tests of any package can use
// it (pkg/results' own included).
package diskfull

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tmpfs mounts a 64 KiB tmpfs on a temporary directory (unmounted when t
// ends) and fills it with a file named "filler" so that about free bytes
// stay free. Mounting needs root: without it the test is skipped on a
// developer's machine and fails in CI (CI=true), which runs as root.
func Tmpfs(t testing.TB, free int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("prerequisite missing in CI: root, to mount a 64 KiB tmpfs")
		}
		t.Skip("needs root to mount a 64 KiB tmpfs (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 64*1024-free), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Entries lists dir's entry names (sorted, as os.ReadDir gives them).
func Entries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// FailAfter is a full disk in front of W: it accepts K bytes, then fails.
type FailAfter struct {
	W io.Writer
	K int
}

// ErrNoSpace is FailAfter's error.
var ErrNoSpace = errors.New("no space left on device (simulated)")

func (f *FailAfter) Write(p []byte) (int, error) {
	if len(p) > f.K {
		n, _ := f.W.Write(p[:f.K])
		f.K = 0
		return n, ErrNoSpace
	}
	f.K -= len(p)
	return f.W.Write(p)
}
