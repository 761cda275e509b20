package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// scriptedPlatform is an in-memory bench.Platform for driving `run` through
// the CLI without containerd: fail says which attempts fail, hook runs at
// the start of ColdStart call i.
type scriptedPlatform struct {
	mu        sync.Mutex
	calls     int
	fail      func(i, inst int) bool
	hook      func(ctx context.Context, i int)
	preflight error
	warnings  []bench.Check // checks that hold with a warning
	open      error         // Open's error: the run's set-up failed
}

func (p *scriptedPlatform) Name() string                               { return "scripted" }
func (p *scriptedPlatform) Describe(context.Context, *results.Testbed) {}
func (p *scriptedPlatform) Clean(context.Context, string) (int, error) { return 0, nil }
func (p *scriptedPlatform) Close() error                               { return nil }

// Checks fails with the scripted preflight error, if any, beside the
// scripted warnings.
func (p *scriptedPlatform) Checks(context.Context, *bench.Experiment) []bench.Check {
	if p.preflight == nil {
		return p.warnings
	}
	return append([]bench.Check{{Name: "scripted", Detail: p.preflight.Error(), Fix: "none"}}, p.warnings...)
}

// Open returns the platform itself (it is its own session), or the
// scripted set-up error.
func (p *scriptedPlatform) Open(context.Context, *bench.Experiment, string, map[bench.CellKey]bool) (bench.Session, error) {
	if p.open != nil {
		return nil, p.open
	}
	return p, nil
}

func (p *scriptedPlatform) ColdStart(ctx context.Context, cell bench.Cell) []results.Attempt {
	p.mu.Lock()
	i := p.calls
	p.calls++
	p.mu.Unlock()
	if p.hook != nil {
		p.hook(ctx, i)
	}
	out := make([]results.Attempt, cell.Scale)
	for inst := range out {
		a := results.Attempt{Instance: inst, Start: time.Now(), TTFBNS: int64(1e6 + i*1000 + inst), TotalNS: int64(2e6 + i), Probes: 1}
		switch {
		case ctx.Err() != nil:
			a.ErrorClass, a.Error = results.ErrCanceled, ctx.Err().Error()
		case p.fail != nil && p.fail(i, inst):
			a.ErrorClass, a.Error = results.ErrTimeout, "scripted failure"
		default:
			a.OK, a.HTTPStatus = true, 200
		}
		out[inst] = a
	}
	return out
}

// usePlatform makes `run` use p for the rest of the test.
func usePlatform(t *testing.T, p bench.Platform, err error) {
	t.Helper()
	prev := openPlatform
	openPlatform = func(*bench.Experiment, *slog.Logger) (bench.Platform, error) { return p, err }
	t.Cleanup(func() { openPlatform = prev })
}

// cliRun runs the CLI the way Main does, with ctx, and returns the exit
// status, stdout and stderr.
func cliRun(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := mainContext(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// runArgs is a small node run (2 runtimes × N=1,2 × 2 iterations, no
// warm-up: 8 cells, 12 attempts) writing into a temporary directory.
func runArgs(t *testing.T, extra ...string) []string {
	return append([]string{"run", "--runtimes", "runc,crun", "--scales", "1,2", "--iterations", "2", "--warmups", "0",
		"-o", filepath.Join(t.TempDir(), "r.jsonl")}, extra...)
}

// Each of run's statuses comes from the runner's Outcome.
func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *scriptedPlatform
		err  error
		args []string
		code int
		msg  string
	}{
		{"all ok", &scriptedPlatform{}, nil, nil, ExitOK, ""},
		{"some failed", &scriptedPlatform{fail: func(i, inst int) bool { return i == 3 }}, nil, nil, ExitSomeFailed, "1 of 12 attempts failed"},
		{"all failed", &scriptedPlatform{fail: func(int, int) bool { return true }}, nil, nil, ExitIncomplete, "all 12 attempts failed"},
		{"deadline", &scriptedPlatform{hook: func(ctx context.Context, i int) {
			if i == 1 {
				<-ctx.Done() // the deadline (300ms) ends the second cell
			}
		}}, nil, []string{"--deadline", "300ms"}, ExitIncomplete, "cells not run"},
		{"platform unreachable", nil, errors.New("dial: no such socket"), nil, ExitFailure, "no such socket"},
		{"preflight refused", &scriptedPlatform{preflight: errors.New("handler crun missing")}, nil, nil, ExitFailure, "preflight failed"},
		{"set-up failed", &scriptedPlatform{open: errors.New("creating namespace: forbidden")}, nil, nil, ExitFailure, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p bench.Platform
			if tc.p != nil {
				p = tc.p
			}
			usePlatform(t, p, tc.err)
			args := runArgs(t, tc.args...)
			code, out, errOut := cliRun(t, context.Background(), args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if !strings.Contains(errOut, tc.msg) {
				t.Errorf("stderr lacks %q:\n%s", tc.msg, errOut)
			}
			// Refused before the run: no records file, not even a header.
			if _, err := os.Stat(args[slices.Index(args, "-o")+1]); tc.code == ExitFailure && err == nil {
				t.Errorf("exit %d, yet the records file was created", code)
			}
		})
	}
}

// A signal during a run: 130 for SIGINT, 143 for SIGTERM, the records so far
// kept and the way to resume printed.
func TestRunInterruptedBySignal(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, ExitInterrupted}, {syscall.SIGTERM, ExitTerminated}} {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		usePlatform(t, &scriptedPlatform{hook: func(_ context.Context, i int) {
			if i == 2 {
				cancel(signalCause{tc.sig})
			}
		}}, nil)
		code, _, errOut := cliRun(t, ctx, runArgs(t)...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.sig, code, tc.code, errOut)
		}
		if !strings.Contains(errOut, "--resume") {
			t.Errorf("%v: stderr does not say how to resume:\n%s", tc.sig, errOut)
		}
	}
}

// A verb that finished while a signal arrived does not claim success.
func TestSignalAfterWorkIsNotSuccess(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(signalCause{syscall.SIGTERM})
	for _, args := range [][]string{
		{"version"},
		{"report", labRecords},
		{"compare", sameA, sameB},
		{"plot", "-o", t.TempDir(), "--format", "svg", labRecords},
	} {
		code, _, errOut := cliRun(t, ctx, args...)
		if code != ExitTerminated || !strings.Contains(errOut, "interrupted by SIGTERM") {
			t.Errorf("%v with SIGTERM received: exit %d, want %d and the signal named\n%s", args, code, ExitTerminated, errOut)
		}
	}
	ctx, cancel = context.WithCancelCause(context.Background())
	cancel(signalCause{syscall.SIGINT})
	if code, _, _ := cliRun(t, ctx, "version"); code != ExitInterrupted {
		t.Errorf("version with SIGINT received: exit %d, want %d", code, ExitInterrupted)
	}
}

// notifySignals remembers which signal arrived (signal.NotifyContext does not).
func TestNotifySignalsRecordsTheSignal(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, ExitTerminated}, {syscall.SIGINT, ExitInterrupted}} {
		ctx, stop := notifySignals(context.Background(), os.Interrupt, syscall.SIGTERM)
		if err := syscall.Kill(os.Getpid(), tc.sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%v: context not cancelled", tc.sig)
		}
		if got := interruptCode(ctx); got != tc.code {
			t.Errorf("%v: status %d, want %d (cause %v)", tc.sig, got, tc.code, context.Cause(ctx))
		}
		stop()
	}
}

// Bad input is status 2 for every verb, cobra's own flag errors included.
func TestUsageErrorsExit2(t *testing.T) {
	usePlatform(t, &scriptedPlatform{}, nil)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"type\":\"nope\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := filepath.Join(t.TempDir(), "e.yaml")
	if err := os.WriteFile(yaml, []byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n  scales: [0]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"frobnicate"},
		{"run", "--iterations", "x"},
		{"run", "--scales", "0"},
		{"run", "extra-arg"},
		{"run", "-f", yaml},
		{"run", "--iterations", "0"},
		{"run", "--resume", bad},
		{"doctor", "--iterations", "3"},
		{"clean", "--bogus"},
		{"report"},
		{"report", bad},
		{"report", "--format", "xml", labRecords},
		{"plot", labRecords},
		{"plot", "-o", t.TempDir(), bad},
		{"compare", sameA},
		{"image", "build"},
		{"image", "frobnicate"},
		{"host", "tune", "extra"},
		{"version", "extra"},
	} {
		if code, out, errOut := cliRun(t, context.Background(), args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, ExitUsage, out, errOut)
		}
	}
}

// A check that holds with a warning refuses nothing: doctor marks it and
// says the fix, run logs it and runs.
func TestWarningChecksRefuseNothing(t *testing.T) {
	warn := bench.Check{Name: "node agent on n1", OK: true, Warn: true, Detail: "no node agent runs on n1: runtime phases will be missing",
		Fix: "kubectl apply -f deploy/rbac.yaml -f deploy/agent.yaml"}
	usePlatform(t, &scriptedPlatform{warnings: []bench.Check{warn}}, nil)
	code, out, errOut := cliRun(t, context.Background(), "doctor")
	if code != ExitOK || !strings.Contains(out, "warn  node agent on n1  no node agent runs on n1") || !strings.Contains(out, "fix: kubectl apply") {
		t.Errorf("doctor: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cliRun(t, context.Background(), runArgs(t)...)
	if code != ExitOK || !strings.Contains(errOut, "preflight: node agent on n1: no node agent runs on n1") {
		t.Errorf("run: exit %d\n%s%s", code, out, errOut)
	}
}
