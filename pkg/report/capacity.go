package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/coldbench/coldbench/pkg/stats"
)

// A capacity search's records get, below the usual table (every probe is an
// ordinary cell), a section per search: per runtime the largest N that
// passed, the smallest that failed, whether the search is over, and the
// probes in the order they ran. The table, markdown and JSON formats show
// it; CSV carries rows only (see Meta).

// capacityRule says in words what a probe had to do to pass.
func capacityRule(c stats.Capacity) string {
	s := c.Search
	res := "exact"
	if s.Resolution > 0 {
		res = fmt.Sprintf("resolution %g", s.Resolution)
	}
	return fmt.Sprintf("capacity search %s: N from %d to %d, %s; a probe passes when at least %g%% of its N answer within the request timeout in each of its %d iteration(s)",
		c.ExperimentID, s.StartN, s.MaxN, res, 100*s.Share, s.Iterations)
}

// capacityCells are one runtime's cells of the capacity table.
func capacityCells(c stats.Capacity) []string {
	r := c.Result
	failing := "-"
	if r.SmallestFailing > 0 {
		failing = strconv.Itoa(r.SmallestFailing)
	} else if r.Done {
		failing = fmt.Sprintf("none (≥ %d)", c.Search.MaxN)
	}
	state := "done"
	if !r.Done {
		state = "unfinished (--resume)"
	}
	probes := make([]string, len(c.Probes))
	for i, p := range c.Probes {
		answered := make([]string, len(p.Answered))
		for j, a := range p.Answered {
			answered[j] = fmt.Sprintf("%d/%d", a, p.N)
		}
		probes[i] = fmt.Sprintf("%d (%s) %s", p.N, strings.Join(answered, ", "), p.Verdict)
	}
	if len(probes) == 0 {
		probes = []string{"-"}
	}
	return []string{c.Runtime, strconv.Itoa(r.Largest), failing, state, strings.Join(probes, "; ")}
}

var capacityHeader = []string{"RUNTIME", "LARGEST-PASSING-N", "SMALLEST-FAILING-N", "SEARCH", "PROBES (N (answered/N per iteration) verdict, in order)"}

// capacityNotes are the lines under a search's table: passes above a
// failure, which the answer ignores.
func capacityNotes(cs []stats.Capacity) []string {
	var notes []string
	for _, c := range cs {
		if len(c.Result.NonMonotone) > 0 {
			notes = append(notes, fmt.Sprintf("%s: passed at N = %v above the failure at %d: outcomes not monotone in N; the capacity shown is bounded by the smallest failure",
				c.Runtime, c.Result.NonMonotone, c.Result.SmallestFailing))
		}
	}
	return notes
}

// bySearch groups capacities by experiment, in order.
func bySearch(cs []stats.Capacity) [][]stats.Capacity {
	var groups [][]stats.Capacity
	for i, c := range cs {
		if i == 0 || cs[i-1].ExperimentID != c.ExperimentID {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], c)
	}
	return groups
}

// writeCapacityTable is the text table's capacity section.
func writeCapacityTable(w io.Writer, cs []stats.Capacity) error {
	ew := &errWriter{w: w}
	for _, g := range bySearch(cs) {
		ew.printf("\n%s\n\n", capacityRule(g[0]))
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(capacityHeader, "\t"))
		for _, c := range g {
			fmt.Fprintln(tw, strings.Join(capacityCells(c), "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range capacityNotes(g) {
			ew.printf("note: %s\n", n)
		}
	}
	return ew.err
}

// writeCapacityMarkdown is the markdown format's capacity section.
func writeCapacityMarkdown(w io.Writer, cs []stats.Capacity) error {
	ew := &errWriter{w: w}
	for _, g := range bySearch(cs) {
		ew.printf("\n%s\n\n|", mdEscape(capacityRule(g[0])))
		for _, h := range capacityHeader {
			ew.printf(" %s |", mdEscape(h))
		}
		ew.printf("\n| --- | ---: | ---: | --- | --- |\n")
		for _, c := range g {
			ew.printf("|")
			for _, cell := range capacityCells(c) {
				ew.printf(" %s |", mdEscape(cell))
			}
			ew.printf("\n")
		}
		for _, n := range capacityNotes(g) {
			ew.printf("\n%s\n", mdEscape("note: "+n))
		}
	}
	return ew.err
}

// jsonCapacity is one runtime's capacity in the JSON report.
type jsonCapacity struct {
	ExperimentID string `json:"experiment_id"`
	Platform     string `json:"platform"`
	Runtime      string `json:"runtime"`
	StartN       int    `json:"start_n"`
	MaxN         int    `json:"max_n"`
	// Share of N that must answer, in every one of Iterations per probe.
	Share      float64 `json:"share"`
	Resolution float64 `json:"resolution"`
	Iterations int     `json:"iterations"`
	// LargestPassingN is 0 when nothing passed; SmallestFailingN is null
	// when nothing failed (capacity ≥ max_n once done).
	LargestPassingN  int            `json:"largest_passing_n"`
	SmallestFailingN *int           `json:"smallest_failing_n"`
	Done             bool           `json:"done"`
	NonMonotone      []int          `json:"passed_above_a_failure"`
	Probes           []jsonCapProbe `json:"probes"`
}

type jsonCapProbe struct {
	N        int    `json:"n"`
	Required int    `json:"required"`
	Answered []int  `json:"answered"`
	Verdict  string `json:"verdict"`
}

// capacityJSON is the JSON report's capacity list (nil: the key is left
// out, so a sweep's report is unchanged).
func capacityJSON(cs []stats.Capacity) []jsonCapacity {
	var out []jsonCapacity
	for _, c := range cs {
		j := jsonCapacity{ExperimentID: c.ExperimentID, Platform: c.Platform, Runtime: c.Runtime,
			StartN: c.Search.StartN, MaxN: c.Search.MaxN, Share: c.Search.Share, Resolution: c.Search.Resolution,
			Iterations: c.Search.Iterations, LargestPassingN: c.Result.Largest, Done: c.Result.Done,
			NonMonotone: c.Result.NonMonotone, Probes: []jsonCapProbe{}}
		if j.NonMonotone == nil {
			j.NonMonotone = []int{}
		}
		if c.Result.SmallestFailing > 0 {
			j.SmallestFailingN = &c.Result.SmallestFailing
		}
		for _, p := range c.Probes {
			j.Probes = append(j.Probes, jsonCapProbe{N: p.N, Required: p.Required, Answered: p.Answered, Verdict: p.Verdict.String()})
		}
		out = append(out, j)
	}
	return out
}
