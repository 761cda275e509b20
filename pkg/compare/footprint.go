package compare

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/coldbench/coldbench/pkg/stats"
)

// Footprint figures compared between A and B (FootprintChange.Figure).
const (
	FigurePSSAnonShmem   = "pss_anon_shmem"    // bytes per instance, the part of PSS no file backs
	FigureCPUToFirstByte = "cpu_to_first_byte" // ns of CPU from creation to the first byte
)

// FootprintChange is one footprint figure of a runtime at one N in A and B,
// tested as latency is: the Hodges–Lehmann change of B/A − 1 on logs with
// its interval, and the Mann–Whitney p.
type FootprintChange struct {
	Figure string
	// NA, NB: attempts with the figure; MedianA, MedianB: their medians.
	NA, NB           int
	MedianA, MedianB float64
	// Tested: both sides have the figure, so the statistics are defined.
	Tested                     bool
	Change, ChangeLo, ChangeHi float64
	CIOK                       bool
	Test                       MannWhitney
	Significant                bool
}

// compareFootprints compares the footprint figures of two cells (nil when
// neither has any).
func compareFootprints(sa, sb *stats.Cell, opt Options) []FootprintChange {
	fa, fb := sa.Footprints(), sb.Footprints()
	if len(fa.PSSAnonShmem)+len(fb.PSSAnonShmem)+len(fa.CPUToFirstByte)+len(fb.CPUToFirstByte) == 0 {
		return nil
	}
	return []FootprintChange{
		footprintChange(FigurePSSAnonShmem, fa.PSSAnonShmem, fb.PSSAnonShmem, opt),
		footprintChange(FigureCPUToFirstByte, fa.CPUToFirstByte, fb.CPUToFirstByte, opt),
	}
}

func footprintChange(figure string, a, b []float64, opt Options) FootprintChange {
	c := FootprintChange{Figure: figure, NA: len(a), NB: len(b), MedianA: median(a), MedianB: median(b)}
	if len(a) == 0 || len(b) == 0 {
		return c
	}
	c.Tested = true
	la, lb := logFloats(a), logFloats(b)
	c.Test = MannWhitneyU(la, lb)
	sh := HodgesLehmann(la, lb, 1-opt.Alpha)
	c.Change, c.ChangeLo, c.ChangeHi, c.CIOK = math.Expm1(sh.Estimate), math.Expm1(sh.Lo), math.Expm1(sh.Hi), sh.CIOK
	c.Significant = c.Test.P < opt.Alpha
	return c
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return stats.Median(slices.Sorted(slices.Values(v)))
}

// logFloats is logs for figures that are floats (a 0, which a measured
// figure should not be, is clamped to 1).
func logFloats(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Log(math.Max(x, 1))
	}
	return out
}

// writeFootprintTable adds, under the latency table, the footprint
// figures of the rows that have them (nothing when none has).
func (r *Result) writeFootprintTable(b *strings.Builder, conf string, multi bool) error {
	any := false
	for _, row := range r.Rows {
		any = any || len(row.Footprint) > 0
	}
	if !any {
		return nil
	}
	b.WriteString("\nfootprint: medians of the successful attempts that have the figure (n); PSS anon+shmem in MiB per instance, CPU to first byte in ms; Δ and p as above\n\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	cols := []string{"RUNTIME", "N", "FIGURE", "A MEDIAN (n)", "B MEDIAN (n)", "Δ", conf + " CI", "P"}
	if multi {
		cols = append([]string{"PLATFORM"}, cols...)
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, row := range r.Rows {
		for _, f := range row.Footprint {
			unit, name := 1e6, "cpu to first byte"
			if f.Figure == FigurePSSAnonShmem {
				unit, name = 1<<20, "pss anon+shmem"
			}
			side := func(n int, v float64) string {
				if n == 0 {
					return "not measured"
				}
				return fmt.Sprintf("%s (%d)", strconv.FormatFloat(v/unit, 'f', 1, 64), n)
			}
			delta, ci, p := changeCells(f.Tested, f.Significant, f.CIOK, f.Change, f.ChangeLo, f.ChangeHi, f.Test.P)
			cells := []string{row.runtimeLabel(), strconv.Itoa(row.Scale), name, side(f.NA, f.MedianA), side(f.NB, f.MedianB), delta, ci, p}
			if multi {
				cells = append([]string{row.Platform}, cells...)
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
	}
	return tw.Flush()
}
