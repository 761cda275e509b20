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
//	bin/coldbench run --runtimes runc,crun,runsc --scales 1,20 --iterations 20 --footprint-interleave -o ab.jsonl
//	go run ./bench/footprint-ab ab.jsonl
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/coldbench/coldbench/pkg/compare"
	"github.com/coldbench/coldbench/pkg/results"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/footprint-ab RECORDS.jsonl (a run made with --footprint-interleave)")
		flag.PrintDefaults()
	}
	alpha := flag.Float64("alpha", compare.DefaultAlpha, "significance level")
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *alpha); err != nil {
		fmt.Fprintln(os.Stderr, "footprint-ab:", err)
		os.Exit(1)
	}
}

func run(path string, alpha float64) error {
	set, err := results.ReadFile(path)
	if err != nil {
		return err
	}
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
	return write(res, os.Stdout)
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
