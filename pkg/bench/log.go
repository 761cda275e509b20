package bench

import "log/slog"

// LoggerOrDiscard is l, or a logger that drops everything when l is nil.
// The runner and the platforms log only through the logger their caller
// gives them. Nil means "say nothing" rather than slog.Default(): falling
// back on the process-wide logger would write where the caller never said
// (through a progress bar, into a test's output) and bring back the hidden
// global that passing loggers in removes. The CLI always passes its own.
func LoggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
