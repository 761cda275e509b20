package cli

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/internal/testenv/globallog"
	"github.com/coldbench/coldbench/pkg/bench"
)

// While the bar runs, log lines go through it (mpb prints them above the
// bar); before and after, to stderr. The logger itself never changes.
func TestLogLinesGoThroughTheBar(t *testing.T) {
	lg := newLogs()
	var stderr, term bytes.Buffer
	lg.configure(&stderr, false)
	lg.log.Info("before")
	pr := newBar(3, lg, &term)
	lg.log.Info("during")
	lg.log.Debug("hidden") // Info without -v
	pr.close()
	lg.log.Info("after")
	for _, c := range []struct {
		out      *bytes.Buffer
		has, not []string
	}{
		{&stderr, []string{"msg=before", "msg=after"}, []string{"during", "hidden"}},
		{&term, []string{"msg=during", "attempts"}, []string{"before", "after", "hidden"}},
	} {
		for _, s := range c.has {
			if !strings.Contains(c.out.String(), s) {
				t.Errorf("lacks %q:\n%s", s, c.out)
			}
		}
		for _, s := range c.not {
			if strings.Contains(c.out.String(), s) {
				t.Errorf("has %q:\n%s", s, c.out)
			}
		}
	}
}

// run builds one logger, at the level -v chooses, and passes it to the
// platform and the runner; it neither logs through slog.Default nor
// replaces it.
func TestRunPassesOneLoggerDown(t *testing.T) {
	def, global := globallog.Capture(t)
	prev := openPlatform
	t.Cleanup(func() { openPlatform = prev })
	for _, verbose := range []bool{false, true} {
		var given *slog.Logger
		openPlatform = func(_ *bench.Experiment, log *slog.Logger) (bench.Platform, error) {
			given = log
			return &scriptedPlatform{hook: func(_ context.Context, i int) {
				if i == 0 {
					given.Info("from the platform")
				}
			}}, nil
		}
		args := runArgs(t)
		if verbose {
			args = append(args, "-v")
		}
		code, _, errOut := cliRun(t, context.Background(), args...)
		if code != ExitOK || given == nil {
			t.Fatalf("-v %v: exit %d, logger %v\n%s", verbose, code, given, errOut)
		}
		for line, want := range map[string]bool{`msg="from the platform"`: true, "msg=running": true, `msg="cell done"`: verbose} {
			if strings.Contains(errOut, line) != want {
				t.Errorf("-v %v: %s in stderr: %v, want %v\n%s", verbose, line, !want, want, errOut)
			}
		}
	}
	if slog.Default() != def {
		t.Error("the CLI replaced slog.Default")
	}
	if global.Len() > 0 {
		t.Errorf("logged through slog.Default:\n%s", global)
	}
}
