package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/plot"
	"github.com/coldbench/coldbench/pkg/results"
)

func newPlotCmd() *cobra.Command {
	var (
		dir  string
		opt  plot.Options
		fmts []string
		ropt results.ReadOptions
	)
	cmd := &cobra.Command{
		Use:   "plot -o DIR FILE...",
		Short: "Draw the study's figures (SVG and PNG) from results files alone",
		Long: `plot reads JSONL results files and writes, into DIR, as SVG and PNG:

  latency-vs-n   mean latency against N, one line per runtime, 95% CI band of the mean
  responded      per N: target N vs instances that answered per iteration, per runtime
  latency-nN     per runtime at N: mean, min–max, median with its 95% CI
  p99-nN         per runtime at N: p99, with a warning on the figure when n < 100
  cdf-nN         per runtime at N: share of attempts answered within x ms
  phases-nN      per runtime at N: median phase offsets as stacked bars (if recorded)

The per-N figures are drawn for the smallest N in the records unless --scales
or --all-scales says otherwise. Warm-ups are excluded; latency statistics are
over successful attempts.`,
		Example: `  coldbench plot -o figures results/study.jsonl
  coldbench plot -o figures --scales 1,8 --format svg results/*.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Formats = fmts
			paths, warnings, err := plot.WriteFiles(cmd.Context(), dir, args, opt, ropt)
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write the figures into (created if missing)")
	_ = cmd.MarkFlagRequired("output")
	cmd.Flags().IntSliceVar(&opt.Scales, "scales", nil, "N values for the per-N figures, comma-separated (default: the smallest N in the records)")
	cmd.Flags().BoolVar(&opt.AllScales, "all-scales", false, "draw the per-N figures for every N in the records")
	cmd.Flags().StringSliceVar(&fmts, "format", []string{plot.FormatSVG, plot.FormatPNG}, "image formats: svg, png")
	cmd.Flags().IntVar(&opt.DPI, "dpi", plot.DefaultDPI, "resolution of PNG output")
	cmd.Flags().BoolVar(&ropt.Lenient, "lenient", false, lenientUsage)
	cmd.MarkFlagsMutuallyExclusive("scales", "all-scales")
	return cmd
}
