package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// testExperiment stands in for bench.Experiment (results must not import
// bench): a struct that decodes back as map[string]any.
type testExperiment struct {
	APIVersion string         `json:"apiVersion"`
	Spec       map[string]any `json:"spec"`
	Scales     []int          `json:"scales"`
}

func fullHeader(id string) Header {
	return Header{
		Type:         TypeHeader,
		Schema:       SchemaVersion,
		ExperimentID: id,
		Created:      time.Date(2026, 11, 26, 5, 32, 0, 123456789, time.UTC),
		Experiment: testExperiment{
			APIVersion: "coldbench.dev/v1alpha1",
			Spec:       map[string]any{"platform": "node", "iterations": 5, "deadline": "30m0s"},
			Scales:     []int{1, 4},
		},
		Testbed: Testbed{
			Hostname:        "host-a",
			CPUModel:        "Some CPU @ 3.0GHz",
			Cores:           16,
			Kernel:          "6.8.0-test",
			CgroupMode:      "hybrid",
			CPUGovernor:     "performance",
			CPUBoost:        "off",
			MemoryBytes:     64 << 30,
			PlatformVersion: map[string]string{"containerd": "2.0.0", "cri": "v1"},
			RuntimeVersions: map[string]string{"runc": "1.2.0", "crun": "1.19"},
			Notes:           []string{"a note", "another note"},
		},
		Tool: ToolInfo{Name: "coldbench", Version: "v0.1.0", Commit: "deadbeef", GoVersion: "go1.26.8"},
	}
}

func fullAttempt(id string, i int) Attempt {
	return Attempt{
		Type:         TypeAttempt,
		ExperimentID: id,
		Platform:     "node",
		Runtime:      fmt.Sprintf("rt%d", i%2),
		Handler:      "runc",
		Scale:        4,
		Iteration:    i - 1,
		Instance:     i % 4,
		Warmup:       i == 0,
		Start:        time.Date(2026, 11, 26, 5, 32, i, 1000*i+7, time.UTC),
		TTFBNS:       int64(1_000_000 + i),
		TotalNS:      int64(2_000_000 + i),
		OK:           i%3 != 2,
		HTTPStatus:   200 + i,
		ErrorClass:   ErrHTTPStatus,
		Error:        fmt.Sprintf("error %d with \"quotes\" and\nnewline", i),
		Probes:       3 + i,
		Phases: []Phase{
			{Name: PhaseSandboxReady, OffsetNS: 100 + int64(i)},
			{Name: PhaseContainerCreated, OffsetNS: 200},
			{Name: PhaseContainerStarted, OffsetNS: 300},
			{Name: PhaseFirstByte, OffsetNS: 400},
		},
		Cold: Cold{
			SandboxID:   fmt.Sprintf("sb-%d", i),
			ContainerID: fmt.Sprintf("ctr-%d", i),
			Pod:         "pod",
			Revision:    "rev-1",
			Address:     "10.0.0.1:8080",
		},
		LoadAvg:       [3]float64{0.5 + float64(i), 1.25, 2.125},
		ReleaseSkewNS: 12345,
		RuntimePhases: RuntimePhasesMissing + "containerd event stream lost: \"EOF\"",
		RuntimeClock:  &RuntimeClock{Node: "node-1", OffsetNS: -1234, ErrorNS: 567},
	}
}

// normalize returns h with Experiment replaced by its JSON decoding (what a
// reader sees: map[string]any).
func normalize(t *testing.T, h Header) Header {
	t.Helper()
	b, err := json.Marshal(h.Experiment)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	h.Experiment = v
	return h
}

func writeAll(t *testing.T, path string, recs ...any) {
	t.Helper()
	w, err := OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.Path() != path {
		t.Errorf("Path() = %q, want %q", w.Path(), path)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	h := fullHeader("cb-1")
	var want []Attempt
	recs := []any{&h}
	for i := range 5 {
		a := fullAttempt("cb-1", i)
		want = append(want, a)
		recs = append(recs, &a)
	}
	writeAll(t, path, recs...)

	s, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 0 {
		t.Errorf("warnings: %v", s.Warnings)
	}
	if len(s.Headers) != 1 {
		t.Fatalf("got %d headers", len(s.Headers))
	}
	if _, ok := s.Headers[0].Experiment.(map[string]any); !ok {
		t.Errorf("Experiment decoded as %T, want map[string]any", s.Headers[0].Experiment)
	}
	if wantH := normalize(t, h); !reflect.DeepEqual(s.Headers[0], wantH) {
		t.Errorf("header:\n got %+v\nwant %+v", s.Headers[0], wantH)
	}
	if !reflect.DeepEqual(s.Attempts, want) {
		t.Errorf("attempts:\n got %+v\nwant %+v", s.Attempts, want)
	}
	// Phases survive in order and are reachable.
	if d, ok := s.Attempts[1].PhaseOffset(PhaseSandboxReady); !ok || d != 101 {
		t.Errorf("PhaseOffset(sandbox_ready) = %v, %v", d, ok)
	}
	if _, ok := s.Attempts[1].PhaseOffset(PhaseFunctionStart); ok {
		t.Errorf("PhaseOffset found a phase that was not recorded")
	}

	// Every line is one record ending in a newline.
	b, _ := os.ReadFile(path)
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 6 {
		t.Errorf("file has %d newlines, want 6 (one per record):\n%s", bytes.Count(b, []byte("\n")), b)
	}
}

func TestAppendTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	h1, h2 := fullHeader("cb-1"), fullHeader("cb-2")
	a1, a2, a3 := fullAttempt("cb-1", 0), fullAttempt("cb-1", 1), fullAttempt("cb-2", 2)
	writeAll(t, path, &h1, &a1, &a2)
	writeAll(t, path, &h2, &a3)

	s, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Headers) != 2 || s.Headers[0].ExperimentID != "cb-1" || s.Headers[1].ExperimentID != "cb-2" {
		t.Fatalf("headers: %+v", s.Headers)
	}
	if !reflect.DeepEqual(s.Attempts, []Attempt{a1, a2, a3}) {
		t.Errorf("attempts after append: %+v", s.Attempts)
	}
}

// writeRaw writes content verbatim and returns the path.
func writeRaw(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func line(t *testing.T, rec any) string {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestTornLastLineDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	h := fullHeader("cb-1")
	a0, a1, a2 := fullAttempt("cb-1", 0), fullAttempt("cb-1", 1), fullAttempt("cb-1", 2)
	writeAll(t, path, &h, &a0, &a1, &a2)

	// Cut the file in the middle of the last record (line 4).
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lastStart := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1
	cut := lastStart + (len(b)-lastStart)/2
	if err := os.Truncate(path, int64(cut)); err != nil {
		t.Fatal(err)
	}

	s, err := ReadFile(path)
	if err != nil {
		t.Fatalf("torn last line should be a warning, got error %v", err)
	}
	if len(s.Headers) != 1 || !reflect.DeepEqual(s.Attempts, []Attempt{a0, a1}) {
		t.Errorf("surviving records: %d headers, attempts %+v", len(s.Headers), s.Attempts)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "line 4") || !strings.Contains(s.Warnings[0], "torn") {
		t.Errorf("warnings = %q, want one naming line 4 as torn", s.Warnings)
	}
}

func TestCompleteLastLineWithoutNewline(t *testing.T) {
	// A complete record without its newline is kept, not treated as torn.
	h, a := fullHeader("cb-1"), fullAttempt("cb-1", 0)
	path := writeRaw(t, "r.jsonl", line(t, &h)+strings.TrimSuffix(line(t, &a), "\n"))
	s, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 0 || len(s.Attempts) != 1 || !reflect.DeepEqual(s.Attempts[0], a) {
		t.Errorf("got attempts %+v warnings %q", s.Attempts, s.Warnings)
	}
}

func TestReadErrors(t *testing.T) {
	h, a := fullHeader("cb-1"), fullAttempt("cb-1", 0)
	other := h
	other.Schema = "coldbench.dev/records/v2"
	cases := []struct {
		name, content string
		want          []string
	}{
		{
			name:    "corrupt middle line",
			content: line(t, &h) + line(t, &a) + `{"type":"attempt","ok":tru` + "\n" + line(t, &a),
			want:    []string{"line 3", "not a JSON record"},
		},
		{
			name:    "corrupt last line with newline",
			content: line(t, &h) + line(t, &a) + `{"type":"attem` + "\n",
			want:    []string{"line 3"},
		},
		{
			name:    "unknown record type",
			content: line(t, &h) + `{"type":"sample","x":1}` + "\n" + line(t, &a),
			want:    []string{"line 2", `unknown record type "sample"`},
		},
		{
			name:    "missing record type",
			content: line(t, &h) + `{"x":1}` + "\n",
			want:    []string{"line 2", `unknown record type ""`},
		},
		{
			name:    "other schema",
			content: line(t, &other) + line(t, &a),
			want:    []string{"line 1", "coldbench.dev/records/v2"},
		},
		{
			name:    "wrong field type",
			content: line(t, &h) + `{"type":"attempt","scale":"four"}` + "\n",
			want:    []string{"line 2", "decoding attempt"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeRaw(t, "bad.jsonl", c.content)
			s, err := ReadFile(path)
			if err == nil {
				t.Fatalf("no error; got %+v", s)
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestBlankLinesIgnored(t *testing.T) {
	h, a0, a1 := fullHeader("cb-1"), fullAttempt("cb-1", 0), fullAttempt("cb-1", 1)
	content := "\n" + line(t, &h) + "\n   \n" + line(t, &a0) + "\t\r\n" + line(t, &a1) + "\n\n"
	s, err := Read(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 0 || len(s.Headers) != 1 || !reflect.DeepEqual(s.Attempts, []Attempt{a0, a1}) {
		t.Errorf("got %d headers, attempts %+v, warnings %q", len(s.Headers), s.Attempts, s.Warnings)
	}
	// Line numbers still count blank lines.
	_, err = Read(strings.NewReader("\n\n" + line(t, &h) + "garbage\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("error %v, want one naming line 4", err)
	}
}

func TestReadEmpty(t *testing.T) {
	s, err := Read(strings.NewReader(""))
	if err != nil || len(s.Headers)+len(s.Attempts)+len(s.Warnings) != 0 {
		t.Errorf("empty input: %+v, %v", s, err)
	}
}

func TestReadFileMissing(t *testing.T) {
	if _, err := ReadFile(filepath.Join(t.TempDir(), "nope.jsonl")); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestReadFilesMerges(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "one.jsonl"), filepath.Join(dir, "two.jsonl")
	h1, h2 := fullHeader("cb-1"), fullHeader("cb-2")
	a1, a2, a3 := fullAttempt("cb-1", 0), fullAttempt("cb-2", 1), fullAttempt("cb-2", 2)
	writeAll(t, p1, &h1, &a1)
	// Second file ends in a torn record.
	if err := os.WriteFile(p2, []byte(line(t, &h2)+line(t, &a2)+line(t, &a3)+`{"type":"attempt","exp`), 0o644); err != nil {
		t.Fatal(err)
	}

	s, err := ReadFiles(p1, p2)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Headers) != 2 || s.Headers[0].ExperimentID != "cb-1" || s.Headers[1].ExperimentID != "cb-2" {
		t.Errorf("headers out of order: %+v", s.Headers)
	}
	if !reflect.DeepEqual(s.Attempts, []Attempt{a1, a2, a3}) {
		t.Errorf("attempts: %+v", s.Attempts)
	}
	if len(s.Warnings) != 1 || !strings.HasPrefix(s.Warnings[0], p2+": ") || !strings.Contains(s.Warnings[0], "line 4") {
		t.Errorf("warnings = %q, want one prefixed %q naming line 4", s.Warnings, p2+": ")
	}

	// Reverse order reverses the merge.
	s, err = ReadFiles(p2, p1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Attempts, []Attempt{a2, a3, a1}) {
		t.Errorf("attempts in reverse order: %+v", s.Attempts)
	}

	// An error in any file fails the merge and names that file.
	bad := writeRaw(t, "bad.jsonl", "nonsense\n")
	if _, err := ReadFiles(p1, bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("error %v, want one naming %s", err, bad)
	}
}

func TestConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	w, err := OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, per = 8, 25
	// Big records (well over a pipe/page buffer) make interleaving visible
	// if a write were split.
	big := strings.Repeat("x", 20000)
	// The reader refuses attempts without a header and instances outside
	// [0, N): the records are made valid (N = goroutines).
	h := fullHeader("cb-1")
	if err := w.Write(&h); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				a := fullAttempt("cb-1", i)
				a.Instance = g
				a.Scale = goroutines
				a.Iteration = i
				a.Error = big
				if err := w.Write(&a); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")[1:] // after the header
	if len(lines) != goroutines*per {
		t.Fatalf("%d lines, want %d", len(lines), goroutines*per)
	}
	seen := map[[2]int]bool{}
	for i, l := range lines {
		var a Attempt
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("line %d is not a whole record: %v", i+1, err)
		}
		if a.Error != big {
			t.Fatalf("line %d: payload damaged", i+1)
		}
		seen[[2]int{a.Instance, a.Iteration}] = true
	}
	if len(seen) != goroutines*per {
		t.Errorf("%d distinct records, want %d", len(seen), goroutines*per)
	}
	s, err := ReadFile(path)
	if err != nil || len(s.Attempts) != goroutines*per || len(s.Warnings) != 0 {
		t.Errorf("ReadFile: %d attempts, warnings %q, err %v", len(s.Attempts), s.Warnings, err)
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, err := OpenAppend(filepath.Join(t.TempDir(), "r.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	a := fullAttempt("cb-1", 0)
	if err := w.Write(&a); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := w.Write(func() {}); err == nil || !strings.Contains(err.Error(), "encoding") {
		t.Errorf("unencodable record: %v", err)
	}
}

func TestOpenAppendError(t *testing.T) {
	if _, err := OpenAppend(filepath.Join(t.TempDir(), "no", "such", "dir.jsonl")); err == nil {
		t.Error("OpenAppend in a missing directory succeeded")
	}
}
