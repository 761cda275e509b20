package results

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Writer appends records to a JSONL file. Every record is one write(2) of a
// whole line followed by fsync, so an interrupt loses at most the record being
// written and never leaves a torn line from an earlier record.
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	out  io.Writer // f, or a test's wrapper of it
	path string
}

// wrapFile lets tests put a failing writer (a full disk) in front of the
// file OpenWithHeader opens.
var wrapFile = func(f *os.File) io.Writer { return f }

// OpenAppend opens path for appending, creating it if needed (an existing
// file keeps its records; nothing is written until Write).
func OpenAppend(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening results file %q: %w", path, err)
	}
	return &Writer{f: f, out: f, path: path}, nil
}

// OpenWithHeader opens path for appending, creating it if needed (like
// os.OpenFile with O_CREATE|O_APPEND, hence Open, not Create), with h as
// its next record, in one step. A new file is written under a temporary
// name in the same directory and linked into place only once its header is
// synced, so a full disk or even SIGKILL leaves no file, never one without
// its header. An existing file (a resumed run's) gets h appended; if that
// fails it is cut back to its former size, never removed.
func OpenWithHeader(path string, h *Header) (*Writer, error) {
	w, err := createNew(path, h)
	if errors.Is(err, fs.ErrExist) {
		return appendHeader(path, h)
	}
	return w, err
}

// createNew writes h into a temporary file and links it to path, which
// must not exist (fs.ErrExist otherwise: link never replaces).
func createNew(path string, h *Header) (*Writer, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fs.ErrExist
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating results file %q: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the link, path holds the file
	w := &Writer{f: tmp, out: wrapFile(tmp), path: path}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("creating results file %q: %w", path, err)
	}
	if err := w.Write(h); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing the header: %w", err)
	}
	// The descriptor stays the file's whatever its name (opened without
	// O_APPEND, but it is the only writer and sits at the end).
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			tmp.Close()
			return nil, err
		}
		// A filesystem without hard links: rename, which would replace a
		// file created in between (unlikely: the name was just free).
		if _, serr := os.Lstat(path); serr == nil {
			tmp.Close()
			return nil, fs.ErrExist
		}
		if rerr := os.Rename(tmp.Name(), path); rerr != nil {
			tmp.Close()
			return nil, fmt.Errorf("creating results file %q: %w", path, rerr)
		}
	}
	return w, nil
}

func appendHeader(path string, h *Header) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("opening results file %q: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening results file %q: %w", path, err)
	}
	size := fi.Size()
	w := &Writer{f: f, out: wrapFile(f), path: path}
	if err := w.Write(h); err != nil {
		f.Close()
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().IsRegular() && fi.Size() > size {
			os.Truncate(path, size) // a partial header line
		}
		return nil, fmt.Errorf("writing the header: %w", err)
	}
	return w, nil
}

// Path is the file the writer appends to.
func (w *Writer) Path() string { return w.path }

// Write encodes rec (a *Header or *Attempt) as one line and flushes it.
func (w *Writer) Write(rec any) error { return w.WriteBatch(rec) }

// WriteBatch encodes recs as lines and appends them with a single write(2)
// and fsync. A write to a regular file is not cut short by SIGKILL, so the
// batch (one cell's attempts) lands whole or not at all, short of a crash
// of the machine, which the reader's torn-line check covers.
func (w *Writer) WriteBatch(recs ...any) error {
	var b []byte
	for _, rec := range recs {
		line, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encoding record: %w", err)
		}
		b = append(append(b, line...), '\n')
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.out.Write(b); err != nil {
		return fmt.Errorf("appending to %q: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("flushing %q: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// RepairTail makes path end with a whole line before more records are
// appended: a torn last record (no newline, does not decode) is cut off; a
// whole record that only lacks its newline gets one. It says what it did
// ("" when nothing was needed).
func RepairTail(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading results file: %w", err)
	}
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return "", nil
	}
	start := bytes.LastIndexByte(data, '\n') + 1
	tail := data[start:]
	if _, err := decode(bytes.TrimSpace(tail)); err == nil {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return "", err
		}
		return "added the missing newline after the last record", f.Sync()
	}
	if err := os.Truncate(path, int64(start)); err != nil {
		return "", fmt.Errorf("cutting the torn last record: %w", err)
	}
	return fmt.Sprintf("cut a torn last record (%d bytes)", len(tail)), nil
}

// Set is what a results file holds.
type Set struct {
	Headers  []Header
	Attempts []Attempt
	// Warnings are problems the reader recovered from (e.g. a torn last line).
	Warnings []string
}

// ReadFile reads and validates one results file into memory (see Reader).
func ReadFile(path string) (*Set, error) {
	return ReadFiles(path)
}

// ReadFiles reads, validates and merges several results files in order;
// records repeated across them are refused like repeats within one. It
// holds every record in memory: the report, plot and compare paths stream
// with a Reader instead.
func ReadFiles(paths ...string) (*Set, error) {
	return ReadFilesContext(context.Background(), ReadOptions{}, paths...)
}

// ReadFilesContext is ReadFiles with a context and options.
func ReadFilesContext(ctx context.Context, opt ReadOptions, paths ...string) (*Set, error) {
	s := &Set{}
	r := NewReader(opt)
	for _, p := range paths {
		if err := r.ReadFile(ctx, p, s.add); err != nil {
			return nil, err
		}
	}
	s.Warnings = r.Warnings()
	return s, nil
}

// Read decodes and validates one unnamed JSONL stream (see Reader.Read);
// warnings name lines only.
func Read(src io.Reader) (*Set, error) {
	s := &Set{}
	r := NewReader(ReadOptions{})
	if err := r.Read(context.Background(), src, "", s.add); err != nil {
		return nil, err
	}
	s.Warnings = r.Warnings()
	return s, nil
}

func (s *Set) add(rec Record) error {
	if rec.Header != nil {
		s.Headers = append(s.Headers, *rec.Header)
	} else {
		s.Attempts = append(s.Attempts, *rec.Attempt)
	}
	return nil
}
