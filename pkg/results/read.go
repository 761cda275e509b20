package results

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	jsoniter "github.com/json-iterator/go"
)

// ReadOptions control how a Reader treats inconsistent records.
type ReadOptions struct {
	// Lenient skips a line that is not a valid, consistent record (and
	// counts it, see Reader.Skipped) instead of refusing the input.
	Lenient bool
}

// maxSkipReasons bounds the reasons a lenient Reader keeps for its warning.
const maxSkipReasons = 5

// ctxCheckEvery is how many lines a Reader reads between checks of its
// context: ~1 ms of work, so an interrupt stops a long read at once.
const ctxCheckEvery = 1024

// fast decodes attempts: json-iterator (already in the module graph) in
// its standard-library-compatible mode decodes an Attempt 2.6× faster than
// encoding/json (BenchmarkDecodeAttempt: 4.9 against 13.0 µs on the
// 2-core test machine, see docs/performance.md), and attempts are
// nearly every line of a results file. Headers (a few per file) and error
// messages stay with encoding/json.
var fast = jsoniter.ConfigCompatibleWithStandardLibrary

// Record is one accepted line: exactly one of Header and Attempt is set.
// Each record is decoded afresh, so a callback may keep the pointers.
type Record struct {
	Header  *Header
	Attempt *Attempt
	File    string // as given to Read ("" for an unnamed stream)
	Line    int
}

// attemptKey identifies a measurement: a resumed run re-runs no recorded
// cell (pkg/bench.LoadResume), so the same key twice, in one session or
// two, is a record counted twice. Warm-ups carry negative iterations (the
// runner numbers them -warmups..-1) but the flag is part of the key so that
// no numbering of them can collide with a measured iteration.
//
// The fields are 32-bit (checkAttempt refuses larger values) so that the
// key of each of a large file's attempts costs 24 bytes, not 40.
type attemptKey struct {
	exp, runtime               int32 // interned ids
	scale, iteration, instance int32
	warmup                     bool
}

type location struct {
	file int32 // index into Reader.files
	line int32
}

type headerKey struct {
	exp     string
	session int
}

// Reader reads and validates results files as a stream, keeping only what
// validation needs (the headers' keys and one small key per attempt), so a
// file of any size is read in bounded memory. One Reader checks one set of
// inputs: reading two files with the same Reader refuses records that
// repeat across them (e.g. the same file given twice).
//
// A record is refused (or, with ReadOptions.Lenient, skipped) when:
//   - a header repeats (experiment id, session) of an earlier header: a
//     resumed run appends a header with the next session number;
//   - an attempt comes before any header of its experiment id;
//   - an attempt repeats (experiment, runtime, N, iteration, instance,
//     warm-up) of an earlier one;
//   - a time is negative (ttfb_ns, total_ns, a phase offset other than
//     the wall-clock ones, function_start and rt_*, release skew),
//     or ok is true without a positive ttfb_ns, or a runtime clock's
//     error bound is negative;
//   - scale < 1, instance outside [0, scale), or a measured iteration < 0.
type Reader struct {
	opt      ReadOptions
	files    []string
	headers  map[headerKey]location
	exps     map[string]int32
	runtimes map[string]int32
	attempts map[attemptKey]location

	warnings []string
	skipped  int
	reasons  []string
}

// NewReader returns a Reader with no records seen.
func NewReader(opt ReadOptions) *Reader {
	return &Reader{opt: opt, headers: map[headerKey]location{}, exps: map[string]int32{},
		runtimes: map[string]int32{}, attempts: map[attemptKey]location{}}
}

// Skipped is the number of lines a lenient Reader skipped.
func (r *Reader) Skipped() int { return r.skipped }

// Warnings are the problems the Reader recovered from: torn last lines
// (prefixed with their file) and, when lines were skipped, one warning with
// their number and the first few reasons.
func (r *Reader) Warnings() []string {
	w := append([]string(nil), r.warnings...)
	if r.skipped > 0 {
		s := fmt.Sprintf("skipped %d inconsistent record(s) (--lenient): %s", r.skipped, strings.Join(r.reasons, "; "))
		if r.skipped > len(r.reasons) {
			s += "; …"
		}
		w = append(w, s)
	}
	return w
}

// ReadFile reads path; see Read.
func (r *Reader) ReadFile(ctx context.Context, path string, fn func(Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening results file: %w", err)
	}
	defer f.Close()
	return r.Read(ctx, f, path, fn)
}

// Read decodes and validates the JSONL stream src, named name in messages
// and warnings, and calls fn with every accepted record in order. A last
// line without its newline that does not decode is a torn write (the
// process was killed mid-write): it is dropped with a warning. Any other
// bad line is an error naming the file and line, unless the Reader is
// lenient. Read checks ctx every ctxCheckEvery lines and returns its error,
// wrapped, when it is done. An error from fn stops the read and is returned
// as is.
func (r *Reader) Read(ctx context.Context, src io.Reader, name string, fn func(Record) error) error {
	fileIdx := int32(len(r.files))
	r.files = append(r.files, name)
	prefix := ""
	if name != "" {
		prefix = name + ": "
	}
	br := bufio.NewReaderSize(src, 256*1024)
	for lineNo := 1; ; lineNo++ {
		if lineNo%ctxCheckEvery == 1 { // from the first line on
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("%sreading stopped at line %d: %w", prefix, lineNo, err)
			}
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer (a huge error message):
			// gather it whole.
			buf := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				buf = append(buf, line...)
			}
			line = buf
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%sreading line %d: %w", prefix, lineNo, err)
		}
		atEOF := errors.Is(err, io.EOF)
		torn := atEOF && len(line) > 0 // no trailing newline
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			rec, derr := decode(trimmed)
			if derr != nil && torn {
				r.warnings = append(r.warnings, fmt.Sprintf("%sline %d: dropped a torn last record (%d bytes, no newline): %v", prefix, lineNo, len(line), derr))
			} else {
				if derr == nil {
					derr = r.check(&rec, location{fileIdx, int32(lineNo)})
				}
				if derr != nil {
					if !r.opt.Lenient {
						return fmt.Errorf("%sline %d: %w", prefix, lineNo, derr)
					}
					r.skip(fmt.Sprintf("%sline %d: %v", prefix, lineNo, derr))
				} else {
					rec.File, rec.Line = name, lineNo
					if err := fn(rec); err != nil {
						return err
					}
				}
			}
		}
		if atEOF {
			return nil
		}
	}
}

func (r *Reader) skip(reason string) {
	r.skipped++
	if len(r.reasons) < maxSkipReasons {
		r.reasons = append(r.reasons, reason)
	}
}

// decode parses one line. Attempts, nearly every line, take one pass of
// the fast decoder; anything else is decoded again with encoding/json for
// the type, schema and a precise error.
func decode(b []byte) (Record, error) {
	a := new(Attempt)
	if err := fast.Unmarshal(b, a); err == nil && a.Type == TypeAttempt {
		return Record{Attempt: a}, nil
	}
	var probe struct {
		Type   string `json:"type"`
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return Record{}, fmt.Errorf("not a JSON record: %w", err)
	}
	switch probe.Type {
	case TypeHeader:
		if probe.Schema != SchemaVersion {
			return Record{}, fmt.Errorf("header has schema %q; this coldbench reads %q", probe.Schema, SchemaVersion)
		}
		h := new(Header)
		if err := json.Unmarshal(b, h); err != nil {
			return Record{}, fmt.Errorf("decoding header: %w", err)
		}
		return Record{Header: h}, nil
	case TypeAttempt:
		// The fast decoder failed: take encoding/json's error.
		a := new(Attempt)
		if err := json.Unmarshal(b, a); err != nil {
			return Record{}, fmt.Errorf("decoding attempt: %w", err)
		}
		return Record{Attempt: a}, nil
	default:
		return Record{}, fmt.Errorf("unknown record type %q (want %q or %q)", probe.Type, TypeHeader, TypeAttempt)
	}
}

func (r *Reader) where(l location, here int32) string {
	if l.file == here {
		return fmt.Sprintf("line %d", l.line)
	}
	return fmt.Sprintf("%s line %d", r.files[l.file], l.line)
}

func intern(m map[string]int32, s string) int32 {
	id, ok := m[s]
	if !ok {
		id = int32(len(m))
		m[s] = id
	}
	return id
}

// check validates rec against itself and what the Reader has seen, and
// records it as seen when it passes.
func (r *Reader) check(rec *Record, here location) error {
	if h := rec.Header; h != nil {
		k := headerKey{h.ExperimentID, h.Session}
		if prev, dup := r.headers[k]; dup {
			hint := "a resumed run writes the next session number"
			if prev.file != here.file {
				hint = "the same records given twice (one file twice, or a copy of it)? give each once"
			}
			return fmt.Errorf("header duplicates %s (experiment %s, session %d); %s", r.where(prev, here.file), h.ExperimentID, h.Session, hint)
		}
		r.headers[k] = here
		intern(r.exps, h.ExperimentID)
		return nil
	}
	a := rec.Attempt
	if err := checkAttempt(a); err != nil {
		return fmt.Errorf("attempt (experiment %s, %s, N=%d, iteration %d, instance %d): %w", a.ExperimentID, a.Runtime, a.Scale, a.Iteration, a.Instance, err)
	}
	exp, ok := r.exps[a.ExperimentID]
	if !ok {
		return fmt.Errorf("attempt of experiment %q before any header of it", a.ExperimentID)
	}
	k := attemptKey{exp: exp, runtime: intern(r.runtimes, a.Runtime), scale: int32(a.Scale),
		iteration: int32(a.Iteration), instance: int32(a.Instance), warmup: a.Warmup}
	if prev, dup := r.attempts[k]; dup {
		kind := "iteration"
		if a.Warmup {
			kind = "warm-up iteration"
		}
		return fmt.Errorf("attempt duplicates %s (experiment %s, %s, N=%d, %s %d, instance %d)", r.where(prev, here.file), a.ExperimentID, a.Runtime, a.Scale, kind, a.Iteration, a.Instance)
	}
	r.attempts[k] = here
	return nil
}

// checkAttempt checks what a single attempt must satisfy on its own.
func checkAttempt(a *Attempt) error {
	switch {
	case a.Scale < 1:
		return fmt.Errorf("scale %d: must be at least 1", a.Scale)
	case a.Scale > math.MaxInt32 || a.Iteration > math.MaxInt32 || a.Iteration < math.MinInt32:
		return fmt.Errorf("scale %d or iteration %d: out of range", a.Scale, a.Iteration)
	case a.Instance < 0 || a.Instance >= a.Scale:
		return fmt.Errorf("instance %d: must be in [0, scale %d)", a.Instance, a.Scale)
	case a.Iteration < 0 && !a.Warmup:
		return fmt.Errorf("iteration %d: a measured iteration is at least 0", a.Iteration)
	case a.TTFBNS < 0:
		return fmt.Errorf("negative ttfb_ns %d", a.TTFBNS)
	case a.TotalNS < 0:
		return fmt.Errorf("negative total_ns %d", a.TotalNS)
	case a.ReleaseSkewNS < 0 || a.ReleaseSkewUserNS < 0:
		return fmt.Errorf("negative release_skew_ns %d or release_skew_user_ns %d", a.ReleaseSkewNS, a.ReleaseSkewUserNS)
	case a.Timestamps != "" && a.Timestamps != TimestampsKernel && a.Timestamps != TimestampsUser:
		return fmt.Errorf("timestamps %q: want %q or %q", a.Timestamps, TimestampsKernel, TimestampsUser)
	case a.OK && a.TTFBNS <= 0:
		return fmt.Errorf("ok without a ttfb_ns (%d)", a.TTFBNS)
	}
	if s := a.Step; s != nil {
		if s.WallNS < 0 || s.SetupNS < 0 || s.TeardownNS < 0 || s.HarnessCPUNS < 0 || s.HarnessPeakRSSBytes < 0 {
			return fmt.Errorf("step has a negative figure (%+v)", *s)
		}
	}
	if u := a.Unschedulable; u != nil && u.WaitNS < 0 {
		return fmt.Errorf("negative unschedulable.wait_ns %d", u.WaitNS)
	}
	if f := a.Footprint; f != nil {
		if err := checkFootprint(f); err != nil {
			return fmt.Errorf("footprint: %w", err)
		}
	}
	if d := a.Density; d != nil {
		switch {
		case d.Alive < 0 || d.Lost < 0:
			return fmt.Errorf("negative density.alive %d or density.lost %d", d.Alive, d.Lost)
		case d.MemAvailableBytes != nil && *d.MemAvailableBytes < 0:
			return fmt.Errorf("negative density.mem_available_bytes %d", *d.MemAvailableBytes)
		case a.Warmup:
			return fmt.Errorf("density on a warm-up: warm-ups are torn down, they start no density step")
		}
	}
	if c := a.RuntimeClock; c != nil && c.ErrorNS < 0 {
		// The offset has either sign; its bound, half a round trip, not.
		return fmt.Errorf("negative runtime_clock.error_ns %d", c.ErrorNS)
	}
	for _, p := range a.Phases {
		// function_start is the function's own wall clock, and a process
		// that started before the request (a not_cold sample, see
		// pkg/platform/knative) has it negative: that is evidence, not an
		// inconsistency. The rt_ phases are containerd's wall clock, which
		// a clock step can put before the start. Every other phase is on
		// the attempt's monotonic clock, from its start.
		// With kernel stamps, user_start (and a late dial's connected)
		// precede the start by construction.
		if p.OffsetNS < 0 && !MayPrecedeStart(p.Name) {
			return fmt.Errorf("phase %q has a negative offset %d", p.Name, p.OffsetNS)
		}
	}
	return nil
}

// checkFootprint checks a footprint's figures are not negative, but for
// the node's MemAvailable drop: the node may well have gained memory.
func checkFootprint(f *Footprint) error {
	for name, v := range map[string]*int64{
		"pss_bytes": f.PSSBytes, "pss_anon_shmem_bytes": f.PSSAnonShmemBytes, "cgroup_usage_bytes": f.CgroupUsageBytes,
		"cgroup_working_set_bytes": f.CgroupWorkingSetBytes, "cpu_to_first_byte_ns": f.CPUToFirstByteNS,
		"idle_cpu_ns": f.IdleCPUNS, "cpu_to_first_byte_error_ns": f.CPUToFirstByteErrorNS,
	} {
		if v != nil && *v < 0 {
			return fmt.Errorf("negative %s %d", name, *v)
		}
	}
	if f.SettleNS < 0 || f.IdleWindowNS < 0 || f.NodeInstances < 0 {
		return fmt.Errorf("negative settle_ns, idle_window_ns or node_instances (%d, %d, %d)", f.SettleNS, f.IdleWindowNS, f.NodeInstances)
	}
	if k := f.Kubelet; k != nil {
		for name, v := range map[string]*int64{"working_set_bytes": k.WorkingSetBytes, "usage_bytes": k.UsageBytes, "cpu_ns": k.CPUNS, "idle_cpu_ns": k.IdleCPUNS} {
			if v != nil && *v < 0 {
				return fmt.Errorf("negative kubelet.%s %d", name, *v)
			}
		}
	}
	return nil
}
