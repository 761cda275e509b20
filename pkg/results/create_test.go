package results

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/internal/testenv/diskfull"
)

func fullDiskAfter(t *testing.T, k int) {
	t.Helper()
	old := wrapFile
	wrapFile = func(f *os.File) io.Writer { return &diskfull.FailAfter{W: f, K: k} }
	t.Cleanup(func() { wrapFile = old })
}

func TestOpenWithHeaderFullDiskLeavesNoFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	fullDiskAfter(t, 10)
	h := fullHeader("cb-1")
	if _, err := OpenWithHeader(path, &h); err == nil || !strings.Contains(err.Error(), "header") {
		t.Fatalf("err = %v, want a header write error", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a header-less file was left behind: %v", err)
	}
}

func TestOpenWithHeaderFullDiskKeepsResumedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	h, a := fullHeader("cb-1"), validAttempt("cb-1", 0, 0)
	writeAll(t, path, &h, &a)
	before, _ := os.ReadFile(path)
	fullDiskAfter(t, 10)
	resumed := h
	resumed.Session = 1
	if _, err := OpenWithHeader(path, &resumed); err == nil {
		t.Fatal("no error on a full disk")
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(before) {
		t.Errorf("the resumed file changed: %v\nbefore %q\nafter  %q", err, before, after)
	}
}

func TestOpenWithHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	h, a := fullHeader("cb-1"), validAttempt("cb-1", 0, 0)
	w, err := OpenWithHeader(path, &h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&a); err != nil {
		t.Fatal(err)
	}
	w.Close()
	resumed := h
	resumed.Session = 1
	w, err = OpenWithHeader(path, &resumed) // appends
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	s, err := ReadFile(path)
	if err != nil || len(s.Headers) != 2 || len(s.Attempts) != 1 {
		t.Fatalf("read back: %v, %+v", err, s)
	}
}

// On a real full filesystem a new records file whose header does not fit
// is not left behind.
func TestOpenWithHeaderFullTmpfs(t *testing.T) {
	dir := diskfull.Tmpfs(t, 0)
	h := fullHeader("cb-1")
	h.Testbed.Notes = []string{strings.Repeat("n", 8192)} // more than any slack
	path := filepath.Join(dir, "r.jsonl")
	if _, err := OpenWithHeader(path, &h); err == nil {
		t.Fatal("no error on a full tmpfs")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a partial records file was left: %v", err)
	}
}
