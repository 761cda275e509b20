// Package globallog lets a test see what reaches the process-wide logger.
// coldbench logs only through the loggers it is given (issue 13): a test
// makes slog.Default() capture, runs the code, and wants the capture empty.
package globallog

import (
	"bytes"
	"log"
	"log/slog"
	"testing"
)

// Capture makes slog.Default() a logger into the returned buffer, at every
// level, until the test ends; it returns that logger too (to check that
// nothing replaced it). The default is process-wide: tests using Capture
// must not run in parallel with others that log.
func Capture(t testing.TB) (*slog.Logger, *bytes.Buffer) {
	prev, prevOut, prevFlags := slog.Default(), log.Writer(), log.Flags()
	buf := &bytes.Buffer{}
	l := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	slog.SetDefault(l)
	t.Cleanup(func() {
		// SetDefault also redirected the log package; give it back too.
		slog.SetDefault(prev)
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
	})
	return l, buf
}
