package plot

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"

	"github.com/coldbench/coldbench/internal/testenv/diskfull"
)

// plot -o on a full disk fails and leaves no figure (and no directory it
// created); mounting the 64 KiB tmpfs needs root, which CI has.
func TestWriteFilesFullDiskLeavesNothing(t *testing.T) {
	dir := diskfull.Tmpfs(t, 24*1024)
	_, _, err := WriteFiles(context.Background(), filepath.Join(dir, "figs"), []string{nodeRecords}, Options{AllScales: true}, results.ReadOptions{})
	if err == nil {
		t.Fatal("no error on a full disk")
	}
	if got := diskfull.Entries(t, dir); !slices.Equal(got, []string{"filler"}) {
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
	if got := diskfull.Entries(t, dir); len(got) != 0 {
		t.Errorf("cancelled plot left %v", got)
	}
}
