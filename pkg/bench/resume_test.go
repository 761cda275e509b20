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
