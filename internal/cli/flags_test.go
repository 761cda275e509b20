package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/bench"
)

// noPlatform fails the test if a verb gets as far as opening a platform:
// bad input must be refused before any network call.
func noPlatform(t *testing.T) {
	t.Helper()
	prev := openPlatform
	openPlatform = func(*bench.Experiment, *slog.Logger) (bench.Platform, error) {
		t.Error("a platform was opened: bad input must be refused before")
		return nil, os.ErrInvalid
	}
	t.Cleanup(func() { openPlatform = prev })
}

// wantUsage runs args and wants status 2 and every fragment in stderr.
func wantUsage(t *testing.T, args []string, fragments ...string) {
	t.Helper()
	code, out, errOut := cliRun(t, context.Background(), args...)
	if code != ExitUsage {
		t.Errorf("%v: exit %d, want %d\n%s%s", args, code, ExitUsage, out, errOut)
		return
	}
	for _, f := range fragments {
		if !strings.Contains(errOut, f) {
			t.Errorf("%v: stderr lacks %q:\n%s", args, f, errOut)
		}
	}
}

func TestListFlagsRefuseTypos(t *testing.T) {
	noPlatform(t)
	for _, verb := range [][]string{{"run"}, {"doctor"}} {
		wantUsage(t, append(verb, "--runtimes", "runc,"), `--runtimes "runc,": element 2 is empty`)
		wantUsage(t, append(verb, "--runtimes", ","), `--runtimes ",": element 1 is empty`)
		wantUsage(t, append(verb, "--runtimes", "runc, crun"), `element 2 (" crun") contains white space`)
		wantUsage(t, append(verb, "--runtimes", "runc,runc"), `"runc" appears twice`)
	}
	wantUsage(t, []string{"run", "--scales", "1,,2"}, `--scales "1,,2": element 2 is empty; give N values separated by commas, e.g. --scales 1,4,8`)
	wantUsage(t, []string{"run", "--scales", "1,x"}, `--scales "1,x": element 2 ("x") is not a whole number`)
	wantUsage(t, []string{"run", "--scales", "-1"}, `element 1 is N = -1`, "at least 1")
	wantUsage(t, []string{"run", "--scales", "0"}, `element 1 is N = 0`, "at least 1")
	wantUsage(t, []string{"run", "--scales", "4,4"}, `--scales "4,4": 4 appears twice`)
	wantUsage(t, []string{"run", "--scales", "1", "--scales", "1"}, `1 appears twice`)
	wantUsage(t, []string{"plot", "-o", t.TempDir(), "--scales", "1,,4", labRecords}, `--scales "1,,4": element 2 is empty`)
	wantUsage(t, []string{"plot", "-o", t.TempDir(), "--format", "svg,", labRecords}, `--format "svg,": element 2 is empty`)
	wantUsage(t, []string{"plot", "-o", t.TempDir(), "--format", "gif", labRecords}, `not an image format`)
}

// Every other flag value's syntax is checked before a platform is opened.
func TestFlagValuesCheckedBeforeNetwork(t *testing.T) {
	noPlatform(t)
	k := []string{"run", "--platform", "knative"}
	wantUsage(t, append(k, "--ingress", "127.0.0.1:99999"), "--ingress", "not a TCP port")
	wantUsage(t, append(k, "--kubeconfig", filepath.Join(t.TempDir(), "nope")), "--kubeconfig")
	wantUsage(t, []string{"doctor", "--platform", "knative", "--ingress", "http://x:80"}, "--ingress", "without a scheme")
	wantUsage(t, []string{"run", "--image", "Not A Ref"}, "--image", "not an image reference")
	wantUsage(t, []string{"run", "--timeout", "-1s"}, "spec.requestTimeout")
	wantUsage(t, []string{"run", "-o", t.TempDir()}, "--output", "is a directory")
	// Flags of the other platform are refused, not ignored.
	wantUsage(t, []string{"run", "--window", "6s"}, "--window applies only to --platform knative")
	wantUsage(t, []string{"run", "--protocol", "pool"}, "--protocol applies only to --platform knative")
	wantUsage(t, []string{"clean", "--namespace", "x"}, "--namespace applies only to --platform knative")
	wantUsage(t, append(k, "--endpoint", "unix:///x.sock"), "--endpoint applies only to --platform node")
	wantUsage(t, append(k, "--port", "9090"), "--port applies only to --platform node")
	wantUsage(t, []string{"clean", "--platform", "knative", "--endpoint", "unix:///x.sock"}, "--endpoint applies only")
	wantUsage(t, []string{"run", "--platform", "knativ", "--window", "6s"}, `unknown platform "knativ"`)
}

// Each verb's help shows only the flags it uses, and says what they do.
func TestHelpShowsEachVerbsFlags(t *testing.T) {
	help := func(args ...string) string {
		code, out, errOut := cliRun(t, context.Background(), append(args, "--help")...)
		if code != ExitOK {
			t.Fatalf("%v --help: exit %d\n%s", args, code, errOut)
		}
		return out
	}
	runOnly := []string{"--iterations", "--warmups", "--deadline", "--timeout", "--probe-interval", "--pool-size", "--protocol", "--window", "--target", "--force", "--format", "--output"}
	for _, verb := range []string{"doctor", "clean"} {
		h := help(verb)
		for _, f := range runOnly {
			if strings.Contains(h, f+" ") {
				t.Errorf("%s --help lists run's %s:\n%s", verb, f, h)
			}
		}
	}
	for _, verb := range []string{"run", "doctor"} {
		if h := help(verb); !strings.Contains(h, "node (containerd CRI on this host) or knative") {
			t.Errorf("%s --help: --platform does not list knative:\n%s", verb, h)
		}
	}
	for _, verb := range []string{"report", "plot", "compare"} {
		if h := help(verb); strings.Contains(h, "log every cell") {
			t.Errorf("%s --help: -v promises to log cells:\n%s", verb, h)
		}
	}
	if h := help(); !strings.Contains(h, "Exit status:") || !strings.Contains(h, "143") {
		t.Errorf("coldbench --help lacks the exit statuses:\n%s", h)
	}
}

func TestPlotDPIRange(t *testing.T) {
	for _, dpi := range []string{"0", "-5", "35", "100000"} {
		wantUsage(t, []string{"plot", "-o", t.TempDir(), "--dpi", dpi, labRecords}, "--dpi "+dpi, "between 36 and 600")
	}
	if code, _, errOut := cliRun(t, context.Background(), "plot", "-o", t.TempDir(), "--format", "png", "--dpi", "36", labRecords); code != ExitOK {
		t.Errorf("--dpi 36: exit %d\n%s", code, errOut)
	}
}

// report creates missing folders, names the flag in its errors, writes -
// to stdout and keeps reader warnings on stderr in every format.
func TestReportOutputs(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "new", "deeper", "a.csv")
	htmlPath := filepath.Join(dir, "other", "r.html")
	if code, _, errOut := cliRun(t, context.Background(), "report", "--attempts-csv", csvPath, "--html", htmlPath, labRecords); code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, p := range []string{csvPath, htmlPath} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	code, out, errOut := cliRun(t, context.Background(), "report", "--attempts-csv", "-", labRecords)
	if code != ExitOK || strings.Count(out, "\n") != 127 || strings.Contains(out, "MEDIAN") {
		t.Errorf("--attempts-csv -: exit %d, %d lines (want the 127 CSV lines alone on stdout)\n%s", code, strings.Count(out, "\n"), errOut)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error(`--attempts-csv - wrote a file named "-"`)
		os.Remove("-")
	}
	wantUsage(t, []string{"report", "--format", "csv", "--attempts-csv", "-", labRecords}, "--format csv: standard output carries the attempts CSV")
	if code, _, errOut := cliRun(t, context.Background(), "report", "--attempts-csv", dir, labRecords); code != ExitFailure || !strings.Contains(errOut, "coldbench: --attempts-csv: ") {
		t.Errorf("--attempts-csv DIR: exit %d, want 1 and the flag named:\n%s", code, errOut)
	}

	// A torn last line: the reader drops it with a warning, on stderr.
	b, err := os.ReadFile(labRecords)
	if err != nil {
		t.Fatal(err)
	}
	torn := filepath.Join(dir, "torn.jsonl")
	if err := os.WriteFile(torn, append(b, `{"type":"attempt","runt`...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"csv", "json", "table"} {
		code, _, errOut := cliRun(t, context.Background(), "report", "--format", format, torn)
		if code != ExitOK || !strings.Contains(errOut, "torn last record") {
			t.Errorf("--format %s: exit %d, stderr lacks the torn-line warning:\n%s", format, code, errOut)
		}
	}
}

// --version on the root command, like the version verb.
func TestVersionFlag(t *testing.T) {
	prevV, prevC := bench.Version, bench.Commit
	bench.Version, bench.Commit = "v9.8.7", "0123456789abcdef0123456789abcdef01234567"
	t.Cleanup(func() { bench.Version, bench.Commit = prevV, prevC })
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := cliRun(t, context.Background(), args...)
		if code != ExitOK || !strings.HasPrefix(out, "coldbench v9.8.7 (commit 0123456789abcdef0123456789abcdef01234567) go") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}
