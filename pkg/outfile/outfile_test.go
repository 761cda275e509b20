package outfile

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/internal/testenv/diskfull"
)

func TestWriteFileWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.html")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A write that fails half-way (full disk) leaves the old file and no
	// temporary one.
	err := WriteFile(context.Background(), path, func(w io.Writer) error {
		_, err := (&diskfull.FailAfter{W: w, K: 5}).Write([]byte("new content, longer than five bytes"))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("file = %q, want the old content", b)
	}
	if got := diskfull.Entries(t, dir); len(got) != 1 {
		t.Errorf("directory holds %v, want only out.html", got)
	}
	// Cancelled while writing: nothing replaced, nothing left.
	ctx, cancel := context.WithCancel(context.Background())
	err = WriteFile(ctx, path, func(w io.Writer) error {
		io.WriteString(w, "partial")
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" || len(diskfull.Entries(t, dir)) != 1 {
		t.Errorf("after cancel: file %q, directory %v", b, diskfull.Entries(t, dir))
	}
	// Success replaces it, readable by others.
	if err := WriteFile(context.Background(), path, func(w io.Writer) error {
		_, err := io.WriteString(w, "new")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new" || fi.Mode().Perm() != 0o644 || len(diskfull.Entries(t, dir)) != 1 {
		t.Errorf("after success: %q mode %v, directory %v", b, fi.Mode(), diskfull.Entries(t, dir))
	}
}

func TestDirStagesUntilCommit(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "figs")
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("a.svg", []byte("a")); err != nil {
		t.Fatal(err)
	}
	// Before Commit nothing is visible under its final name.
	if _, err := os.Stat(filepath.Join(dir, "a.svg")); err == nil {
		t.Error("a.svg visible before Commit")
	}
	d.Abort()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Abort left the directory it created: %v", err)
	}

	d, err = NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.svg", "b.png"} {
		if err := d.WriteFile(n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := d.Commit()
	if err != nil || len(paths) != 2 {
		t.Fatalf("Commit: %v, %v", paths, err)
	}
	d.Abort() // no-op after Commit
	if got := diskfull.Entries(t, dir); strings.Join(got, ",") != "a.svg,b.png" {
		t.Errorf("directory holds %v", got)
	}
	// An existing directory is kept on Abort.
	d, err = NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.WriteFile("c.svg", []byte("c"))
	d.Abort()
	if got := diskfull.Entries(t, dir); strings.Join(got, ",") != "a.svg,b.png" {
		t.Errorf("after Abort in an existing directory: %v", got)
	}
}

// MkdirAll's undo removes exactly the folders it made, deepest first, and
// none that holds something.
func TestMkdirAllUndo(t *testing.T) {
	base := t.TempDir()
	undo, err := MkdirAll(filepath.Join(base, "a", "b", "c"))
	if err != nil {
		t.Fatal(err)
	}
	undo()
	if _, err := os.Stat(filepath.Join(base, "a")); !os.IsNotExist(err) {
		t.Errorf("a: %v, want it removed", err)
	}
	if _, err := os.Stat(base); err != nil {
		t.Errorf("the existing base went: %v", err)
	}
	undo, err = MkdirAll(filepath.Join(base, "x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "x", "keep"), nil, 0o644)
	undo()
	if _, err := os.Stat(filepath.Join(base, "x", "y")); !os.IsNotExist(err) {
		t.Errorf("x/y: %v, want it removed", err)
	}
	if _, err := os.Stat(filepath.Join(base, "x", "keep")); err != nil {
		t.Errorf("x holds a file and must stay: %v", err)
	}
}
