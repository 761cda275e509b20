package stats

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

func writeRecords(t *testing.T, recs ...any) string {
	t.Helper()
	var b []byte
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, line...), '\n')
	}
	path := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Attempts pasted twice: refused, or with --lenient counted once and the
// skip reported as a warning that reaches the report's meta.
func TestLoadDuplicatesStrictAndLenient(t *testing.T) {
	h := results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "e"}
	a0 := att("node", "runc", 2, false, true, 10, "")
	a0.ExperimentID = "e"
	a1 := a0
	a1.Instance = 1
	a1.OK, a1.TTFBNS, a1.ErrorClass, a1.Error = false, 0, results.ErrTimeout, strings.Repeat("é", 500)
	path := writeRecords(t, &h, &a0, &a1, &a0, &a1)
	if _, err := Load(context.Background(), results.ReadOptions{}, path); err == nil || !strings.Contains(err.Error(), "line 4: attempt duplicates line 2") {
		t.Fatalf("strict: err = %v", err)
	}
	m, err := Load(context.Background(), results.ReadOptions{Lenient: true}, path)
	if err != nil {
		t.Fatal(err)
	}
	rows := m.Rows()
	if len(rows) != 1 || rows[0].Attempts != 2 || rows[0].Successes != 1 || rows[0].FailuresByClass[results.ErrTimeout] != 1 {
		t.Errorf("rows %+v, want 2 attempts counted once each", rows)
	}
	if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "skipped 2 inconsistent record(s)") {
		t.Errorf("warnings %q", m.Warnings)
	}
	f := m.Failures()
	if len(f) != 1 || f[0].Count != 1 || len([]rune(f[0].Example)) != maxExampleRunes+1 {
		t.Errorf("failures %+v, want one example cut at %d runes", f, maxExampleRunes)
	}
}
