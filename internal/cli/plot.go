package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/plot"
	"github.com/coldbench/coldbench/pkg/results"
)

// PNG resolutions plot accepts: below 36 dpi text is unreadable; at 600 dpi
// a figure is already 5400 × 3240 pixels (70 MB to render), and far above
// rendering runs out of memory.
const (
	minDPI = 36
	maxDPI = 600
)

func newPlotCmd() *cobra.Command {
	var (
		dir  string
		opt  plot.Options
		fmts = plot.ImageFormats()
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

and for a density run (coldbench density):

  density-latency   per runtime: each step's median latency against the instances already running
  density-memory    per runtime: memory per instance (PSS anon+shmem, MemAvailable drop/N) against those running
  density-capacity  per runtime: the instances that answered before the run stopped, and why it stopped

The per-N figures are drawn for the smallest N in the records unless --scales
or --all-scales says otherwise. Warm-ups are excluded; latency statistics are
over successful attempts.`,
		Example: `  coldbench plot -o figures results/study.jsonl
  coldbench plot -o figures --scales 1,8 --format svg results/*.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opt.DPI < minDPI || opt.DPI > maxDPI {
				return usageError(fmt.Errorf("--dpi %d: give a resolution between %d and %d (default %d)", opt.DPI, minDPI, maxDPI, plot.DefaultDPI))
			}
			opt.Formats = fmts
			ctx := cmd.Context()
			m, err := loadModel(ctx, cmd.ErrOrStderr(), args, ropt, false)
			if err != nil {
				return err
			}
			paths, err := plot.WriteModel(ctx, dir, m, opt)
			if errors.Is(err, plot.ErrScales) {
				return usageError(err)
			}
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			if err != nil {
				return fmt.Errorf("-o %s: %w", dir, err)
			}
			return ctx.Err()
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&dir, "output", "o", "", "directory to write the figures into (created if missing)")
	_ = cmd.MarkFlagRequired("output")
	fl.Var(newIntList(&opt.Scales, "scales", "N values", "1,8"), "scales", "N values for the per-N figures, comma-separated (default: the smallest N in the records)")
	fl.BoolVar(&opt.AllScales, "all-scales", false, "draw the per-N figures for every N in the records")
	fl.Var(newNameList(&fmts, "format", "svg,png", func(s string) error {
		if !slices.Contains(plot.ImageFormats(), s) {
			return fmt.Errorf("not an image format plot writes (%s)", strings.Join(plot.ImageFormats(), ", "))
		}
		return nil
	}), "format", "image formats, comma-separated: svg, png")
	fl.IntVar(&opt.DPI, "dpi", plot.DefaultDPI, fmt.Sprintf("resolution of PNG output, %d to %d", minDPI, maxDPI))
	fl.BoolVar(&ropt.Lenient, "lenient", false, lenientUsage)
	cmd.MarkFlagsMutuallyExclusive("scales", "all-scales")
	return cmd
}
