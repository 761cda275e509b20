package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Writer appends records to a JSONL file. Every record is one write(2) of a
// whole line followed by fsync, so an interrupt loses at most the record being
// written and never leaves a torn line from an earlier record.
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// Create opens path for appending, creating it if needed.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening results file %q: %w", path, err)
	}
	return &Writer{f: f, path: path}, nil
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
	if _, err := w.f.Write(b); err != nil {
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
	var probe Set
	if err := probe.decodeLine(bytes.TrimSpace(tail)); err == nil {
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

// ReadFile reads one results file.
func ReadFile(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening results file: %w", err)
	}
	defer f.Close()
	s, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ReadFiles reads and merges several results files in order.
func ReadFiles(paths ...string) (*Set, error) {
	all := &Set{}
	for _, p := range paths {
		s, err := ReadFile(p)
		if err != nil {
			return nil, err
		}
		all.Headers = append(all.Headers, s.Headers...)
		all.Attempts = append(all.Attempts, s.Attempts...)
		for _, w := range s.Warnings {
			all.Warnings = append(all.Warnings, p+": "+w)
		}
	}
	return all, nil
}

// Read decodes a JSONL stream. A last line without its newline that does not
// decode is a torn write (the process was killed mid-write): it is dropped
// with a warning. Any other undecodable line is an error naming its number.
func Read(r io.Reader) (*Set, error) {
	s := &Set{}
	br := bufio.NewReaderSize(r, 64*1024)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading line %d: %w", lineNo, err)
		}
		atEOF := errors.Is(err, io.EOF)
		torn := atEOF && len(line) > 0 // no trailing newline
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			if derr := s.decodeLine(trimmed); derr != nil {
				if torn {
					s.Warnings = append(s.Warnings, fmt.Sprintf("line %d: dropped a torn last record (%d bytes, no newline): %v", lineNo, len(line), derr))
				} else {
					return nil, fmt.Errorf("line %d: %w", lineNo, derr)
				}
			}
		}
		if atEOF {
			return s, nil
		}
	}
}

func (s *Set) decodeLine(b []byte) error {
	var probe struct {
		Type   string `json:"type"`
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("not a JSON record: %w", err)
	}
	switch probe.Type {
	case TypeHeader:
		if probe.Schema != SchemaVersion {
			return fmt.Errorf("header has schema %q; this coldbench reads %q", probe.Schema, SchemaVersion)
		}
		var h Header
		if err := json.Unmarshal(b, &h); err != nil {
			return fmt.Errorf("decoding header: %w", err)
		}
		s.Headers = append(s.Headers, h)
	case TypeAttempt:
		var a Attempt
		if err := json.Unmarshal(b, &a); err != nil {
			return fmt.Errorf("decoding attempt: %w", err)
		}
		s.Attempts = append(s.Attempts, a)
	default:
		return fmt.Errorf("unknown record type %q (want %q or %q)", probe.Type, TypeHeader, TypeAttempt)
	}
	return nil
}
