// Command footprint-ab shows whether measuring footprints changes the
// latencies coldbench records. It reads a run made with
// --footprint-interleave, where the footprint of odd iterations only was
// measured, so that the even ones, measured in the same run between them,
// are the control (two runs one after the other differ by the host's drift:
// 3.5–12 % between two runs without footprint here, see docs/footprint.md).
// It splits the attempts by iteration parity and compares, per runtime and
// N, the time to first byte without footprint (A) and with it (B) as
// `coldbench compare` does: medians, the Hodges–Lehmann change with its
// confidence interval and the Mann–Whitney p-value.
//
// Those tests take every attempt as independent, but the N attempts of a
// cell start together and share its conditions, and the host drifts from
// cell to cell: at N > 1 they overstate the evidence. The paired test below
// them takes each cell's median as one sample and pairs each control cell
// (iteration 2k) with the same runtime's measured cell of the next iteration
// (2k+1; the other runtimes' cells run in between), which shares its drift: the median change over the pairs, how many pairs were slower
// when measured, and the exact Wilcoxon signed-rank p of the log ratios.
// Several runs' files pool their attempts and their pairs (a pair never
// spans two runs).
//
//	bin/coldbench run --runtimes runc,crun,runsc --scales 1,20 --iterations 20 --footprint-interleave -o ab.jsonl
//	go run ./bench/footprint-ab ab.jsonl [more runs' files]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/coldbench/coldbench/pkg/compare"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/footprint-ab RECORDS.jsonl... (runs made with --footprint-interleave)")
		flag.PrintDefaults()
	}
	alpha := flag.Float64("alpha", compare.DefaultAlpha, "significance level")
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Args(), *alpha); err != nil {
		fmt.Fprintln(os.Stderr, "footprint-ab:", err)
		os.Exit(1)
	}
}

func run(paths []string, alpha float64) error {
	set, err := results.ReadFiles(paths...)
	if err != nil {
		return err
	}
	path := strings.Join(paths, ", ")
	if err := checkInterleaved(set); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	off := &results.Set{Headers: set.Headers}
	on := &results.Set{Headers: set.Headers}
	measured := 0
	for _, a := range set.Attempts {
		if a.Warmup {
			continue
		}
		if a.Iteration%2 == 0 {
			if a.Footprint != nil {
				return fmt.Errorf("%s: iteration %d of %s N=%d has a footprint: not an interleaved run", path, a.Iteration, a.Runtime, a.Scale)
			}
			off.Attempts = append(off.Attempts, a)
			continue
		}
		if a.Footprint != nil {
			measured++
		}
		on.Attempts = append(on.Attempts, a)
	}
	fmt.Printf("%s: A = even iterations, footprint not measured (%d attempts); B = odd iterations, measured (%d attempts, %d with a footprint)\n\n",
		path, len(off.Attempts), len(on.Attempts), measured)
	res, err := compare.Compare(off, on, compare.Options{Alpha: alpha})
	if err != nil {
		return err
	}
	write, err := compare.ByName(compare.FormatTable)
	if err != nil {
		return err
	}
	if err := write(res, os.Stdout); err != nil {
		return err
	}
	return pairedCells(set, alpha)
}

// cellKey names one runtime and N of the run.
type cellKey struct {
	runtime string
	scale   int
}

// cellID is one cell of one run.
type cellID struct {
	experiment string
	iteration  int
}

// pairedCells prints the cell-level paired test (see the package comment).
func pairedCells(set *results.Set, alpha float64) error {
	ttfb := map[cellKey]map[cellID][]float64{} // successful attempts' ms, by cell
	var keys []cellKey
	for _, a := range set.Attempts {
		if a.Warmup || !a.OK {
			continue
		}
		k := cellKey{a.Runtime, a.Scale}
		if ttfb[k] == nil {
			ttfb[k] = map[cellID][]float64{}
			keys = append(keys, k)
		}
		id := cellID{a.ExperimentID, a.Iteration}
		ttfb[k][id] = append(ttfb[k][id], float64(a.TTFBNS)/1e6)
	}
	fmt.Printf("\npaired cells: each control cell (iteration 2k) with the same runtime and N's measured cell of the next iteration (2k+1); a cell's sample is the median time to first byte of its successful attempts\n")
	fmt.Printf("change = median over the pairs of B/A − 1; B slower = pairs whose measured cell was slower; p = exact Wilcoxon signed-rank test of log(B/A), two-sided (pairs with no difference dropped)\n\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNTIME\tN\tPAIRS\tCHANGE\tB SLOWER\tP\t")
	for _, k := range keys {
		var a, b, d []float64
		for id, c := range ttfb[k] {
			m, ok := ttfb[k][cellID{id.experiment, id.iteration + 1}]
			if id.iteration%2 != 0 || !ok {
				continue
			}
			slices.Sort(c)
			slices.Sort(m)
			ma, mb := stats.Median(c), stats.Median(m)
			a, b, d = append(a, ma), append(b, mb), append(d, math.Log(mb/ma))
		}
		if len(d) == 0 {
			fmt.Fprintf(tw, "%s\t%d\t0\t-\t-\t-\t\n", k.runtime, k.scale)
			continue
		}
		_, p, _, err := stats.SignedRank(d)
		if err != nil {
			fmt.Fprintf(tw, "%s\t%d\t%d\t-\t-\t- (%v)\t\n", k.runtime, k.scale, len(d), err)
			continue
		}
		slower := 0
		for _, v := range d {
			if v > 0 {
				slower++
			}
		}
		sig := ""
		if p < alpha {
			sig = " (significant)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%+.1f%%\t%d/%d\t%.3f%s\t\n", k.runtime, k.scale, len(d), 100*stats.PairedMedianRatio(a, b), slower, len(d), p, sig)
	}
	return tw.Flush()
}

// checkInterleaved refuses records whose header does not say
// spec.footprint.interleave: their iterations' parity means nothing.
func checkInterleaved(set *results.Set) error {
	if len(set.Headers) == 0 {
		return fmt.Errorf("no header record")
	}
	for _, h := range set.Headers {
		raw, err := json.Marshal(h.Experiment)
		if err != nil {
			return err
		}
		var e struct {
			Spec struct {
				Footprint *struct {
					Interleave bool `json:"interleave"`
				} `json:"footprint"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		if e.Spec.Footprint == nil || !e.Spec.Footprint.Interleave {
			return fmt.Errorf("experiment %s was not run with --footprint-interleave (spec.footprint.interleave): its iterations are not an A/B", h.ExperimentID)
		}
	}
	return nil
}
