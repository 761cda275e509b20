package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/compare"
)

func newCompareCmd() *cobra.Command {
	var (
		opt    compare.Options
		format string
		pairs  []string
	)
	usageErr := func(err error) error { return &exitError{code: compare.ExitError, err: err} }
	cmd := &cobra.Command{
		Use:   "compare [flags] A.jsonl B.jsonl",
		Short: "A/B comparison of two results files: change in median, its CI and significance",
		Long: `compare puts two results files side by side, A the baseline and B the new one.
Per runtime and N it prints the median time to first byte of each, the change
from A to B with its confidence interval, and the p-value of a Mann–Whitney U
test; "~" marks a change that is not significant at --alpha.

The change is the Hodges–Lehmann estimate of B/A − 1 (the median of all
pairwise ratios of successful attempts) with Moses' distribution-free
confidence interval at 1 − alpha. The test is exact for fewer than 50
attempts per side without ties, otherwise the normal approximation with tie
and continuity correction.

--pair A=B compares runtime A of the first file with runtime B of the second
(repeatable); with --pair, a single file compares its own runtimes.

Exit status: 0 no significant change reaches --threshold (or none given);
1 a significant change reaches --threshold; 2 error (bad flags or files).`,
		Example: `  coldbench compare results/before.jsonl results/after.jsonl
  coldbench compare --threshold 10 --direction slower base.jsonl pr.jsonl   # CI gate
  coldbench compare --pair runc=crun results/study.jsonl                    # runc vs crun`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErr(fmt.Errorf("compare takes two results files (A, B), or one with --pair; got %d", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, p := range pairs {
				a, b, ok := strings.Cut(p, "=")
				if !ok {
					return usageErr(fmt.Errorf("--pair %q: want A=B, e.g. runc=crun", p))
				}
				opt.Pairs = append(opt.Pairs, compare.Pair{A: strings.TrimSpace(a), B: strings.TrimSpace(b)})
			}
			fileB := ""
			if len(args) == 2 {
				fileB = args[1]
			}
			exceeded, err := compare.Run(cmd.Context(), cmd.OutOrStdout(), format, args[0], fileB, opt)
			if err != nil {
				return usageErr(err)
			}
			if exceeded {
				return &exitError{code: compare.ExitThresholdExceeded,
					err: fmt.Errorf("a significant change reaches the %g%% threshold", opt.ThresholdPct)}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	cmd.Flags().Float64Var(&opt.Alpha, "alpha", compare.DefaultAlpha, "significance level; the CI of the change is at 1 - alpha")
	cmd.Flags().Float64Var(&opt.ThresholdPct, "threshold", 0, "exit with status 1 when a significant change is at least this many percent (0 = off)")
	cmd.Flags().StringVar(&opt.Direction, "direction", compare.DirectionBoth, "changes the threshold applies to: both, slower, faster")
	cmd.Flags().StringArrayVar(&pairs, "pair", nil, "compare runtime A of the first file with runtime B of the second: A=B (repeatable)")
	cmd.Flags().StringVar(&format, "format", compare.FormatTable, "output format: "+strings.Join(compare.Formats(), ", "))
	cmd.Flags().BoolVar(&opt.Read.Lenient, "lenient", false, lenientUsage)
	return cmd
}
