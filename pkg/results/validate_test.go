package results

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validAttempt is a measured, successful attempt of experiment id.
func validAttempt(id string, iteration, instance int) Attempt {
	a := fullAttempt(id, 1)
	a.Iteration, a.Instance, a.Warmup, a.OK = iteration, instance, false, true
	return a
}

// Each case is a defect that the reader used to accept (counting attempts
// twice, or reporting nonsense as data).
func TestReadRefusesInconsistentRecords(t *testing.T) {
	h := fullHeader("cb-1")
	a0, a1 := validAttempt("cb-1", 0, 0), validAttempt("cb-1", 0, 1)
	mod := func(f func(*Attempt)) *Attempt { a := validAttempt("cb-1", 1, 2); f(&a); return &a }
	resumed := h
	resumed.Session = 1
	cases := []struct {
		name    string
		content string
		want    []string
	}{
		{"attempts pasted twice", line(t, &h) + line(t, &a0) + line(t, &a1) + line(t, &a0) + line(t, &a1),
			[]string{"line 4: attempt duplicates line 2 (experiment cb-1, rt1, N=4, iteration 0, instance 0)"}},
		{"duplicate recorded by a resumed session", line(t, &h) + line(t, &a0) + line(t, &resumed) + line(t, &a0),
			[]string{"line 4: attempt duplicates line 2"}},
		{"no header", line(t, &a0), []string{"line 1", `attempt of experiment "cb-1" before any header`}},
		{"header of another experiment only", line(t, ptr(fullHeader("cb-2"))) + line(t, &a0), []string{"line 2", "before any header"}},
		{"two headers for one experiment and session", line(t, &h) + line(t, &a0) + line(t, &h),
			[]string{"line 3: header duplicates line 1 (experiment cb-1, session 0)"}},
		{"negative ttfb with ok", line(t, &h) + line(t, mod(func(a *Attempt) { a.TTFBNS = -5 })), []string{"line 2", "negative ttfb_ns -5"}},
		{"ok without ttfb", line(t, &h) + line(t, mod(func(a *Attempt) { a.TTFBNS = 0 })), []string{"line 2", "ok without a ttfb_ns"}},
		{"negative total", line(t, &h) + line(t, mod(func(a *Attempt) { a.TotalNS = -1 })), []string{"negative total_ns"}},
		{"negative skew", line(t, &h) + line(t, mod(func(a *Attempt) { a.ReleaseSkewNS = -1 })), []string{"negative release_skew_ns"}},
		{"negative step teardown", line(t, &h) + line(t, mod(func(a *Attempt) { a.Step = &Step{WallNS: 5, TeardownNS: -1} })), []string{"step has a negative figure"}},
		{"negative unschedulable wait", line(t, &h) + line(t, mod(func(a *Attempt) { a.Unschedulable = &Unschedulable{Reason: "x", WaitNS: -2} })), []string{"negative unschedulable.wait_ns -2"}},
		{"negative runtime clock error bound", line(t, &h) + line(t, mod(func(a *Attempt) { a.RuntimeClock = &RuntimeClock{Node: "n1", OffsetNS: 5, ErrorNS: -1} })), []string{"negative runtime_clock.error_ns -1"}},
		{"negative density alive", line(t, &h) + line(t, mod(func(a *Attempt) { a.Density = &Density{Alive: -1} })), []string{"negative density.alive -1"}},
		{"negative available memory", line(t, &h) + line(t, mod(func(a *Attempt) { m := int64(-4); a.Density = &Density{MemAvailableBytes: &m} })), []string{"negative density.mem_available_bytes -4"}},
		{"density on a warm-up", line(t, &h) + line(t, mod(func(a *Attempt) { a.Iteration, a.Warmup, a.Density = -1, true, &Density{Alive: 3} })), []string{"density on a warm-up"}},
		{"negative phase", line(t, &h) + line(t, mod(func(a *Attempt) { a.Phases[1].OffsetNS = -3 })), []string{`phase "container_created" has a negative offset -3`}},
		{"scale 0", line(t, &h) + line(t, mod(func(a *Attempt) { a.Scale, a.Instance = 0, 0 })), []string{"line 2", "scale 0: must be at least 1"}},
		{"instance = scale", line(t, &h) + line(t, mod(func(a *Attempt) { a.Instance = 4 })), []string{"line 2", "instance 4: must be in [0, scale 4)"}},
		{"negative instance", line(t, &h) + line(t, mod(func(a *Attempt) { a.Instance = -1 })), []string{"instance -1"}},
		{"negative measured iteration", line(t, &h) + line(t, mod(func(a *Attempt) { a.Iteration = -1 })), []string{"iteration -1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeRaw(t, "results.jsonl", c.content)
			s, err := ReadFile(path)
			if err == nil {
				t.Fatalf("accepted: %d headers, %d attempts", len(s.Headers), len(s.Attempts))
			}
			for _, w := range append(c.want, path+": line") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// What coldbench itself writes stays readable: warm-ups numbered -w..-1
// next to measured iterations 0.., a resumed session's header and cells,
// several experiments in one file, a failure without a ttfb, and a
// negative function_start (a process that predates the request), negative
// rt_ phases (containerd's wall clock, stepped back during the attempt, or
// a node's clock behind coldbench's).
func TestReadAcceptsValidVariety(t *testing.T) {
	h1, h2 := fullHeader("cb-1"), fullHeader("cb-2")
	resumed := h1
	resumed.Session = 1
	warm := validAttempt("cb-1", -1, 0)
	warm.Warmup = true
	failed := validAttempt("cb-1", 0, 1)
	failed.OK, failed.TTFBNS, failed.TotalNS = false, 0, 0
	early := validAttempt("cb-1", 1, 0)
	early.Phases = append(early.Phases, Phase{Name: PhaseFunctionStart, OffsetNS: -2_000_000})
	stepped := validAttempt("cb-1", 2, 0)
	stepped.Phases = append([]Phase{{Name: PhaseRTSandboxCreated, OffsetNS: -1_000}, {Name: PhaseRTSandboxStarted, OffsetNS: -500}}, stepped.Phases...)
	stepped.RuntimePhases = RuntimePhasesFromEvents
	// A node agent's (knative): a node clock behind coldbench's.
	agent := validAttempt("cb-1", 3, 0)
	agent.Phases = append([]Phase{{Name: PhaseRTQueueProxyCreated, OffsetNS: -700}}, agent.Phases...)
	agent.RuntimePhases = RuntimePhasesPartial + "the attempt failed; none for " + PhaseRTQueueProxyStarted
	agent.RuntimeClock = &RuntimeClock{Node: "n1", OffsetNS: -3_000_000, ErrorNS: 0}
	other := validAttempt("cb-2", 0, 0)
	content := line(t, &h1) + line(t, &warm) + line(t, ptr(validAttempt("cb-1", 0, 0))) + line(t, &failed) +
		line(t, &h2) + line(t, &other) + line(t, &resumed) + line(t, &early) + line(t, &stepped) + line(t, &agent)
	s, err := Read(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Headers) != 3 || len(s.Attempts) != 7 {
		t.Errorf("%d headers, %d attempts; want 3, 7", len(s.Headers), len(s.Attempts))
	}
	if got := s.Attempts[5]; got.RuntimePhases != RuntimePhasesFromEvents || got.Phases[0].Name != PhaseRTSandboxCreated {
		t.Errorf("runtime phases read back as %q, %+v", got.RuntimePhases, got.Phases)
	}
	if got := s.Attempts[6]; got.RuntimeClock == nil || *got.RuntimeClock != *agent.RuntimeClock {
		t.Errorf("runtime clock read back as %+v", got.RuntimeClock)
	}
}

func TestReadFilesSameFileTwice(t *testing.T) {
	h, a := fullHeader("cb-1"), validAttempt("cb-1", 0, 0)
	path := writeRaw(t, "results.jsonl", line(t, &h)+line(t, &a))
	_, err := ReadFiles(path, path)
	if err == nil {
		t.Fatal("the same file given twice was accepted")
	}
	if want := path + ": line 1: header duplicates " + path + " line 1"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("error %q, want it to contain %q and say the records were given twice", err, want)
	}
	// A copy under another name is the same records.
	cp := filepath.Join(t.TempDir(), "copy.jsonl")
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFiles(path, cp); err == nil {
		t.Error("a copy of the file was accepted as more records")
	}
}

func TestReadLenientSkipsAndCounts(t *testing.T) {
	h, a0, a1 := fullHeader("cb-1"), validAttempt("cb-1", 0, 0), validAttempt("cb-1", 0, 1)
	bad := validAttempt("cb-1", 1, 0)
	bad.Scale = 0
	content := line(t, &a1) + line(t, &h) + line(t, &a0) + line(t, &a0) + "garbage\n" + line(t, &bad) + line(t, &a1) + line(t, &h) + line(t, &a0)
	path := writeRaw(t, "results.jsonl", content)
	s, err := ReadFilesContext(context.Background(), ReadOptions{Lenient: true}, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Headers) != 1 || len(s.Attempts) != 2 {
		t.Errorf("kept %d headers, %d attempts; want 1, 2", len(s.Headers), len(s.Attempts))
	}
	if len(s.Warnings) != 1 {
		t.Fatalf("warnings %q, want one", s.Warnings)
	}
	for _, want := range []string{"skipped 6 inconsistent record(s)", path + ": line 1: attempt of experiment", "line 4: attempt duplicates line 3", "line 5: not a JSON record", "; …"} {
		if !strings.Contains(s.Warnings[0], want) {
			t.Errorf("warning %q does not contain %q", s.Warnings[0], want)
		}
	}
}

func TestReadStopsOnCancel(t *testing.T) {
	h := fullHeader("cb-1")
	var b strings.Builder
	b.WriteString(line(t, &h))
	const n = 50_000
	for i := range n {
		a := validAttempt("cb-1", i, 0)
		a.Scale, a.Instance = 1, 0
		b.WriteString(line(t, &a))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := 0
	r := NewReader(ReadOptions{})
	err := r.Read(ctx, strings.NewReader(b.String()), "big.jsonl", func(Record) error {
		seen++
		if seen == 5000 {
			cancel() // as Ctrl-C would, mid-read
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if seen >= 5000+ctxCheckEvery+1 {
		t.Errorf("read %d records after the cancel, want at most %d", seen-5000, ctxCheckEvery)
	}
	if !strings.Contains(err.Error(), "big.jsonl") {
		t.Errorf("error %q does not name the file", err)
	}
}

// BenchmarkDecodeAttempt compares encoding/json with the json-iterator
// decoder Reader uses, on a realistic attempt line (docs/performance.md).
func BenchmarkDecodeAttempt(b *testing.B) {
	a := validAttempt("cb-20261126t055607-6290cd", 3, 1)
	for _, n := range []string{"scheduled", "pod_ready", "address_known", "function_start"} {
		a.Phases = append(a.Phases, Phase{Name: n, OffsetNS: 123456789})
	}
	raw, err := json.Marshal(&a)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var v Attempt
			if err := json.Unmarshal(raw, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json-iterator", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var v Attempt
			if err := fast.Unmarshal(raw, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A line longer than the reader's buffer (a huge error message) is read
// whole, and its line numbers stay right.
func TestReadLongLine(t *testing.T) {
	h := fullHeader("cb-1")
	long := validAttempt("cb-1", 0, 0)
	long.Error = strings.Repeat("x", 600*1024)
	content := line(t, &h) + line(t, &long) + line(t, &long)
	s, err := Read(strings.NewReader(content[:len(content)-1])) // no final newline: still whole
	if err == nil || !strings.Contains(err.Error(), "line 3: attempt duplicates line 2") {
		t.Fatalf("err = %v, want line 3 duplicating line 2", err)
	}
	s, err = Read(strings.NewReader(line(t, &h) + line(t, &long)))
	if err != nil || len(s.Attempts) != 1 || s.Attempts[0].Error != long.Error {
		t.Fatalf("long line: %v", err)
	}
}
