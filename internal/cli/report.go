package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/report"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

func newReportCmd() *cobra.Command {
	var format, htmlFile, attemptsCSV string
	var ropt results.ReadOptions
	cmd := &cobra.Command{
		Use:   "report FILE...",
		Short: "Statistics per runtime and N from results files alone",
		Long: `report reads JSONL results files (no cluster, no containerd needed) and prints,
per runtime and N: attempts, successes, failures by class, mean, stdev, min,
p50, p90, p95, p99, max and a distribution-free 95% confidence interval of the
median. Warm-ups are excluded.`,
		Example: `  coldbench report results/demo.jsonl
  coldbench report --format csv results/*.jsonl > summary.csv`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := printReport(ctx, cmd.OutOrStdout(), format, args, ropt); err != nil {
				return err
			}
			if htmlFile != "" {
				if err := report.WriteHTMLFile(ctx, htmlFile, args, report.HTMLOptions{Read: ropt}); err != nil {
					return err
				}
			}
			if attemptsCSV != "" {
				// Its reader warnings are the ones printReport showed.
				_, err := report.WriteAttemptsCSVFile(ctx, attemptsCSV, args, ropt)
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: "+strings.Join(report.Formats(), ", "))
	cmd.Flags().StringVar(&htmlFile, "html", "", "also write a self-contained HTML report (tables, all figures, testbed) to this file")
	cmd.Flags().StringVar(&attemptsCSV, "attempts-csv", "", "also write every attempt record as one CSV row to this file")
	cmd.Flags().BoolVar(&ropt.Lenient, "lenient", false, lenientUsage)
	return cmd
}

// lenientUsage is the --lenient flag's help (report, plot, compare).
const lenientUsage = "skip inconsistent records and count them instead of refusing the file"

// printReport renders the statistics of the given results files, streamed
// and validated (results.Reader) into one analysis model.
func printReport(ctx context.Context, w io.Writer, format string, files []string, ropt results.ReadOptions) error {
	m := stats.NewModel()
	m.NoPhases = true // the tables show no phases
	m, err := m.Load(ctx, ropt, files...)
	if err != nil {
		return err
	}
	if m.Records == 0 {
		return fmt.Errorf("no attempt records in %s", strings.Join(files, ", "))
	}
	return report.Write(w, format, m.Rows(), report.MetaFromModel(m, files...))
}
