package report

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coldbench/coldbench/pkg/compare"
	"github.com/coldbench/coldbench/pkg/outfile"
	"github.com/coldbench/coldbench/pkg/plot"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

//go:embed html.tmpl
var htmlTemplate string

var htmlTmpl = template.Must(template.New("report").Parse(htmlTemplate))

// HTMLOptions control WriteHTML.
type HTMLOptions struct {
	// Title of the page; "coldbench report" if empty.
	Title string
	// Plot selects the per-N figures; with neither Scales nor AllScales
	// set, the page has them for every N.
	Plot plot.Options
	// Read says how WriteHTMLFile treats inconsistent records.
	Read results.ReadOptions
}

type htmlPage struct {
	Title             string
	ExperimentIDs     []string
	Files             []string
	Warnings          []string
	Summary           []kv
	Testbeds          []htmlTestbed
	Experiments       []htmlExperiment
	LatencyDefinition string
	StatsHead         []string
	StatsRows         [][]htmlCell
	StatsNotes        []string
	Footnotes         []string
	Steps             *stepTable // nil: no step figures or waits recorded
	Footprint         *stepTable // nil: no footprint recorded
	Density           *stepTable // nil: no density run in the records
	FigureGroups      []htmlFigureGroup
	Breakdowns        []htmlBreakdown
	BreakdownNote     string
	PhaseTables       []htmlPhaseTable
	PhasePartial      bool
	Failures          []htmlFailure
	FailureTotal      int
	Tool              string
}

type kv struct{ K, V string }

type htmlCell struct {
	Text string
	Num  bool // right-aligned
}

type htmlTestbed struct {
	Experiments []string
	Facts       []kv
	Platform    []kv
	Runtimes    []kv
	Notes       []string
}

type htmlExperiment struct {
	ID, Created, Tool string
	Facts             []kv
	JSON              string
}

type htmlFigureGroup struct {
	Heading string
	Figures []htmlFigure
}

type htmlFigure struct {
	ID, Name, Title string
	Number          int
	SVG             template.HTML
}

// htmlPhaseTable is the phases of one N: a row per phase in time order, a
// column per runtime (a row per runtime would be far too wide for
// Knative's dozen phases).
type htmlPhaseTable struct {
	Scale int
	View  string   // stats.PhaseView.Sentence: which phases, over which attempts
	Heads []string // "runc (n = 10)"
	Rows  []htmlPhaseRow
}

type htmlPhaseRow struct {
	Name  string
	Cells []string
}

type htmlFailure struct {
	Platform, Runtime string
	Scale             int
	Class             string
	Count             int
	Example           string
}

// WriteHTML renders one self-contained HTML page: testbed and experiment
// from the headers, the statistics table, every figure as inline SVG,
// median phase offsets and the failures by class with an example message.
// The page loads nothing: no script, no stylesheet, image or font from
// elsewhere, no URL at all (user-supplied text such as an endpoint in the
// experiment is shown as text).
func WriteHTML(w io.Writer, set *results.Set, meta Meta, opt HTMLOptions) error {
	if set == nil || len(set.Attempts) == 0 {
		return fmt.Errorf("no attempt records to report")
	}
	return HTML(opt).Report(context.Background(), w, stats.FromSet(set), meta)
}

// HTML is the reporter of WriteHTML's page; ctx is checked between
// figures, whose rendering is most of the page's time.
func HTML(opt HTMLOptions) Reporter {
	return ReporterFunc(func(ctx context.Context, w io.Writer, m *stats.Model, meta Meta) error {
		return writeHTML(ctx, w, m, meta, opt)
	})
}

// writeHTML checks ctx between figures: rendering them is most of the
// page's time.
func writeHTML(ctx context.Context, w io.Writer, m *stats.Model, meta Meta, opt HTMLOptions) error {
	if m.Records == 0 {
		return fmt.Errorf("no attempt records to report")
	}
	rows := m.Rows()
	page := htmlPage{
		Title:             opt.Title,
		ExperimentIDs:     meta.ExperimentIDs,
		Files:             meta.Files,
		Warnings:          meta.Warnings,
		LatencyDefinition: LatencyDefinition,
	}
	if page.Title == "" {
		page.Title = "coldbench report"
	}
	page.Summary = summarize(m, rows)
	page.Testbeds = testbeds(m.Headers)
	page.Experiments = experiments(m.Headers)
	if len(m.Headers) > 0 {
		t := m.Headers[0].Tool
		page.Tool = strings.TrimSpace(t.Name + " " + t.Version + " " + t.Commit)
	}

	_, notes, withPlatform := preamble(rows, Meta{})
	page.StatsNotes = notes[1:] // the latency definition is shown on its own
	page.StatsHead = textHeader(withPlatform)
	for _, r := range rows {
		var cells []htmlCell
		for i, c := range textCells(r, withPlatform) {
			h := page.StatsHead[i]
			cells = append(cells, htmlCell{Text: c, Num: h != "RUNTIME" && h != "PLATFORM" && h != "FAILURES" && !strings.HasPrefix(h, "MEDIAN")})
		}
		page.StatsRows = append(page.StatsRows, cells)
	}
	page.Footnotes = footnotes(rows)
	page.Steps = stepsTable(rows, withPlatform)
	page.Footprint = footprintTable(rows, withPlatform)
	page.Density = densityTable(m.Densities())

	popt := opt.Plot
	if len(popt.Scales) == 0 {
		popt.AllScales = true
	}
	figs, err := plot.ModelFigures(m, popt)
	if err != nil {
		return err
	}
	for i, f := range figs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rendering HTML: %w", err)
		}
		svg, err := f.InlineSVG()
		if err != nil {
			return err
		}
		heading := "Across N"
		switch {
		case f.Scale > 0:
			heading = fmt.Sprintf("N = %d", f.Scale)
		case strings.HasPrefix(f.Name, "density-"):
			heading = "Density"
		}
		if len(page.FigureGroups) == 0 || page.FigureGroups[len(page.FigureGroups)-1].Heading != heading {
			page.FigureGroups = append(page.FigureGroups, htmlFigureGroup{Heading: heading})
		}
		g := &page.FigureGroups[len(page.FigureGroups)-1]
		// The SVG comes from our own renderer, which escapes all text.
		g.Figures = append(g.Figures, htmlFigure{ID: "fig-" + f.Name, Name: f.Name, Title: f.Title, Number: i + 1, SVG: template.HTML(svg)})
	}
	page.Breakdowns, page.BreakdownNote = htmlBreakdowns(compare.Breakdowns(m), withPlatform), breakdownNote
	page.PhaseTables, page.PhasePartial = phaseTables(m, rows)
	page.Failures, page.FailureTotal = failures(m)

	var buf bytes.Buffer
	if err := htmlTmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("rendering HTML: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// WriteHTMLFile writes m's HTML report to path, whole or not at all
// (outfile.WriteFile): an error, a full disk or a cancelled ctx leaves path
// as it was.
func WriteHTMLFile(ctx context.Context, path string, m *stats.Model, meta Meta, opt HTMLOptions) error {
	if err := outfile.WriteFile(ctx, path, func(w io.Writer) error {
		return writeHTML(ctx, w, m, meta, opt)
	}); err != nil {
		return fmt.Errorf("HTML report: %w", err)
	}
	return nil
}

func summarize(m *stats.Model, rows []stats.Row) []kv {
	var attempts, ok, failed, warm int
	var runtimes []string
	var scales []int
	for _, r := range rows {
		attempts += r.Attempts
		ok += r.Successes
		failed += r.Failures
		warm += r.Warmups
		if !slices.Contains(runtimes, r.Runtime) {
			runtimes = append(runtimes, r.Runtime)
		}
		if !slices.Contains(scales, r.Scale) {
			scales = append(scales, r.Scale)
		}
	}
	slices.Sort(scales)
	ns := make([]string, len(scales))
	for i, n := range scales {
		ns[i] = strconv.Itoa(n)
	}
	first, last := m.First, m.Last
	out := []kv{
		{"platforms", strings.Join(platforms(rows), ", ")},
		{"runtimes", strings.Join(runtimes, ", ")},
		{"N (instances cold-started at once)", strings.Join(ns, ", ")},
		{"measured attempts", strconv.Itoa(attempts)},
		{"successful", strconv.Itoa(ok)},
		{"failed", strconv.Itoa(failed)},
		{"warm-ups (not in any statistic)", strconv.Itoa(warm)},
	}
	if !first.IsZero() {
		out = append(out, kv{"first / last attempt started", first.UTC().Format(time.RFC3339) + " / " + last.UTC().Format(time.RFC3339)})
	}
	return out
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}

func sortedKV(m map[string]string) []kv {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]kv, len(keys))
	for i, k := range keys {
		out[i] = kv{k, m[k]}
	}
	return out
}

// testbeds lists the machines of the headers, one entry for headers that
// describe the same testbed.
func testbeds(headers []results.Header) []htmlTestbed {
	var out []htmlTestbed
	var seen []results.Testbed
	for _, h := range headers {
		i := slices.IndexFunc(seen, func(t results.Testbed) bool { return reflect.DeepEqual(t, h.Testbed) })
		if i >= 0 {
			out[i].Experiments = appendUnique(out[i].Experiments, h.ExperimentID)
			continue
		}
		seen = append(seen, h.Testbed)
		t := h.Testbed
		mem := "unknown"
		if t.MemoryBytes > 0 {
			mem = fmt.Sprintf("%.1f GiB", float64(t.MemoryBytes)/(1<<30))
		}
		cores := "unknown"
		if t.Cores > 0 {
			cores = strconv.Itoa(t.Cores)
		}
		out = append(out, htmlTestbed{
			Experiments: appendUnique(nil, h.ExperimentID),
			Facts: []kv{
				{"host", orUnknown(t.Hostname)}, {"CPU", orUnknown(t.CPUModel)}, {"cores", cores}, {"memory", mem},
				{"kernel", orUnknown(t.Kernel)}, {"cgroup mode", orUnknown(t.CgroupMode)},
				{"CPU governor", orUnknown(t.CPUGovernor)}, {"CPU boost", orUnknown(t.CPUBoost)},
			},
			Platform: sortedKV(t.PlatformVersion),
			Runtimes: sortedKV(t.RuntimeVersions),
			Notes:    t.Notes,
		})
	}
	return out
}

func appendUnique(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// experiments shows each header's experiment as run: a few facts read from
// its spec when they are there, and the whole of it as JSON.
func experiments(headers []results.Header) []htmlExperiment {
	var out []htmlExperiment
	for _, h := range headers {
		e := htmlExperiment{ID: h.ExperimentID, Tool: strings.TrimSpace(h.Tool.Name + " " + h.Tool.Version + " " + h.Tool.Commit + " " + h.Tool.GoVersion)}
		if !h.Created.IsZero() {
			e.Created = h.Created.UTC().Format(time.RFC3339)
		}
		b, err := json.MarshalIndent(h.Experiment, "", "  ")
		if err == nil {
			e.JSON = string(b)
		}
		var doc struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec map[string]any `json:"spec"`
		}
		if err == nil && json.Unmarshal(b, &doc) == nil {
			if doc.Metadata.Name != "" {
				e.Facts = append(e.Facts, kv{"name", doc.Metadata.Name})
			}
			for _, k := range []string{"platform", "runtimes", "scales", "iterations", "warmups", "requestTimeout", "deadline", "probeInterval"} {
				v, ok := doc.Spec[k]
				if !ok {
					continue
				}
				e.Facts = append(e.Facts, kv{k, factString(k, v)})
			}
		}
		out = append(out, e)
	}
	return out
}

func factString(k string, v any) string {
	if k == "runtimes" {
		if list, ok := v.([]any); ok {
			var parts []string
			for _, r := range list {
				m, _ := r.(map[string]any)
				name, _ := m["name"].(string)
				s := name
				if handler, _ := m["handler"].(string); handler != name {
					s += " (handler " + strconv.Quote(handler) + ")"
				}
				if img, _ := m["image"].(string); img != "" {
					s += ": " + img
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, "; ")
		}
	}
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// phaseTables gives, per N, the median offset (ms) of every phase its view
// shows (stats.ChoosePhaseView over the cells at N, as the phase figure of
// that N) over each runtime's successful attempts (in the runtime view,
// those with all rt_ phases, stats.InRuntimeView), phases in time order (by
// the mean of the runtimes' medians; ties in first-seen order). A median over fewer
// attempts than the column's n carries their number, "(9)", and partial
// says so. It reads the model's cells, whose phase offsets it sorts in
// place (PhaseView.Offsets): the model is this page's, and a copy of every
// offset would double its largest part.
func phaseTables(m *stats.Model, rows []stats.Row) (tables []htmlPhaseTable, partial bool) {
	if len(m.PhaseNames) == 0 {
		return nil, false
	}
	withPlatform := len(platforms(rows)) > 1
	cells := m.Cells()
	var scales []int
	for _, c := range cells {
		if !slices.Contains(scales, c.Key.Scale) {
			scales = append(scales, c.Key.Scale)
		}
	}
	slices.Sort(scales)
	for _, n := range scales {
		var cols []*stats.Cell
		var vcs []stats.ViewCell
		for _, c := range cells {
			if c.Key.Scale == n {
				vcs = append(vcs, c.ViewCell())
				if len(c.Phases) > 0 {
					cols = append(cols, c)
				}
			}
		}
		if len(cols) == 0 {
			continue
		}
		v := stats.ChoosePhaseView(vcs)
		names := m.PhaseNames
		if v.Runtime {
			names = m.RTPhaseNames
		}
		t, p := phaseTable(v, names, n, cols, withPlatform)
		tables = append(tables, t)
		partial = partial || p
	}
	return tables, partial
}

// phaseTable is the table of one N in view v: a column per cell (in cols
// order).
func phaseTable(v stats.PhaseView, names []string, n int, cols []*stats.Cell, withPlatform bool) (t htmlPhaseTable, partial bool) {
	offsets := make([]map[string][]float64, len(cols))
	for i, c := range cols {
		offsets[i] = v.Offsets(c)
	}
	t.Scale, t.View = n, v.Sentence()
	// n: the attempts the view reads (in the runtime view, those with rt_
	// phases).
	ns := make([]int, len(cols))
	for i, c := range cols {
		label := c.Key.Runtime
		if withPlatform {
			label = c.Key.Platform + "/" + label
		}
		ns[i] = c.Successes
		if v.Runtime {
			ns[i] = c.WithRT
		}
		t.Heads = append(t.Heads, fmt.Sprintf("%s (n = %d)", label, ns[i]))
	}
	for _, name := range stats.PhaseOrder(names, offsets) {
		row := htmlPhaseRow{Name: name}
		for i := range cols {
			o := offsets[i][name]
			switch {
			case len(o) == 0:
				row.Cells = append(row.Cells, "-")
			case len(o) < ns[i]:
				row.Cells = append(row.Cells, fmt.Sprintf("%s (%d)", ms(stats.Median(o)), len(o)))
				partial = true
			default:
				row.Cells = append(row.Cells, ms(stats.Median(o)))
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, partial
}

// failures counts failed measured attempts by runtime, N and class, with the
// first error message of each as an example.
func failures(m *stats.Model) ([]htmlFailure, int) {
	var out []htmlFailure
	total := 0
	for _, f := range m.Failures() {
		total += f.Count
		out = append(out, htmlFailure{Platform: f.Key.Platform, Runtime: f.Key.Runtime, Scale: f.Key.Scale,
			Class: f.Class, Count: f.Count, Example: f.Example})
	}
	return out, total
}
