package compare

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Output formats (ByName).
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

// Reporter renders a comparison in one format: compare's shape of
// report.Reporter, since a comparison reads two models through a Result.
type Reporter func(r *Result, w io.Writer) error

// reporters by format name; Formats gives their order.
var reporters = map[string]Reporter{FormatTable: (*Result).writeTable, FormatJSON: (*Result).writeJSON}

// Formats lists the output formats, default first.
func Formats() []string { return []string{FormatTable, FormatJSON} }

// ByName returns the reporter of a format ("" is the default, table). An
// unknown format is an error naming the valid ones.
func ByName(format string) (Reporter, error) {
	if format == "" {
		format = FormatTable
	}
	if rep, ok := reporters[format]; ok {
		return rep, nil
	}
	return nil, fmt.Errorf("unknown format %q; valid formats: %s", format, strings.Join(Formats(), ", "))
}

// JSONSchema identifies the layout of the JSON output.
const JSONSchema = "coldbench.dev/compare/v1"

// Run compares the results files a and b (b may be "" with Pairs: the
// runtimes of a against each other), writes the comparison to w in format
// and reports whether a significant change crossed the threshold.
func Run(ctx context.Context, w io.Writer, format, a, b string, opt Options) (exceeded bool, err error) {
	rep, err := ByName(format)
	if err != nil {
		return false, err
	}
	res, err := Files(ctx, a, b, opt)
	if err != nil {
		return false, err
	}
	if err := rep(res, w); err != nil {
		return false, err
	}
	return res.Exceeded(), nil
}

// Write renders the comparison in the named format (ByName): a table
// (benchstat-like) or JSON.
func (r *Result) Write(w io.Writer, format string) error {
	rep, err := ByName(format)
	if err != nil {
		return err
	}
	return rep(r, w)
}

func pct(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "?"
	}
	s := strconv.FormatFloat(100*f, 'f', 1, 64)
	if s == "-0.0" {
		s = "0.0"
	}
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s + "%"
}

// changeCells are the Δ, CI and p columns of a tested change ("-" when
// not tested; "~" for Δ when not significant).
func changeCells(tested, significant, ciOK bool, change, lo, hi, p float64) (delta, ci, pv string) {
	if !tested {
		return "-", "-", "-"
	}
	delta = pct(change)
	if !significant {
		delta = "~"
	}
	ci = "[" + pct(lo) + ", " + pct(hi) + "]"
	if !ciOK {
		ci = "n/a"
	}
	return delta, ci, pval(p)
}

func pval(p float64) string {
	if p < 0.001 {
		return "<0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

func msCell(s Side) string {
	if s.Successes == 0 {
		return "-"
	}
	return strconv.FormatFloat(s.Median/1e6, 'f', 3, 64)
}

func okCell(s Side) string {
	if !s.Present {
		return "-"
	}
	return fmt.Sprintf("%d/%d", s.Successes, s.Attempts)
}

func (r Row) runtimeLabel() string {
	if r.A.Runtime == r.B.Runtime {
		return r.A.Runtime
	}
	return r.A.Runtime + " → " + r.B.Runtime
}

// note explains a row whose statistics are missing or limited.
func (r Row) note() string {
	switch {
	case !r.A.Present:
		return "only in B"
	case !r.B.Present:
		return "only in A"
	case r.A.Successes == 0 && r.B.Successes == 0:
		return "no successful attempt in A or B"
	case r.A.Successes == 0:
		return "no successful attempt in A"
	case r.B.Successes == 0:
		return "no successful attempt in B"
	}
	var notes []string
	if !r.CIOK {
		notes = append(notes, "too few samples for the CI")
	}
	if r.Test.Ties {
		notes = append(notes, "ties: normal approximation")
	}
	if ct := r.CellTest; ct != nil && r.Significant && !r.CellSignificant {
		notes = append(notes, fmt.Sprintf("not significant over cells (p %s, %d vs %d cells)", pval(ct.P), r.CellsA, r.CellsB))
	}
	if r.Exceeds {
		notes = append(notes, "EXCEEDS THRESHOLD")
	}
	return strings.Join(notes, "; ")
}

func (r *Result) multiPlatform() bool {
	for _, row := range r.Rows {
		if row.Platform != r.Rows[0].Platform {
			return true
		}
	}
	return false
}

func (r *Result) writeTable(w io.Writer) error {
	o := r.Options
	conf := fmt.Sprintf("%g%%", 100*(1-o.Alpha))
	var head []string
	describe := func(label string, files, exps []string) {
		s := label + ": " + strings.Join(files, ", ")
		if len(exps) > 0 {
			s += " (experiment " + strings.Join(exps, ", ") + ")"
		}
		head = append(head, s)
	}
	describe("A", r.FilesA, r.ExperimentsA)
	describe("B", r.FilesB, r.ExperimentsB)
	for _, w := range r.Warnings {
		head = append(head, "warning: "+w)
	}
	head = append(head,
		"median = median time to first byte of the successful attempts (ms); OK = successful/measured; warm-ups excluded",
		"Δ = change from A to B: Hodges–Lehmann estimate of B/A − 1 with its "+conf+" CI (distribution-free)",
		fmt.Sprintf("p = Mann–Whitney U test, two-sided; ~ = no significant change (p ≥ %g)", o.Alpha),
		"at N > 1 the attempts of a cell start together and are not independent: the same test over cells (each cell's median one value) is in the JSON (cell_p), and a row says when it does not confirm p")
	if o.ThresholdPct > 0 {
		dir := map[string]string{DirectionBoth: "either way", DirectionSlower: "slower", DirectionFaster: "faster"}[o.Direction]
		head = append(head, fmt.Sprintf("threshold: a significant change of %g%% or more (%s) exits with status %d",
			o.ThresholdPct, dir, ExitThresholdExceeded))
	}
	var b strings.Builder
	for _, l := range head {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	cols := []string{"RUNTIME", "N", "A MEDIAN", "A OK", "B MEDIAN", "B OK", "Δ", conf + " CI", "P", "NOTE"}
	multi := r.multiPlatform()
	if multi {
		cols = append([]string{"PLATFORM"}, cols...)
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, row := range r.Rows {
		delta, ci, p := changeCells(row.Tested, row.Significant, row.CIOK, row.Change, row.ChangeLo, row.ChangeHi, row.Test.P)
		cells := []string{row.runtimeLabel(), strconv.Itoa(row.Scale), msCell(row.A), okCell(row.A), msCell(row.B), okCell(row.B),
			delta, ci, p, row.note()}
		if multi {
			cells = append([]string{row.Platform}, cells...)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeFootprintTable(&b, conf, multi); err != nil {
		return err
	}
	if o.ThresholdPct > 0 {
		var over []string
		for _, row := range r.Rows {
			if row.Exceeds {
				over = append(over, fmt.Sprintf("%s N=%d %s", row.runtimeLabel(), row.Scale, pct(row.Change)))
			}
		}
		b.WriteString("\n")
		if len(over) == 0 {
			fmt.Fprintf(&b, "no significant change reaches the %g%% threshold\n", o.ThresholdPct)
		} else {
			fmt.Fprintf(&b, "%d significant change(s) reach the %g%% threshold: %s\n", len(over), o.ThresholdPct, strings.Join(over, "; "))
		}
	}
	// The empty NOTE column leaves trailing blanks; drop them.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

type jsonResult struct {
	Schema       string    `json:"schema"`
	Alpha        float64   `json:"alpha"`
	Confidence   float64   `json:"confidence"`
	ThresholdPct float64   `json:"threshold_pct"`
	Direction    string    `json:"direction"`
	FilesA       []string  `json:"files_a"`
	FilesB       []string  `json:"files_b"`
	ExperimentsA []string  `json:"experiments_a"`
	ExperimentsB []string  `json:"experiments_b"`
	Exceeded     bool      `json:"exceeded"`
	Rows         []jsonRow `json:"rows"`
	Warnings     []string  `json:"warnings,omitempty"`
}

type jsonSide struct {
	Runtime   string   `json:"runtime"`
	Present   bool     `json:"present"`
	Attempts  int      `json:"attempts"`
	Successes int      `json:"successes"`
	MedianNS  *float64 `json:"median_ns"`
}

// jsonRow: statistics are null when undefined (Tested false).
type jsonRow struct {
	Platform    string   `json:"platform"`
	Scale       int      `json:"scale"`
	A           jsonSide `json:"a"`
	B           jsonSide `json:"b"`
	Tested      bool     `json:"tested"`
	Change      *float64 `json:"change"` // fraction: 0.1 = B is 10 % slower
	ChangeLo    *float64 `json:"change_lo"`
	ChangeHi    *float64 `json:"change_hi"`
	CIOK        bool     `json:"ci_ok"`
	U           *float64 `json:"u"`
	P           *float64 `json:"p"`
	Exact       bool     `json:"exact"`
	Significant bool     `json:"significant"`
	Exceeds     bool     `json:"exceeds"`
	// CellP (N > 1, two cells a side or more): the test over cells, each
	// cell's median one value; null otherwise.
	CellP           *float64 `json:"cell_p,omitempty"`
	CellsA          int      `json:"cells_a,omitempty"`
	CellsB          int      `json:"cells_b,omitempty"`
	CellSignificant bool     `json:"cell_significant,omitempty"`
	// Footprint: left out when neither side recorded footprints.
	Footprint []jsonFootprint `json:"footprint,omitempty"`
}

// jsonFootprint is one footprint figure's comparison; medians in bytes
// (pss_anon_shmem) or ns (cpu_to_first_byte), null without values.
type jsonFootprint struct {
	Figure      string   `json:"figure"`
	NA          int      `json:"n_a"`
	NB          int      `json:"n_b"`
	MedianA     *float64 `json:"median_a"`
	MedianB     *float64 `json:"median_b"`
	Tested      bool     `json:"tested"`
	Change      *float64 `json:"change"`
	ChangeLo    *float64 `json:"change_lo"`
	ChangeHi    *float64 `json:"change_hi"`
	CIOK        bool     `json:"ci_ok"`
	P           *float64 `json:"p"`
	Significant bool     `json:"significant"`
}

func ptr(v float64) *float64 { return &v }

func toJSONSide(s Side) jsonSide {
	j := jsonSide{Runtime: s.Runtime, Present: s.Present, Attempts: s.Attempts, Successes: s.Successes}
	if s.Successes > 0 {
		j.MedianNS = ptr(s.Median)
	}
	return j
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (r *Result) writeJSON(w io.Writer) error {
	o := r.Options
	out := jsonResult{Schema: JSONSchema, Alpha: o.Alpha, Confidence: 1 - o.Alpha, ThresholdPct: o.ThresholdPct,
		Direction: o.Direction, FilesA: nonNil(r.FilesA), FilesB: nonNil(r.FilesB),
		ExperimentsA: nonNil(r.ExperimentsA), ExperimentsB: nonNil(r.ExperimentsB),
		Exceeded: r.Exceeded(), Rows: []jsonRow{}, Warnings: r.Warnings}
	for _, row := range r.Rows {
		j := jsonRow{Platform: row.Platform, Scale: row.Scale, A: toJSONSide(row.A), B: toJSONSide(row.B), Tested: row.Tested,
			CIOK: row.CIOK, Exact: row.Test.Exact, Significant: row.Significant, Exceeds: row.Exceeds}
		if row.Tested {
			j.Change, j.ChangeLo, j.ChangeHi = ptr(row.Change), ptr(row.ChangeLo), ptr(row.ChangeHi)
			j.U, j.P = ptr(row.Test.U), ptr(row.Test.P)
		}
		if ct := row.CellTest; ct != nil {
			j.CellP, j.CellsA, j.CellsB, j.CellSignificant = ptr(ct.P), row.CellsA, row.CellsB, row.CellSignificant
		}
		for _, f := range row.Footprint {
			jf := jsonFootprint{Figure: f.Figure, NA: f.NA, NB: f.NB, Tested: f.Tested, CIOK: f.CIOK, Significant: f.Significant}
			if f.NA > 0 {
				jf.MedianA = ptr(f.MedianA)
			}
			if f.NB > 0 {
				jf.MedianB = ptr(f.MedianB)
			}
			if f.Tested {
				jf.Change, jf.ChangeLo, jf.ChangeHi, jf.P = ptr(f.Change), ptr(f.ChangeLo), ptr(f.ChangeHi), ptr(f.Test.P)
			}
			j.Footprint = append(j.Footprint, jf)
		}
		out.Rows = append(out.Rows, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
