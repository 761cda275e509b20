package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/coldbench/coldbench/pkg/stats"
)

// p99Mark flags a p99 computed from fewer than stats.P99MinN samples.
const p99Mark = "*"

// textHeader and textCells are shared by the table and markdown writers so
// the two never disagree.
func textHeader(withPlatform bool) []string {
	h := []string{"RUNTIME", "N", "ATTEMPTS", "OK", "FAIL", "MEAN", "STDEV", "MIN", "P50", "P90", "P95", "P99", "MAX",
		fmt.Sprintf("MEDIAN-%g%%CI", 100*stats.CIConfidence), "FAILURES"}
	if withPlatform {
		h = append([]string{"PLATFORM"}, h...)
	}
	return h
}

func textCells(r stats.Row, withPlatform bool) []string {
	s := r.TTFB
	c := []string{r.Runtime, strconv.Itoa(r.Scale), strconv.Itoa(r.Attempts), strconv.Itoa(r.Successes), strconv.Itoa(r.Failures)}
	if s.N == 0 {
		// Nothing succeeded: no latency to show, not a latency of zero.
		c = append(c, "-", "-", "-", "-", "-", "-", "-", "-", "-")
	} else {
		p99 := ms(s.P99)
		if !s.P99Reliable {
			p99 += p99Mark
		}
		ci := fmt.Sprintf("n/a (n<%d)", stats.MinNForMedianCI(stats.CIConfidence))
		if s.CIOK {
			ci = "[" + ms(s.MedianCILo) + ", " + ms(s.MedianCIHi) + "]"
		}
		stdev := "-" // undefined for a single sample
		if s.N >= 2 {
			stdev = ms(s.Stdev)
		}
		c = append(c, ms(s.Mean), stdev, ms(s.Min), ms(s.P50), ms(s.P90), ms(s.P95), p99, ms(s.Max), ci)
	}
	f := failureList(r.FailuresByClass, ",")
	if f == "" {
		f = "-"
	}
	c = append(c, f)
	if withPlatform {
		c = append([]string{r.Platform}, c...)
	}
	return c
}

// preamble is the text above the table: context (ids, files, platform,
// warnings) and the notes saying what the numbers mean.
func preamble(rows []stats.Row, meta Meta) (context, notes []string, withPlatform bool) {
	if len(meta.ExperimentIDs) > 0 {
		context = append(context, "experiments: "+strings.Join(meta.ExperimentIDs, ", "))
	}
	if len(meta.Files) > 0 {
		context = append(context, "files: "+strings.Join(meta.Files, ", "))
	}
	// One platform is stated once; several get their own column.
	ps := platforms(rows)
	if len(ps) == 1 && ps[0] != "" {
		context = append(context, "platform: "+ps[0])
	}
	for _, w := range meta.Warnings {
		context = append(context, "warning: "+w)
	}
	notes = []string{LatencyDefinition, "stats over successful attempts only; N = instances cold-started at once"}
	return context, notes, len(ps) > 1
}

// footnotes explain marks that actually appear in the table.
func footnotes(rows []stats.Row) []string {
	var out []string
	for _, r := range rows {
		if r.TTFB.N > 0 && !r.TTFB.P99Reliable {
			out = append(out, fmt.Sprintf("%s p99 from fewer than %d samples: interpolated between the two largest, read it as ≈ max", p99Mark, stats.P99MinN))
			break
		}
	}
	for _, r := range rows {
		if r.DensitySteps > 0 {
			out = append(out, "a density run's rows pool its steps (N = the step's size), each started at another density: they count every attempt, "+
				"but their latency and footprint are of no one density; the density table has each step")
			break
		}
	}
	return out
}

func writeTable(w io.Writer, rows []stats.Row, meta Meta) error {
	ew := &errWriter{w: w}
	context, notes, withPlatform := preamble(rows, meta)
	for _, l := range append(context, notes...) {
		ew.printf("%s\n", l)
	}
	ew.printf("\n")
	if err := writeBreakdownsText(ew, meta.Breakdowns, withPlatform); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(textHeader(withPlatform), "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(textCells(r, withPlatform), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 0 {
		ew.printf("(no attempts)\n")
	}
	if fn := footnotes(rows); len(fn) > 0 {
		ew.printf("\n")
		for _, l := range fn {
			ew.printf("%s\n", l)
		}
	}
	for _, st := range []*stepTable{stepsTable(rows, withPlatform), footprintTable(rows, withPlatform)} {
		if st == nil {
			continue
		}
		if err := st.writeText(ew); err != nil {
			return err
		}
	}
	if ew.err == nil {
		ew.err = writeCapacityTable(w, meta.Capacities)
	}
	if dt := densityTable(meta.Densities); dt != nil && ew.err == nil {
		ew.err = dt.writeText(ew)
	}
	return ew.err
}

func writeMarkdown(w io.Writer, rows []stats.Row, meta Meta) error {
	ew := &errWriter{w: w}
	context, notes, withPlatform := preamble(rows, meta)
	// Bullets for the context, so the lines do not run together when rendered.
	for _, l := range context {
		ew.printf("- %s\n", mdEscape(l))
	}
	if len(context) > 0 {
		ew.printf("\n")
	}
	for _, l := range notes {
		ew.printf("%s  \n", mdEscape(l)) // two spaces: a hard line break
	}
	ew.printf("\n")

	header := textHeader(withPlatform)
	ew.printf("|")
	for _, h := range header {
		ew.printf(" %s |", mdEscape(h))
	}
	ew.printf("\n|")
	for _, h := range header {
		// Numbers right-aligned; names and lists left.
		if h == "RUNTIME" || h == "PLATFORM" || h == "FAILURES" || strings.HasPrefix(h, "MEDIAN") {
			ew.printf(" --- |")
		} else {
			ew.printf(" ---: |")
		}
	}
	ew.printf("\n")
	for _, r := range rows {
		ew.printf("|")
		for _, c := range textCells(r, withPlatform) {
			ew.printf(" %s |", mdEscape(c))
		}
		ew.printf("\n")
	}
	if len(rows) == 0 {
		ew.printf("\n(no attempts)\n")
	}
	if fn := footnotes(rows); len(fn) > 0 {
		ew.printf("\n")
		for _, l := range fn {
			ew.printf("%s\n", mdEscape(l))
		}
	}
	for _, st := range []*stepTable{stepsTable(rows, withPlatform), footprintTable(rows, withPlatform)} {
		if st != nil {
			st.writeMarkdown(ew)
		}
	}
	if ew.err == nil {
		ew.err = writeCapacityMarkdown(w, meta.Capacities)
	}
	if dt := densityTable(meta.Densities); dt != nil && ew.err == nil {
		dt.writeMarkdown(ew)
	}
	return ew.err
}

// mdEscape backslash-escapes characters that GitHub Markdown would treat as
// markup (or as a cell separator) in free text such as warnings and names.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `|`, `\|`, `[`, `\[`, `]`, `\]`,
	`<`, `&lt;`, `>`, `&gt;`, `#`, `\#`, "\n", " ",
)

func mdEscape(s string) string { return mdEscaper.Replace(s) }
