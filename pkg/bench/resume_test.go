package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// Files recorded before timeInterval was refused outside the classic
// protocol (the fresh protocol ignored it) still resume.
func TestLoadResumeIgnoresAnOldFreshTimeInterval(t *testing.T) {
	exp := Default()
	exp.Spec.Platform = PlatformKnative
	exp.Spec.Knative = &KnativeSpec{Protocol: ProtocolFresh}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	exp.Spec.Knative.TimeInterval = Duration{30 * time.Second} // as older versions accepted it
	h := results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: NewExperimentID(time.Now()), Created: time.Now(), Experiment: exp}
	line, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.jsonl")
	if err := os.WriteFile(path, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := LoadResume(path, nil)
	if err != nil {
		t.Fatalf("resume of an older fresh file with timeInterval: %v", err)
	}
	if k := res.Exp.Spec.Knative; k.Protocol != ProtocolFresh || k.TimeInterval.Duration != 0 {
		t.Errorf("resumed knative spec %+v", k)
	}
}

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

// A resume on another machine, where the recorded kubeconfig does not
// exist, is not refused when the resume gives one that does: what may
// change is applied before the recorded experiment is validated.
func TestLoadResumeAdjustsBeforeValidating(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exp := Default()
	exp.Spec.Platform = PlatformKnative
	exp.Spec.Knative = &KnativeSpec{Kubeconfig: kc}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	exp.Spec.Knative.Kubeconfig = filepath.Join(dir, "gone") // as recorded elsewhere
	h := results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: NewExperimentID(time.Now()), Created: time.Now(), Experiment: exp}
	line, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "r.jsonl")
	if err := os.WriteFile(path, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadResume(path, nil); err == nil {
		t.Fatal("a recorded kubeconfig that does not exist was accepted without a replacement")
	}
	res, err := LoadResume(path, func(e *Experiment) error { e.Spec.Knative.Kubeconfig = kc; return nil })
	if err != nil {
		t.Fatalf("resume with a kubeconfig given: %v", err)
	}
	if res.Exp.Spec.Knative.Kubeconfig != kc {
		t.Errorf("kubeconfig %q, want %q", res.Exp.Spec.Knative.Kubeconfig, kc)
	}
}
