package report

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"

	"github.com/coldbench/coldbench/internal/testenv/diskfull"
)

// A full disk fails the HTML report and the attempts CSV and leaves no
// partial file: neither a new one nor a half-overwritten old one.
func TestFullDiskLeavesNoPartialFile(t *testing.T) {
	dir := diskfull.Tmpfs(t, 8*1024) // and old.html ("old") takes a 4 KiB page: 4 KiB stay free
	if err := os.WriteFile(filepath.Join(dir, "old.html"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := WriteHTMLFile(ctx, filepath.Join(dir, "old.html"), labModel(t), Meta{}, HTMLOptions{}); err == nil {
		t.Error("HTML report on a full disk: no error")
	}
	if _, err := WriteAttemptsCSVFile(ctx, filepath.Join(dir, "attempts.csv"), []string{labRecordsFile}, results.ReadOptions{}); err == nil {
		t.Error("attempts CSV on a full disk: no error")
	}
	if got := diskfull.Entries(t, dir); !slices.Equal(got, []string{"filler", "old.html"}) {
		t.Errorf("full disk left %v, want only filler and old.html", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "old.html")); string(b) != "old" {
		t.Errorf("old.html = %q, want it untouched", b)
	}
}

// An interrupt (ctx cancelled) leaves no output file either.
func TestCancelledOutputsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteHTMLFile(ctx, filepath.Join(dir, "r.html"), labModel(t), Meta{}, HTMLOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("HTML: err = %v, want context.Canceled", err)
	}
	if _, err := WriteAttemptsCSVFile(ctx, filepath.Join(dir, "a.csv"), []string{labRecordsFile}, results.ReadOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("CSV: err = %v, want context.Canceled", err)
	}
	if got := diskfull.Entries(t, dir); len(got) != 0 {
		t.Errorf("cancelled writes left %v", got)
	}
}

// The streamed attempts CSV is the in-memory one, byte for byte.
func TestAttemptsCSVFileStreamsSameBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.csv")
	if _, err := WriteAttemptsCSVFile(context.Background(), path, []string{labRecordsFile, nodeRecordsFile}, results.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	set, err := results.ReadFiles(labRecordsFile, nodeRecordsFile)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := WriteAttemptsCSV(&want, set); err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Errorf("streamed CSV differs from WriteAttemptsCSV (%d vs %d bytes)", len(got), want.Len())
	}
}

// labModel is the analysis model of the lab records (testdata).
func labModel(t *testing.T) *stats.Model {
	t.Helper()
	m, err := stats.Load(context.Background(), results.ReadOptions{}, labRecordsFile)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
