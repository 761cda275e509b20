package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/compare"
)

// Records of real node-backend runs kept with the plot and compare tests.
const (
	labRecords = "../../pkg/plot/testdata/node-runc-crun.jsonl"
	sameA      = "../../pkg/compare/testdata/same-a.jsonl"
	sameB      = "../../pkg/compare/testdata/same-b.jsonl"
)

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// compare's exit status is documented: 0 no threshold crossed, 1 a
// significant change reaches --threshold, 2 errors (flags, files).
func TestCompareExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"compare", sameA, sameB}, 0, "no significant change"},
		{[]string{"compare", "--threshold", "5", sameA, sameB}, 0, "no significant change reaches the 5% threshold"},
		{[]string{"compare", "--pair", "runc=crun", labRecords}, 0, "runc → crun"},
		{[]string{"compare", "--pair", "runc=crun", "--threshold", "10", labRecords}, compare.ExitThresholdExceeded, "EXCEEDS THRESHOLD"},
		{[]string{"compare", "--pair", "runc=crun", "--threshold", "10", "--direction", "slower", labRecords}, 0, ""},
		{[]string{"compare", "--format", "json", sameA, sameB}, 0, `"schema": "coldbench.dev/compare/v1"`},
		{[]string{"compare", sameA}, compare.ExitError, ""},                            // one file without --pair
		{[]string{"compare", sameA, sameB, "extra.jsonl"}, compare.ExitError, ""},      // three files
		{[]string{"compare", "--threshold", "x", sameA, sameB}, compare.ExitError, ""}, // bad flag value
		{[]string{"compare", "--pair", "runc", sameA, sameB}, compare.ExitError, ""},
		{[]string{"compare", "missing.jsonl", sameB}, compare.ExitError, ""},
	} {
		out, err := execute(t, tc.args...)
		if got := exitCode(err); got != tc.code {
			t.Errorf("%v: exit %d (%v), want %d\n%s", tc.args, got, err, tc.code, out)
		}
		if tc.out != "" && !strings.Contains(out, tc.out) {
			t.Errorf("%v: output lacks %q:\n%s", tc.args, tc.out, out)
		}
	}
}

func TestPlotVerb(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "figs")
	out, err := execute(t, "plot", "-o", dir, "--scales", "4", "--format", "svg", labRecords)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, name := range []string{"latency-vs-n", "responded", "latency-n4", "p99-n4", "cdf-n4", "phases-n4"} {
		if _, err := os.Stat(filepath.Join(dir, name+".svg")); err != nil {
			t.Error(err)
		}
		if !strings.Contains(out, name+".svg") {
			t.Errorf("output does not list %s.svg:\n%s", name, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "latency-n1.svg")); err == nil {
		t.Error("latency-n1.svg written although --scales 4")
	}
	if _, err := execute(t, "plot", "-o", dir, "--scales", "3", labRecords); err == nil || !strings.Contains(err.Error(), "N = 1, 2, 4") {
		t.Errorf("N = 3 is not in the records: want an error naming the N there are, got %v", err)
	}
	if _, err := execute(t, "plot", labRecords); err == nil {
		t.Error("plot without -o: want an error")
	}
}

func TestReportHTMLAndAttemptsCSV(t *testing.T) {
	dir := t.TempDir()
	htmlPath, csvPath := filepath.Join(dir, "r.html"), filepath.Join(dir, "a.csv")
	out, err := execute(t, "report", "--html", htmlPath, "--attempts-csv", csvPath, labRecords)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "MEDIAN-95%CI") {
		t.Errorf("the table is still printed:\n%s", out)
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil || !strings.Contains(string(page), `id="fig-latency-vs-n"`) {
		t.Errorf("HTML report: %v", err)
	}
	rows, err := os.ReadFile(csvPath)
	if err != nil || strings.Count(string(rows), "\n") != 127 { // header + 126 attempts
		t.Errorf("attempts CSV: %v, %d lines", err, strings.Count(string(rows), "\n"))
	}
}
