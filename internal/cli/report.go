package cli

import (
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
			if err := printReport(cmd.OutOrStdout(), format, args); err != nil {
				return err
			}
			if htmlFile != "" {
				if err := report.WriteHTMLFile(htmlFile, args, report.HTMLOptions{}); err != nil {
					return err
				}
			}
			if attemptsCSV != "" {
				return report.WriteAttemptsCSVFile(attemptsCSV, args)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: "+strings.Join(report.Formats(), ", "))
	cmd.Flags().StringVar(&htmlFile, "html", "", "also write a self-contained HTML report (tables, all figures, testbed) to this file")
	cmd.Flags().StringVar(&attemptsCSV, "attempts-csv", "", "also write every attempt record as one CSV row to this file")
	return cmd
}

// printReport renders the statistics of the given results files.
func printReport(w io.Writer, format string, files []string) error {
	set, err := results.ReadFiles(files...)
	if err != nil {
		return err
	}
	if len(set.Attempts) == 0 {
		return fmt.Errorf("no attempt records in %s", strings.Join(files, ", "))
	}
	return report.Write(w, format, stats.Group(set), report.MetaFromSet(set, files...))
}
