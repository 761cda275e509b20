package cli

import (
	"io"
	"log/slog"
	"os"
	"sync"
)

// logs is one invocation's logging: one logger, built with the command tree,
// that every verb passes down (runner, platform). Its level and destination
// are only known once the flags are parsed, so both are variables of this
// invocation rather than a new slog.Default: nothing global changes, and
// invocations in one process (tests) do not share them.
type logs struct {
	log   *slog.Logger
	level slog.LevelVar // Info, or Debug with -v
	out   logOutput
}

func newLogs() *logs {
	l := &logs{out: logOutput{w: os.Stderr}}
	l.log = slog.New(slog.NewTextHandler(&l.out, &slog.HandlerOptions{Level: &l.level}))
	return l
}

// configure applies -v and the command's stderr, before any verb runs.
func (l *logs) configure(stderr io.Writer, verbose bool) {
	l.level.Set(slog.LevelInfo)
	if verbose {
		l.level.Set(slog.LevelDebug)
	}
	l.out.swap(stderr, nil)
}

// logOutput is where the log lines go: stderr, or the progress bar while it
// runs (mpb prints what is written to it above the bar, so lines do not tear
// it). Redirecting the writer reaches every holder of the logger, also those
// built before the bar started.
type logOutput struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *logOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(b)
}

// swap makes w the destination and returns the previous one. before, if not
// nil, runs first with writes held back: the bar's shutdown (mpb refuses
// writes once it is done, so a line logged meanwhile waits and goes to w).
func (o *logOutput) swap(w io.Writer, before func()) io.Writer {
	o.mu.Lock()
	defer o.mu.Unlock()
	if before != nil {
		before()
	}
	prev := o.w
	o.w = w
	return prev
}
