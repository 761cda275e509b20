// Package report renders the analysis model (stats.Model) as a text table,
// JSON, CSV, a Markdown (GitHub) table or an HTML page, each a Reporter.
// Like stats, it depends only on the standard library and coldbench's light
// packages.
package report

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/coldbench/coldbench/pkg/compare"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// Reporter renders the analysis model in one format. The summary formats
// (ByName) and the HTML page (HTML) are all reporters, so that adding a
// format is adding one, and callers never switch on a format's name. ctx
// lets a slow reporter (the HTML page's figures) stop when asked to.
type Reporter interface {
	Report(ctx context.Context, w io.Writer, m *stats.Model, meta Meta) error
}

// ReporterFunc makes a function a Reporter.
type ReporterFunc func(ctx context.Context, w io.Writer, m *stats.Model, meta Meta) error

// Report calls f.
func (f ReporterFunc) Report(ctx context.Context, w io.Writer, m *stats.Model, meta Meta) error {
	return f(ctx, w, m, meta)
}

// Format names of the summary reporters (ByName).
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatCSV      = "csv"
	FormatMarkdown = "markdown"
)

// rowsReporter is a summary format: it needs the cells' rows, and with
// breakdowns the per-runtime differences (breakdown.go), which only the
// text table shows.
func rowsReporter(write func(io.Writer, []stats.Row, Meta) error, breakdowns bool) Reporter {
	return ReporterFunc(func(_ context.Context, w io.Writer, m *stats.Model, meta Meta) error {
		meta.Capacities = m.Capacities() // capacity.go: a capacity search's answer
		meta.Densities = m.Densities()   // density.go: a density run's steps and capacity
		if breakdowns {
			meta.Breakdowns = compare.Breakdowns(m)
		}
		return write(w, m.Rows(), meta)
	})
}

// summaries are the summary formats, default first (a slice, not a map,
// so that Formats and the error listing them keep this order).
var summaries = []struct {
	name string
	r    Reporter
}{
	{FormatTable, rowsReporter(writeTable, true)},
	{FormatJSON, rowsReporter(writeJSON, false)},
	{FormatCSV, rowsReporter(writeCSV, false)},
	{FormatMarkdown, rowsReporter(writeMarkdown, false)},
}

// Formats lists the valid format names, default first.
func Formats() []string {
	names := make([]string, len(summaries))
	for i, s := range summaries {
		names[i] = s.name
	}
	return names
}

// ByName returns the summary reporter of a format name (case and
// surrounding space ignored). An unknown name is an error naming the valid
// ones.
func ByName(name string) (Reporter, error) {
	want := strings.ToLower(strings.TrimSpace(name))
	for _, s := range summaries {
		if s.name == want {
			return s.r, nil
		}
	}
	return nil, fmt.Errorf("unknown report format %q; valid formats: %s", name, strings.Join(Formats(), ", "))
}

// LatencyDefinition is printed above the human-readable formats so that a
// pasted table still says what its numbers are.
const LatencyDefinition = "latency = request start → first byte of the first 2xx reply (ms); warm-ups excluded"

// JSONSchema identifies the layout of the JSON report; bump it on any
// incompatible change to field names or meaning.
const JSONSchema = "coldbench.dev/report/v1"

// Meta is optional context printed above the table (table, markdown) and
// included in JSON. CSV carries rows only, so that it loads as one table.
type Meta struct {
	ExperimentIDs []string
	Files         []string
	Warnings      []string // e.g. results.Set.Warnings
	// Capacities are the capacity searches' answers (capacity.go), filled
	// from the model by the summary formats.
	Capacities []stats.Capacity
	// Densities are the density runs' steps and capacities (density.go),
	// filled from the model by the summary formats.
	Densities []stats.Density
	// Breakdowns are the per-runtime differences in the runtime view
	// (compare.Breakdowns), filled from the model by the text table, which
	// they lead.
	Breakdowns []compare.Breakdown
}

// MetaFromSet collects the experiment ids (in order, without repeats) and
// reader warnings of set, plus the given file names.
func MetaFromSet(set *results.Set, files ...string) Meta {
	m := Meta{Files: slices.Clone(files)}
	if set == nil {
		return m
	}
	seen := map[string]bool{}
	for _, h := range set.Headers {
		if h.ExperimentID != "" && !seen[h.ExperimentID] {
			seen[h.ExperimentID] = true
			m.ExperimentIDs = append(m.ExperimentIDs, h.ExperimentID)
		}
	}
	m.Warnings = slices.Clone(set.Warnings)
	return m
}

// MetaFromModel is MetaFromSet of an analysis model.
func MetaFromModel(m *stats.Model, files ...string) Meta {
	return MetaFromSet(&results.Set{Headers: m.Headers, Warnings: m.Warnings}, files...)
}

// Write renders m in the named summary format (ByName; "" means "table").
func Write(w io.Writer, format string, m *stats.Model, meta Meta) error {
	if strings.TrimSpace(format) == "" {
		format = FormatTable
	}
	r, err := ByName(format)
	if err != nil {
		return err
	}
	return r.Report(context.Background(), w, m, meta)
}

// ms renders nanoseconds as milliseconds with 3 decimals (microsecond
// resolution, which is as far as cold-start numbers deserve to be read).
func ms(ns float64) string { return strconv.FormatFloat(ns/1e6, 'f', 3, 64) }

// fullNS renders nanoseconds at full precision without an exponent.
func fullNS(ns float64) string { return strconv.FormatFloat(ns, 'f', -1, 64) }

// failureList renders FailuresByClass as "timeout=2,http_status=1": most
// frequent first, ties by name, so the output is deterministic. "" if none.
func failureList(byClass map[string]int, sep string) string {
	type kv struct {
		class string
		n     int
	}
	var list []kv
	for c, n := range byClass {
		if n > 0 {
			list = append(list, kv{c, n})
		}
	}
	slices.SortFunc(list, func(a, b kv) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.class, b.class)
	})
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = e.class + "=" + strconv.Itoa(e.n)
	}
	return strings.Join(parts, sep)
}

// platforms returns the distinct platforms of rows in order.
func platforms(rows []stats.Row) []string {
	var ps []string
	for _, r := range rows {
		if !slices.Contains(ps, r.Platform) {
			ps = append(ps, r.Platform)
		}
	}
	return ps
}

// errWriter keeps the first write error so rendering code can stay linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
