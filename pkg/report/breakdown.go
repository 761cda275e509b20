package report

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/coldbench/coldbench/pkg/compare"
	"github.com/coldbench/coldbench/pkg/stats"
)

// The per-runtime difference (compare.Breakdowns) leads the text report and
// the HTML page: what a reader of a runtime comparison wants first is which
// part of the cold start a runtime makes longer, and by how much. Both
// render the same rows (breakdownRows), so they never disagree.

// breakdownHeading is the title line of one breakdown.
func breakdownHeading(b compare.Breakdown, withPlatform bool) string {
	where := fmt.Sprintf("N=%d", b.Scale)
	if withPlatform {
		where = b.Platform + ", " + where
	}
	return fmt.Sprintf("Where the runtimes differ (%s): median segment (ms) per runtime and its difference from %s, "+
		"Hodges–Lehmann shift [%g%% CI]", where, b.Baseline, 100*stats.CIConfidence)
}

// breakdownRows is one breakdown as a table: a header, then a row per
// segment: the baseline's median, then per other runtime its median and
// its difference from the baseline.
func breakdownRows(b compare.Breakdown) (head []string, rows [][]string) {
	head = []string{"SEGMENT", fmt.Sprintf("%s (n=%d)", b.Baseline, b.BaseAttempts)}
	for _, r := range b.Runtimes {
		head = append(head, fmt.Sprintf("%s (n=%d)", r.Runtime, r.Attempts), r.Runtime+"−"+b.Baseline)
	}
	if len(b.Runtimes) == 0 {
		return head, nil
	}
	for i, seg := range b.Runtimes[0].Segments {
		row := []string{seg.Name(), sideMS(seg.Base)}
		for _, r := range b.Runtimes {
			s := r.Segments[i]
			row = append(row, sideMS(s.Other), s.DiffText())
		}
		rows = append(rows, row)
	}
	return head, rows
}

// sideMS is a runtime's median segment, "-" when no attempt has both ends.
func sideMS(s compare.SegmentSide) string {
	if s.N == 0 {
		return "-"
	}
	return ms(s.Median)
}

// breakdownNote explains what the table's numbers are.
const breakdownNote = "A segment runs from one phase to the next of the same causal chain, taken in each attempt: " +
	"first the chain from the start to the first byte, then the shim's report of the user container's start " +
	"and the queue-proxy's, which run beside it; " +
	"a negative one means the later phase's stamp came first (see the phase figure's notes)."

// writeBreakdownsText writes the breakdowns, each with its view, table and
// one sentence per runtime; nothing when there are none.
func writeBreakdownsText(ew *errWriter, bs []compare.Breakdown, withPlatform bool) error {
	for _, b := range bs {
		ew.printf("%s\n%s\n%s\n", breakdownHeading(b, withPlatform), b.View.Sentence(), breakdownNote)
		head, rows := breakdownRows(b)
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, r := range b.Runtimes {
			ew.printf("%s\n", b.Sentence(r))
		}
		ew.printf("\n")
	}
	return ew.err
}

// htmlBreakdown is one breakdown on the HTML page.
type htmlBreakdown struct {
	Heading, View string
	Head          []string
	Rows          [][]string
	Sentences     []string
}

func htmlBreakdowns(bs []compare.Breakdown, withPlatform bool) []htmlBreakdown {
	var out []htmlBreakdown
	for _, b := range bs {
		h := htmlBreakdown{Heading: breakdownHeading(b, withPlatform), View: b.View.Sentence()}
		h.Head, h.Rows = breakdownRows(b)
		for _, r := range b.Runtimes {
			h.Sentences = append(h.Sentences, b.Sentence(r))
		}
		out = append(out, h)
	}
	return out
}
