package bench_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/report"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// The toy platform is the plug-in seam's proof: a platform of this file
// only (an in-memory "cold start" that answers after spec.toy.delay × the
// instance's rank) runs an experiment through the real registry, runner,
// records and report.

func init() {
	bench.Register(bench.Backend{
		Name:       "toy",
		Summary:    "in memory",
		NewSection: func() bench.Section { return &toySpec{} },
		Open: func(exp *bench.Experiment, _ *slog.Logger) (bench.Platform, error) {
			return toyPlatform{exp.Spec.Section("toy").(*toySpec).Delay.Duration}, nil
		},
	})
}

type toySpec struct {
	Delay bench.Duration `json:"delay,omitempty"`
}

func (s *toySpec) Complete() {
	if s.Delay.Duration == 0 {
		s.Delay.Duration = time.Millisecond
	}
}

func (s *toySpec) Validate(errs *bench.Problems) {
	if s.Delay.Duration < 0 {
		errs.Add("spec.toy.delay: %v; must not be negative", s.Delay.Duration)
	}
}

// toyPlatform is also its session: it keeps nothing between cells.
type toyPlatform struct{ delay time.Duration }

func (toyPlatform) Name() string { return "toy" }
func (toyPlatform) Checks(context.Context, *bench.Experiment) []bench.Check {
	return []bench.Check{{Name: "toy", OK: true, Detail: "in memory"}}
}
func (p toyPlatform) Open(context.Context, *bench.Experiment, string, map[bench.CellKey]bool) (bench.Session, error) {
	return p, nil
}
func (toyPlatform) Clean(context.Context, string) (int, error) { return 0, nil }
func (toyPlatform) Close() error                               { return nil }
func (toyPlatform) Describe(_ context.Context, tb *results.Testbed) {
	tb.PlatformVersion = map[string]string{"toy": "1"}
}

func (p toyPlatform) ColdStart(_ context.Context, cell bench.Cell) []results.Attempt {
	out := make([]results.Attempt, cell.Scale)
	for i := range out {
		ns := int64(p.delay) * int64(i+1)
		out[i] = results.Attempt{Instance: i, Start: time.Now(), TTFBNS: ns, TotalNS: ns, OK: true, HTTPStatus: 200, Probes: 1}
	}
	return out
}

func TestToyPlatformEndToEnd(t *testing.T) {
	ctx := context.Background()
	exp, err := bench.Decode([]byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n" +
		"  platform: toy\n  runtimes: [{name: a, handler: a}, {name: b, handler: b}]\n" +
		"  scales: [1, 3]\n  iterations: 2\n  toy: {delay: 2ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	plat, err := bench.LookupBackend(exp.Spec.Platform).Open(exp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.Failed(plat.Checks(ctx, exp)); err != nil {
		t.Fatal(err)
	}
	r := &bench.Runner{Exp: exp, ID: bench.NewExperimentID(time.Now()), Platform: plat}
	h, err := r.Header(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "toy.jsonl")
	w, err := results.OpenWithHeader(path, h)
	if err != nil {
		t.Fatal(err)
	}
	r.Out = w
	out, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.Attempts != exp.TotalAttempts() || out.Failures != 0 {
		t.Fatalf("outcome %+v, want %d attempts, none failed", out, exp.TotalAttempts())
	}

	// The header keeps the toy's section as spec.toy, and it resumes.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"toy":{"delay":"2ms"}`)) {
		t.Errorf("header lacks spec.toy:\n%s", raw)
	}
	if _, err := bench.LoadResume(path, nil); err != nil {
		t.Errorf("resuming the toy's file: %v", err)
	}

	m, err := stats.NewModel().Load(ctx, results.ReadOptions{}, path)
	if err != nil {
		t.Fatal(err)
	}
	rows := m.Rows()
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 2 runtimes × 2 scales", len(rows))
	}
	for _, row := range rows {
		if row.Platform != "toy" || row.Successes != row.Scale*2 {
			t.Errorf("row %+v: want platform toy, %d successes", row, row.Scale*2)
		}
	}
	var table bytes.Buffer
	if err := report.Write(&table, report.FormatTable, m, report.MetaFromModel(m, path)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "toy") {
		t.Errorf("report does not name the toy platform:\n%s", table.String())
	}
	t.Logf("report:\n%s", table.String())
}
