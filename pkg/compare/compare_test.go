package compare

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	goldenfile "github.com/coldbench/coldbench/internal/testenv/golden"
	"github.com/coldbench/coldbench/pkg/results"
)

// Real node-backend records. sameA and sameB are one setup (runc, crun;
// N = 1, 4) run four times each, alternating A, B, A, B, … so that drift of
// the loaded host falls on both; labRecords is another run of runc and crun.
const (
	sameA      = "testdata/same-a.jsonl"
	sameB      = "testdata/same-b.jsonl"
	labRecords = "../plot/testdata/node-runc-crun.jsonl"
)

// golden checks got against testdata/<name>.golden.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name+".golden"), got)
}

// TestSameSetupNoSignificantChange: two runs of the same setup.
func TestSameSetupNoSignificantChange(t *testing.T) {
	res, err := Files(context.Background(), sameA, sameB, Options{ThresholdPct: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 4 {
		t.Fatalf("%d rows, want runc and crun at N = 1 and 4", len(res.Rows))
	}
	for _, r := range res.Rows {
		if !r.Tested || r.Significant || r.Exceeds {
			t.Errorf("%s N=%d: %+v, want tested and not significant", r.A.Runtime, r.Scale, r)
		}
		if !(r.ChangeLo <= 0 && r.ChangeHi >= 0) {
			t.Errorf("%s N=%d: CI [%v, %v] excludes 0 although p = %v", r.A.Runtime, r.Scale, r.ChangeLo, r.ChangeHi, r.Test.P)
		}
	}
	if res.Exceeded() {
		t.Error("Exceeded() with no significant change")
	}
	var buf bytes.Buffer
	if err := res.Write(&buf, FormatTable); err != nil {
		t.Fatal(err)
	}
	golden(t, "same_setup", buf.Bytes())
	if strings.Count(buf.String(), "  ~  ") != 4 {
		t.Errorf("every row should be flagged ~:\n%s", buf.String())
	}
}

// TestRuncVersusCrun: at N = 4 (32 attempts each) crun's cold start is
// clearly shorter; the change comes with an interval that excludes 0 and
// crosses a 10 % threshold.
func TestRuncVersusCrun(t *testing.T) {
	res, err := Files(context.Background(), labRecords, "", Options{Pairs: []Pair{{"runc", "crun"}}, ThresholdPct: 10, Direction: DirectionFaster})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 3 {
		t.Fatalf("%d rows, want N = 1, 2, 4", len(res.Rows))
	}
	r := res.Rows[2]
	if r.Scale != 4 || r.A.Runtime != "runc" || r.B.Runtime != "crun" {
		t.Fatalf("row = %+v", r)
	}
	if !r.Significant || !r.CIOK || !(r.ChangeHi < 0) || !(r.ChangeLo <= r.Change && r.Change <= r.ChangeHi) || r.Test.P >= 0.001 {
		t.Errorf("runc → crun N=4: change %v [%v, %v], p %v; want a significant drop with its interval", r.Change, r.ChangeLo, r.ChangeHi, r.Test.P)
	}
	if !r.Exceeds || !res.Exceeded() {
		t.Error("a significant drop of more than 10 % should exceed a 10 % 'faster' threshold")
	}
	// The estimate agrees with the medians' ratio to within the interval.
	if ratio := r.B.Median/r.A.Median - 1; ratio < r.ChangeLo || ratio > r.ChangeHi {
		t.Errorf("medians' ratio %v outside the interval [%v, %v]", ratio, r.ChangeLo, r.ChangeHi)
	}
	var buf bytes.Buffer
	if err := res.Write(&buf, FormatTable); err != nil {
		t.Fatal(err)
	}
	golden(t, "runc_vs_crun", buf.Bytes())

	// Same comparison, threshold on slowdowns only: not exceeded.
	res, err = Files(context.Background(), labRecords, "", Options{Pairs: []Pair{{"runc", "crun"}}, ThresholdPct: 10, Direction: DirectionSlower})
	if err != nil {
		t.Fatal(err)
	}
	if res.Exceeded() {
		t.Error("crun is faster: a 'slower' threshold must not be exceeded")
	}
}

func attempts(runtime string, scale int, ms ...float64) []results.Attempt {
	var out []results.Attempt
	for _, v := range ms {
		out = append(out, results.Attempt{Type: results.TypeAttempt, Platform: "node", Runtime: runtime, Scale: scale, OK: true, TTFBNS: int64(v * 1e6)})
	}
	return out
}

func TestThresholdAndDirection(t *testing.T) {
	base := []float64{100, 103, 98, 101, 99, 102, 97, 104, 100.5, 99.5}
	slower := make([]float64, len(base))
	for i, v := range base {
		slower[i] = v * 1.2
	}
	a := &results.Set{Attempts: attempts("runc", 1, base...)}
	b := &results.Set{Attempts: attempts("runc", 1, slower...)}
	for _, tc := range []struct {
		threshold float64
		direction string
		want      bool
	}{
		{0, "", false}, // no threshold: never exceeded
		{10, "", true},
		{10, DirectionSlower, true},
		{10, DirectionFaster, false},
		{25, DirectionBoth, false}, // +20 % is below 25 %
	} {
		res, err := Compare(a, b, Options{ThresholdPct: tc.threshold, Direction: tc.direction})
		if err != nil {
			t.Fatal(err)
		}
		r := res.Rows[0]
		if math.Abs(r.Change-0.2) > 1e-9 {
			t.Errorf("change = %v, want exactly +20 %% (a pure ratio shift)", r.Change)
		}
		if got := res.Exceeded(); got != tc.want {
			t.Errorf("threshold %v %q: exceeded = %v, want %v", tc.threshold, tc.direction, got, tc.want)
		}
	}
	// Not significant (same data): never exceeded, whatever the threshold.
	res, _ := Compare(a, a, Options{ThresholdPct: 0.001})
	if res.Rows[0].Significant || res.Exceeded() {
		t.Errorf("A vs A: %+v", res.Rows[0])
	}
}

func TestMissingCellsAndFailures(t *testing.T) {
	a := &results.Set{Attempts: append(attempts("runc", 1, 100, 101, 102), attempts("kata", 1, 300)...)}
	b := &results.Set{Attempts: append(attempts("runc", 1, 100, 101, 102),
		results.Attempt{Type: results.TypeAttempt, Platform: "node", Runtime: "kata", Scale: 1, ErrorClass: results.ErrTimeout},
		results.Attempt{Type: results.TypeAttempt, Platform: "node", Runtime: "gvisor", Scale: 1, OK: true, TTFBNS: 2e8},
		results.Attempt{Type: results.TypeAttempt, Platform: "node", Runtime: "runc", Scale: 1, OK: true, TTFBNS: 9e9, Warmup: true},
	)}
	res, err := Compare(a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := res.Write(&buf, FormatTable); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"no successful attempt in B", "only in B", "too few samples for the CI", "0/1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if res.Rows[0].B.Attempts != 3 {
		t.Errorf("warm-up counted: %+v", res.Rows[0].B)
	}
	buf.Reset()
	if err := res.Write(&buf, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Schema string `json:"schema"`
		Rows   []struct {
			Tested bool     `json:"tested"`
			P      *float64 `json:"p"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(buf.Bytes(), &j); err != nil || j.Schema != JSONSchema || len(j.Rows) != 3 {
		t.Fatalf("JSON: %v %+v\n%s", err, j, buf.String())
	}
	if j.Rows[1].Tested || j.Rows[1].P != nil {
		t.Errorf("untested row must carry null statistics: %+v", j.Rows[1])
	}
}

func TestOptionErrors(t *testing.T) {
	set := &results.Set{Attempts: attempts("runc", 1, 1, 2, 3)}
	for _, o := range []Options{
		{Alpha: 1.5}, {ThresholdPct: -1}, {Direction: "up"}, {Pairs: []Pair{{"runc", ""}}}, {Pairs: []Pair{{"crun", "runc"}}},
	} {
		if _, err := Compare(set, set, o); err == nil {
			t.Errorf("%+v: want an error", o)
		}
	}
	if _, err := Compare(&results.Set{}, set, Options{}); err == nil {
		t.Error("empty A: want an error")
	}
	if _, err := Files(context.Background(), sameA, "", Options{}); err == nil {
		t.Error("one file without --pair: want an error")
	}
	if err := (&Result{}).Write(&bytes.Buffer{}, "yaml"); err == nil {
		t.Error("unknown format: want an error")
	}
}

// cells is scale attempts per cell, one cell per value of ms (iterations
// 0, 1, …), each attempt a hair apart around its cell's value.
func cells(runtime string, scale int, ms ...float64) []results.Attempt {
	var out []results.Attempt
	for it, v := range ms {
		for i := range scale {
			a := attempts(runtime, scale, v+float64(i)*0.01)[0]
			a.Iteration, a.Instance = it, i
			out = append(out, a)
		}
	}
	return out
}

// At N > 1 a cell's attempts move together: two cells a side differ
// attempt by attempt (p < 0.001) but can never differ as cells (2 vs 2:
// p ≥ 1/3). The row says so; with enough cells that all moved, the cells
// confirm it.
func TestCellLevelTestAtNAboveOne(t *testing.T) {
	a := &results.Set{Attempts: cells("runc", 8, 100, 104)}
	b := &results.Set{Attempts: cells("runc", 8, 120, 125)}
	res, err := Compare(a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Rows[0]
	if !r.Significant || r.CellTest == nil || r.CellSignificant || r.CellsA != 2 || r.CellsB != 2 {
		t.Fatalf("2 vs 2 cells of 8: significant %v, cell test %+v (%d vs %d, significant %v); want attempt-level significant, cells not",
			r.Significant, r.CellTest, r.CellsA, r.CellsB, r.CellSignificant)
	}
	if note := r.note(); !strings.Contains(note, "not significant over cells (p 0.333, 2 vs 2 cells)") {
		t.Errorf("note %q does not say the cells do not confirm it", note)
	}
	a = &results.Set{Attempts: cells("runc", 8, 100, 104, 98, 102, 101, 99)}
	b = &results.Set{Attempts: cells("runc", 8, 120, 125, 118, 122, 121, 119)}
	res, _ = Compare(a, b, Options{})
	if r := res.Rows[0]; !r.CellSignificant || strings.Contains(r.note(), "over cells") {
		t.Errorf("6 vs 6 cells, all 20 %% slower: cell test %+v, note %q; want it to confirm", r.CellTest, r.note())
	}
	res, _ = Compare(&results.Set{Attempts: attempts("runc", 1, 100, 101, 102)}, &results.Set{Attempts: attempts("runc", 1, 120, 121, 122)}, Options{})
	if res.Rows[0].CellTest != nil {
		t.Error("N = 1: a cell test, where a cell is an attempt")
	}
}
