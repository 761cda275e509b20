package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/outfile"
	"github.com/coldbench/coldbench/pkg/report"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// reportOutputs are report's flags: the summary format and the extra files.
type reportOutputs struct {
	format      string
	formatGiven bool
	html        string
	attemptsCSV string
	read        results.ReadOptions
}

func newReportCmd() *cobra.Command {
	var o reportOutputs
	cmd := &cobra.Command{
		Use:   "report FILE...",
		Short: "Statistics per runtime and N from results files alone",
		Long: `report reads JSONL results files (no cluster, no containerd needed) and prints,
per runtime and N: attempts, successes, failures by class, mean, stdev, min,
p50, p90, p95, p99, max and a distribution-free 95% confidence interval of the
median. Warm-ups are excluded. Reader warnings (e.g. a torn last line) go to
standard error whatever the format.

--html - or --attempts-csv - writes that output to standard output instead of
the summary (which then is not printed; giving --format as well is an error).`,
		Example: `  coldbench report results/demo.jsonl
  coldbench report --format csv results/*.jsonl > summary.csv
  coldbench report --attempts-csv - results/demo.jsonl | head`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.formatGiven = cmd.Flags().Changed("format")
			return writeReport(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args, o)
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "table", "output format: "+strings.Join(report.Formats(), ", "))
	cmd.Flags().StringVar(&o.html, "html", "", "also write a self-contained HTML report (tables, all figures, testbed) to this file (- for standard output; folders are created)")
	cmd.Flags().StringVar(&o.attemptsCSV, "attempts-csv", "", "also write every attempt record as one CSV row to this file (- for standard output; folders are created)")
	cmd.Flags().BoolVar(&o.read.Lenient, "lenient", false, lenientUsage)
	return cmd
}

// lenientUsage is the --lenient flag's help (report, plot, compare).
const lenientUsage = "skip inconsistent records and count them instead of refusing the file"

// summaryFormat is the summary reporter --format names (report and run).
func summaryFormat(format string) (report.Reporter, error) {
	r, err := report.ByName(format)
	if err != nil {
		return nil, fmt.Errorf("--format %q: use one of %s", format, strings.Join(report.Formats(), ", "))
	}
	return r, nil
}

// writeReport reads the results files once and writes the summary and the
// files o asks for. Unreadable or invalid records are bad input.
func writeReport(ctx context.Context, stdout, stderr io.Writer, files []string, o reportOutputs) error {
	summaryReporter, err := summaryFormat(o.format)
	if err != nil {
		return usageError(err)
	}
	summary := true
	switch {
	case o.html == "-" && o.attemptsCSV == "-":
		return usageError(fmt.Errorf("--html - and --attempts-csv -: only one output can go to standard output; write the other to a file"))
	case o.html == "-" || o.attemptsCSV == "-":
		if o.formatGiven {
			return usageError(fmt.Errorf("--format %s: standard output carries the %s; write it to a file instead of -, or drop --format", o.format, map[bool]string{true: "HTML page (--html -)", false: "attempts CSV (--attempts-csv -)"}[o.html == "-"]))
		}
		summary = false
	}
	// One validated pass over the files into the analysis model; the
	// phase offsets only when the HTML page shows them.
	m, err := loadModel(ctx, stderr, files, o.read, o.html == "")
	if err != nil {
		return err
	}
	meta := report.MetaFromModel(m, files...)
	if summary {
		mt := meta
		if strings.EqualFold(o.format, report.FormatTable) {
			mt.Warnings = nil // already on stderr
		}
		if err := summaryReporter.Report(ctx, stdout, m, mt); err != nil {
			return err
		}
	}
	if o.html != "" {
		if err := writeOutput("html", o.html,
			func() error { return report.HTML(report.HTMLOptions{}).Report(ctx, stdout, m, meta) },
			func(path string) error { return report.WriteHTMLFile(ctx, path, m, meta, report.HTMLOptions{}) },
		); err != nil {
			return err
		}
	}
	if o.attemptsCSV != "" {
		// Every record as a row: the files are streamed again (the model
		// keeps no records), with the same checks.
		if err := writeOutput("attempts-csv", o.attemptsCSV,
			func() error { _, err := report.StreamAttemptsCSV(ctx, stdout, files, o.read); return err },
			func(path string) error { _, err := report.WriteAttemptsCSVFile(ctx, path, files, o.read); return err },
		); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// loadModel streams and validates results files into the analysis model
// for report and plot: a file that cannot be read or holds invalid records
// is bad input (an interrupt is not); the reader's warnings go to stderr,
// and files without attempts are refused.
func loadModel(ctx context.Context, stderr io.Writer, files []string, ropt results.ReadOptions, noPhases bool) (*stats.Model, error) {
	m := stats.NewModel()
	m.NoPhases = noPhases
	m, err := m.Load(ctx, ropt, files...)
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, usageError(err)
	}
	for _, w := range m.Warnings {
		fmt.Fprintln(stderr, "coldbench: warning:", w)
	}
	if m.Records == 0 {
		return nil, usageError(fmt.Errorf("no attempt records in %s", strings.Join(files, ", ")))
	}
	return m, nil
}

// writeOutput writes the output of --flag: to standard output for "-",
// else to path through toFile (whole or not at all), in a folder created
// when missing and removed again when the output is not written. Every
// error names the flag.
func writeOutput(flag, path string, toStdout func() error, toFile func(string) error) error {
	if path == "-" {
		if err := toStdout(); err != nil {
			return fmt.Errorf("--%s -: %w", flag, err)
		}
		return nil
	}
	undo, err := outfile.MkdirAll(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("--%s: creating folder: %w", flag, err)
	}
	if err := toFile(path); err != nil {
		undo()
		return fmt.Errorf("--%s: %w", flag, err)
	}
	return nil
}

// printReport renders the statistics of the given results files (run's
// summary), reader warnings on stderr.
func printReport(ctx context.Context, stdout, stderr io.Writer, format string, files []string) error {
	return writeReport(ctx, stdout, stderr, files, reportOutputs{format: format})
}
