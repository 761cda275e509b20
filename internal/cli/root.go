// Package cli holds coldbench's cobra verbs: each parses flags and calls one
// library function.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/bench"
)

// Main runs the CLI and returns the process exit status (see exit.go).
func Main(args []string) int {
	ctx, stop := notifySignals(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return mainContext(ctx, args, os.Stdout, os.Stderr)
}

// mainContext is Main with its context and streams given (tests).
func mainContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	code := status(ctx, err)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "coldbench:", err)
	}
	if interruptCode(ctx) != 0 && (err == nil || !strings.Contains(err.Error(), "interrupted")) {
		// Cancelled, or the verb finished as a signal arrived (its work may
		// be cut short): say which signal.
		fmt.Fprintln(stderr, "coldbench:", context.Cause(ctx))
	}
	return code
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	registerPlatforms()
	var verbose bool
	lg := newLogs()
	root := &cobra.Command{
		Use:           "coldbench",
		Short:         "Measure serverless cold-start latency and density across container runtimes",
		Long:          "Measure serverless cold-start latency and density across container runtimes.\n\n" + exitCodesHelp,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			lg.configure(cmd.ErrOrStderr(), verbose)
		},
	}
	groupCmd(root)
	root.SetVersionTemplate("coldbench {{.Version}}\n")
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "debug-level log messages on stderr (run: one line per cell)")
	root.AddCommand(newRunCmd(lg), newReportCmd(), newImageCmd(lg.log), newCleanCmd(lg.log), newVersionCmd(), newHostCmd(), newPlotCmd(), newCompareCmd(), newDoctorCmd(lg.log))
	root.AddCommand(newCapacityCmd(lg))
	root.AddCommand(newDensityCmd(lg))
	// Flag syntax errors (including the list flags' own) are usage errors,
	// named as the list flags word them.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		var le *listError
		if errors.As(err, &le) {
			return usageError(le)
		}
		return usageError(err)
	})
	wrapRunE(root)
	return root
}

// groupCmd makes a command that only holds verbs print its help when run
// alone, and refuse an unknown verb as a usage error (cobra would print the
// help and exit 0, or report it with an error we could not tell from a
// failure).
func groupCmd(c *cobra.Command) *cobra.Command {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return usageError(errors.New(msg))
	}
	c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	return c
}

// wrapRunE makes every error out of a verb carry an exit status:
// ExitFailure unless the verb chose one.
func wrapRunE(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			return withCode(run(cmd, args), ExitFailure)
		}
	}
	for _, sub := range c.Commands() {
		wrapRunE(sub)
	}
}

// versionString is "VERSION (commit C) GOVERSION", shared by the version
// verb and --version.
func versionString() string {
	t := bench.Tool()
	s := t.Version
	if t.Commit != "" {
		s += " (commit " + t.Commit + ")"
	}
	return s + " " + t.GoVersion
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print coldbench's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "coldbench", versionString())
			return err
		},
	}
}
