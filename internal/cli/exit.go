package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/coldbench/coldbench/pkg/bench"
)

// Exit statuses of every verb (README.md, "Exit codes"). compare keeps its
// own documented 0/1/2 (pkg/compare), which agree with ExitOK and ExitUsage.
const (
	// ExitOK: everything asked for succeeded (run: every attempt answered).
	ExitOK = 0
	// ExitFailure: any failure not listed below (platform unreachable,
	// preflight refused, a file could not be written, a doctor check failed,
	// run's clean-up at the end failed: see closeRun).
	ExitFailure = 1
	// ExitUsage: bad input, found before anything was done: flags,
	// arguments, the experiment file, records that fail validation.
	ExitUsage = 2
	// ExitSomeFailed: run measured every cell, but some attempts failed
	// (they are records with an error class).
	ExitSomeFailed = 3
	// ExitIncomplete: run has no usable result for what was asked: every
	// attempt of this session failed, or cells were not run (the deadline).
	ExitIncomplete = 4
	// ExitInterrupted and ExitTerminated: stopped by SIGINT (Ctrl-C) or
	// SIGTERM, 128 + the signal number as a shell reports it.
	ExitInterrupted = 128 + int(syscall.SIGINT)
	ExitTerminated  = 128 + int(syscall.SIGTERM)
)

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks bad input (ExitUsage).
func usageError(err error) error { return withCode(err, ExitUsage) }

// withCode gives err the exit status code unless it already carries one
// (the innermost decision stands). nil stays nil.
func withCode(err error, code int) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: code, err: err}
}

// signalCause is the cancellation cause of the context notifySignals returns.
type signalCause struct{ sig os.Signal }

func (s signalCause) Error() string { return "interrupted by " + signalName(s.sig) }

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// notifySignals is signal.NotifyContext that remembers which signal arrived
// (as the context's cause): SIGINT and SIGTERM exit differently. Later
// signals are absorbed until stop, so a second Ctrl-C does not kill the
// clean-up of the first.
func notifySignals(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	var once sync.Once
	go func() {
		for {
			select {
			case sig := <-ch:
				cancel(signalCause{sig})
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel(context.Canceled)
		})
	}
}

// interruptCode is the exit status for a cancelled ctx: 143 for SIGTERM,
// 130 for SIGINT or a cancellation of unknown origin; 0 if ctx is live.
func interruptCode(ctx context.Context) int {
	if ctx.Err() == nil {
		return 0
	}
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) && sc.sig == syscall.SIGTERM {
		return ExitTerminated
	}
	return ExitInterrupted
}

// status maps what a verb returned to the process status. A signal wins
// over everything: a verb that finished while being interrupted did not
// finish what was asked (its output may be cut), so it never claims success.
// Every error out of a RunE carries an exitError (see wrapRunE), so an error
// without one came from cobra before the verb ran (flag syntax, arguments,
// required or exclusive flags, unknown command): a usage error.
func status(ctx context.Context, err error) int {
	if c := interruptCode(ctx); c != 0 {
		return c
	}
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitUsage
}

// runExit decides run's status from the runner's Outcome of this session.
func runExit(ctx context.Context, o bench.Outcome, out string, exp *bench.Experiment) error {
	notRun := o.SkippedCells + o.CutCells
	density := exp.Spec.Density != nil
	switch {
	case o.Interrupted && density:
		return &exitError{code: interruptCode(ctx), err: fmt.Errorf("interrupted: the records measured so far are in %s; a density run does not resume (its kept instances were removed: anything left is listed above, with the clean command): start a new one", out)}
	case notRun > 0 && density:
		return &exitError{code: ExitIncomplete, err: fmt.Errorf("deadline %v reached before every runtime's run stopped; the records so far are in %s; a density run does not resume: start a new one with a longer --deadline, or fewer runtimes per run (on Knative the deadline is at most 50m)", exp.Spec.Deadline.Duration, out)}
	case o.Interrupted:
		return &exitError{code: interruptCode(ctx), err: fmt.Errorf("interrupted: %d cells not run; the records measured so far are in %s; continue with: coldbench run --resume %s", notRun, out, out)}
	case notRun > 0:
		return &exitError{code: ExitIncomplete, err: fmt.Errorf("deadline %v reached: %d cells not run; continue with: coldbench run --resume %s", exp.Spec.Deadline.Duration, notRun, out)}
	case o.Attempts > 0 && o.Failures == o.Attempts && (exp.Spec.Search == nil || o.ResumedAnswered == 0):
		// Also for a capacity search: no N answered at all (in this
		// session and the ones it resumes) is a broken set-up (image,
		// RuntimeClass, ingress), not a capacity of 0.
		return &exitError{code: ExitIncomplete, err: fmt.Errorf("all %d attempts failed; their error classes are in the summary above and in %s", o.Attempts, out)}
	case density && o.DensityNoAnswer != "":
		return &exitError{code: ExitIncomplete, err: fmt.Errorf("no instance of %s answered in its density run: a broken set-up (image, handler), not a capacity of 0; the records are in %s", o.DensityNoAnswer, out)}
	case exp.Spec.Search != nil || density:
		return nil // a capacity search's failing probes, a density run's failures, are its findings
	case o.Failures > 0:
		return &exitError{code: ExitSomeFailed, err: fmt.Errorf("%d of %d attempts failed; they are recorded in %s", o.Failures, o.Attempts, out)}
	}
	return nil
}

// exitCodesHelp is the table of exit statuses in --help (README.md has it too).
const exitCodesHelp = `Exit status:
  0    everything asked for succeeded (run: every attempt answered)
  1    any other failure (platform unreachable, preflight refused, a write failed, a doctor check failed,
       run's clean-up left objects: they are listed, with the clean command)
  2    bad input: flags, arguments, the experiment file, records that fail validation
  3    run: every cell was measured, but some attempts failed
  4    run: every attempt failed, or cells were not run (deadline reached)
  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM
  compare: 0 no significant change reaches --threshold, 1 one does, 2 bad input`
