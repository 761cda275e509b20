package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	goldenfile "github.com/coldbench/coldbench/internal/testenv/golden"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

func ok(platform, runtime string, scale int, ttfbNS int64) results.Attempt {
	return results.Attempt{Type: results.TypeAttempt, Platform: platform, Runtime: runtime, Scale: scale, OK: true, TTFBNS: ttfbNS}
}

func fail(platform, runtime string, scale int, class string) results.Attempt {
	return results.Attempt{Type: results.TypeAttempt, Platform: platform, Runtime: runtime, Scale: scale, ErrorClass: class}
}

func warm(a results.Attempt) results.Attempt { a.Warmup = true; return a }

// fixture covers: a CI-able sample with an unreliable p99, a small sample
// with failures of several classes (CI n/a), a group with no success at all
// (including an unclassified failure), a large sample (p99 reliable) and
// warm-ups that must not show up in any statistic.
func fixture() (*results.Set, Meta) {
	set := &results.Set{
		Headers: []results.Header{
			{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "exp-a"},
			{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "exp-a"},
			{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "exp-b"},
		},
		Warnings: []string{"runs/b.jsonl: line 42: dropped a torn last record (17 bytes, no newline)"},
	}
	add := func(a ...results.Attempt) { set.Attempts = append(set.Attempts, a...) }
	add(warm(ok("cri", "runc", 1, 900_000_000)))
	for _, v := range []int64{101_523_417, 98_250_001, 120_000_000, 97_000_003, 110_125_000, 99_500_000, 105_000_000, 250_750_250, 100_000_000, 102_000_007} {
		add(ok("cri", "runc", 1, v))
	}
	add(ok("cri", "runc", 4, 180_000_000), fail("cri", "runc", 4, results.ErrTimeout), ok("cri", "runc", 4, 175_500_000),
		fail("cri", "runc", 4, results.ErrHTTPStatus), fail("cri", "runc", 4, results.ErrTimeout), ok("cri", "runc", 4, 190_250_500))
	add(warm(fail("cri", "kata", 1, results.ErrTimeout)), fail("cri", "kata", 1, results.ErrSandbox), fail("cri", "kata", 1, ""))
	for i := range int64(120) {
		add(ok("cri", "crun", 1, 50_000_000+i*i*1_000+i%7))
	}
	return set, MetaFromSet(set, "runs/a.jsonl", "runs/b.jsonl")
}

// golden checks got against testdata/<name>.golden.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name+".golden"), got)
}

// render writes set's model in format.
func render(t *testing.T, format string, set *results.Set, meta Meta) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, format, stats.FromSet(set), meta); err != nil {
		t.Fatalf("Write(%q): %v", format, err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	set, meta := fixture()
	for _, f := range Formats() {
		t.Run(f, func(t *testing.T) { golden(t, f, render(t, f, set, meta)) })
	}
}

func TestGoldenMultiPlatform(t *testing.T) {
	set := &results.Set{Attempts: []results.Attempt{
		ok("knative", "runc", 1, 1_500_000_000), ok("cri", "runc", 1, 80_000_000),
		ok("cri", "runc", 1, 82_000_000), fail("knative", "runc", 1, results.ErrNotScheduled),
	}}
	golden(t, "table_platforms", render(t, FormatTable, set, Meta{}))
	golden(t, "markdown_platforms", render(t, FormatMarkdown, set, Meta{}))
}

func TestGoldenEmpty(t *testing.T) {
	golden(t, "table_empty", render(t, FormatTable, nil, Meta{}))
	golden(t, "json_empty", render(t, FormatJSON, nil, Meta{}))
}

func TestLatencyDefinitionInTextFormats(t *testing.T) {
	set, meta := fixture()
	for _, f := range []string{FormatTable, FormatMarkdown} {
		if out := render(t, f, set, meta); !bytes.Contains(out, []byte("request start → first byte of the first 2xx reply (ms); warm-ups excluded")) {
			t.Errorf("%s output does not state what latency means:\n%s", f, out)
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	err := Write(&bytes.Buffer{}, "yaml", nil, Meta{})
	if err == nil {
		t.Fatal("Write(yaml) succeeded")
	}
	for _, f := range Formats() {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name valid format %q", err, f)
		}
	}
	// Case and surrounding space are forgiven; "" is the default (table).
	set, meta := fixture()
	if a, b := render(t, " JSON ", set, meta), render(t, "json", set, meta); !bytes.Equal(a, b) {
		t.Error(`" JSON " renders differently from "json"`)
	}
	if a, b := render(t, "", set, meta), render(t, "table", set, meta); !bytes.Equal(a, b) {
		t.Error(`"" renders differently from "table"`)
	}
}

func TestJSONIsFaithful(t *testing.T) {
	set, meta := fixture()
	rows := stats.Group(set)
	var rep struct {
		Schema        string   `json:"schema"`
		Unit          string   `json:"unit"`
		ExperimentIDs []string `json:"experiment_ids"`
		Warnings      []string `json:"warnings"`
		Rows          []struct {
			Runtime         string         `json:"runtime"`
			Scale           int            `json:"scale"`
			Attempts        int            `json:"attempts"`
			Successes       int            `json:"successes"`
			Failures        int            `json:"failures"`
			FailuresByClass map[string]int `json:"failures_by_class"`
			TTFB            struct {
				N          int      `json:"n"`
				Mean       *float64 `json:"mean"`
				P99        *float64 `json:"p99"`
				MedianCILo *float64 `json:"median_ci_lo"`
			} `json:"ttfb_ns"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(render(t, FormatJSON, set, meta), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Schema != JSONSchema || rep.Unit != "ns" || !slices.Equal(rep.ExperimentIDs, []string{"exp-a", "exp-b"}) || len(rep.Warnings) != 1 {
		t.Errorf("header fields wrong: %+v", rep)
	}
	if len(rep.Rows) != len(rows) {
		t.Fatalf("%d JSON rows, want %d", len(rep.Rows), len(rows))
	}
	for i, r := range rows {
		j := rep.Rows[i]
		if j.Runtime != r.Runtime || j.Scale != r.Scale || j.Attempts != r.Attempts || j.Successes != r.Successes || j.Failures != r.Failures {
			t.Errorf("row %d: %+v vs %+v", i, j, r)
		}
		if r.TTFB.N == 0 {
			if j.TTFB.Mean != nil || j.TTFB.P99 != nil {
				t.Errorf("row %d: n=0 but latency values present", i)
			}
			continue
		}
		// Full precision: exact round trip of the float64 values.
		if j.TTFB.Mean == nil || *j.TTFB.Mean != r.TTFB.Mean || *j.TTFB.P99 != r.TTFB.P99 {
			t.Errorf("row %d: mean/p99 not exact: %v/%v vs %v/%v", i, j.TTFB.Mean, j.TTFB.P99, r.TTFB.Mean, r.TTFB.P99)
		}
		if (j.TTFB.MedianCILo != nil) != r.TTFB.CIOK {
			t.Errorf("row %d: median_ci_lo presence %v, CIOK %v", i, j.TTFB.MedianCILo != nil, r.TTFB.CIOK)
		}
	}
}

func TestCSVShape(t *testing.T) {
	set, meta := fixture()
	rows := stats.Group(set)
	recs, err := csv.NewReader(bytes.NewReader(render(t, FormatCSV, set, meta))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows)+1 {
		t.Fatalf("%d CSV records, want header + %d", len(recs), len(rows))
	}
	if !slices.Equal(recs[0], csvHeader) {
		t.Errorf("header = %v", recs[0])
	}
}

func TestMetaFromSet(t *testing.T) {
	set, meta := fixture()
	if !slices.Equal(meta.ExperimentIDs, []string{"exp-a", "exp-b"}) {
		t.Errorf("ExperimentIDs = %v", meta.ExperimentIDs)
	}
	set.Warnings[0] = "changed"
	if meta.Warnings[0] == "changed" {
		t.Error("Meta shares the Set's warning slice")
	}
	if m := MetaFromSet(nil, "x"); !slices.Equal(m.Files, []string{"x"}) {
		t.Errorf("MetaFromSet(nil) = %+v", m)
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorsPropagate(t *testing.T) {
	set, meta := fixture()
	for _, f := range Formats() {
		if err := Write(brokenWriter{}, f, stats.FromSet(set), meta); err == nil {
			t.Errorf("Write(%s) to a failing writer returned nil", f)
		}
	}
}
