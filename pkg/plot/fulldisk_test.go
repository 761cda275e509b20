package plot

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

func listDir(t *testing.T, dir string) []string {
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

// plot -o on a full disk fails and leaves no figure (and no directory it
// created); mounting the 64 KiB tmpfs needs root, which CI has.
func TestWriteFilesFullDiskLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a 64 KiB tmpfs (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 40*1024), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := WriteFiles(context.Background(), filepath.Join(dir, "figs"), []string{nodeRecords}, Options{AllScales: true}, results.ReadOptions{})
	if err == nil {
		t.Fatal("no error on a full disk")
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"filler"}) {
		t.Errorf("full disk left %v, want only filler", got)
	}
}

// An interrupt after reading leaves no new figure in an existing directory.
func TestWriteModelCancelledLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	set, err := results.ReadFile(nodeRecords)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteDir(ctx, dir, set, Options{Formats: []string{FormatSVG}}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("cancelled plot left %v", got)
	}
}
