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
	if err := exp.Validate(false); err != nil {
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
	res, err := LoadResume(path)
	if err != nil {
		t.Fatalf("resume of an older fresh file with timeInterval: %v", err)
	}
	if k := res.Exp.Spec.Knative; k.Protocol != ProtocolFresh || k.TimeInterval.Duration != 0 {
		t.Errorf("resumed knative spec %+v", k)
	}
}
