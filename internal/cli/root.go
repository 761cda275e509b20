// Package cli holds coldbench's cobra verbs: each parses flags and calls one
// library function.
package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/bench"
)

// slogLevel is the level chosen by --verbose, shared by every log handler.
var slogLevel slog.Level

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the CLI and returns the process exit status.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "coldbench:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		if ctx.Err() != nil {
			return 130 // interrupted, whatever step it cut short
		}
		return 1
	}
	return 0
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:           "coldbench",
		Short:         "Measure serverless cold-start latency and density across container runtimes",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			slogLevel = slog.LevelInfo
			if verbose {
				slogLevel = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slogLevel})))
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log every cell (debug level)")
	root.AddCommand(newRunCmd(), newReportCmd(), newImageCmd(), newCleanCmd(), newVersionCmd(), newHostCmd(), newPlotCmd(), newCompareCmd(), newDoctorCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print coldbench's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t := bench.Tool()
			fmt.Fprintf(cmd.OutOrStdout(), "coldbench %s", t.Version)
			if t.Commit != "" {
				fmt.Fprintf(cmd.OutOrStdout(), " (commit %s)", t.Commit)
			}
			fmt.Fprintf(cmd.OutOrStdout(), " %s\n", t.GoVersion)
			return nil
		},
	}
}
