package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// A file of two sessions (each with its header) resumes as session 2 with
// both sessions' cells done; a cell recorded by both sessions (a file that
// was edited or concatenated) is refused by the validating reader.
func TestLoadResumeTwoSessionsAndDuplicateCell(t *testing.T) {
	exp := Default()
	id := NewExperimentID(time.Now())
	rt := exp.Spec.Runtimes[0].Name
	var lines []byte
	add := func(rec any) {
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	cell := func(iteration int) {
		add(results.Attempt{Type: results.TypeAttempt, ExperimentID: id, Platform: exp.Spec.Platform, Runtime: rt,
			Scale: 1, Iteration: iteration, Warmup: iteration < 0, TTFBNS: 5, OK: true})
	}
	for session := range 2 {
		add(results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: id, Session: session, Created: time.Now(), Experiment: exp})
		cell(session - 1) // the warm-up, then iteration 0
	}
	path := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(path, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := LoadResume(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Session != 2 || !res.Done[CellKey{rt, 1, -1}] || !res.Done[CellKey{rt, 1, 0}] || len(res.Done) != 2 {
		t.Errorf("session %d, done %v", res.Session, res.Done)
	}
	cell(0) // iteration 0 again
	if err := os.WriteFile(path, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadResume(path, nil); err == nil {
		t.Error("a cell recorded twice was accepted")
	}
}

// A file whose header predates footprints resumes without them (the rest
// of the run measures as its first part did); one that has them keeps them.
func TestLoadResumeKeepsTheFootprintSetting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    *FootprintSpec
		wantOff bool
	}{
		{"header without footprint", nil, true},
		{"header with footprint", &FootprintSpec{Settle: Duration{3 * time.Second}}, false},
	} {
		exp := Default()
		exp.Spec.Footprint = tc.spec
		b, err := json.Marshal(results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion,
			ExperimentID: NewExperimentID(time.Now()), Created: time.Now(), Experiment: exp})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "r.jsonl")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := LoadResume(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f := res.Exp.Spec.Footprint; f == nil || f.Off != tc.wantOff || (!f.Off && f.Settle.Duration != 3*time.Second) {
			t.Errorf("%s: footprint %+v, want off %v", tc.name, f, tc.wantOff)
		}
	}
}
