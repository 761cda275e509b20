package cli

import (
	"context"
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/bench"
)

func newDoctorCmd(log *slog.Logger) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that a platform can run an experiment, and say what to fix",
		Long: `doctor runs the checks run makes before creating anything: on knative, that
Knative Serving is installed (and its version), the runtimeclassname feature flag,
allow-zero-initial-scale, every requested RuntimeClass, permissions in the
namespace, that the ingress answers, and on every Ready node whether a node
agent (deploy/agent.yaml) answers healthy (a warning, not a failure: without
one the rt_ phases are missing); on node, that containerd answers CRI and has
every handler and image. It changes nothing.`,
		Example: `  coldbench doctor --platform knative --runtimes default,runc,crun,kata-fc`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exp, err := f.experiment(cmd)
			if err != nil {
				return usageError(err)
			}
			return doctor(cmd.Context(), cmd, log, exp)
		},
	}
	f.registerOn(cmd, append([]string{"file", "platform", "runtimes", "image"}, platformVerbFlags("doctor")...)...)
	f.force = true // doctor runs no matrix: the scales' cap is no concern
	return cmd
}

// doctor prints every check of the experiment's platform, the same checks
// run refuses to start without.
func doctor(ctx context.Context, cmd *cobra.Command, log *slog.Logger, exp *bench.Experiment) error {
	plat, err := openPlatform(exp, log)
	if err != nil {
		return err
	}
	defer plat.Close()
	checks := plat.Checks(ctx, exp)
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	for _, c := range checks {
		mark := "ok"
		switch {
		case !c.OK:
			mark = "FAIL"
		case c.Warn:
			mark = "warn"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, c.Name, c.Detail)
		if !c.OK || (c.Warn && c.Fix != "") {
			fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
		}
	}
	tw.Flush()
	if err := bench.Failed(checks); err != nil {
		return &exitError{code: ExitFailure, err: fmt.Errorf("%d check(s) failed", countFailed(checks))}
	}
	return nil
}

func countFailed(cs []bench.Check) int {
	n := 0
	for _, c := range cs {
		if !c.OK {
			n++
		}
	}
	return n
}
