package plot

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// densitySet is a density run of one runtime in two steps of 2, the second
// with one failure and the stop; PSS 6 MiB, MemAvailable drop 8 MiB/N.
func densitySet() *results.Set {
	set := &results.Set{Headers: []results.Header{{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "cb-d"}}}
	pss, drop := int64(6<<20), int64(16<<20)
	for step, alive := range []int{0, 2} {
		var stop []string
		if step == 1 {
			stop = []string{"failed 1/2, above the 0% allowed (maxFailedShare 0)"}
		}
		for i := range 2 {
			a := results.Attempt{Type: results.TypeAttempt, ExperimentID: "cb-d", Platform: "node", Runtime: "runc", Scale: 2, Iteration: step,
				Instance: i, Start: time.Unix(int64(100+step), 0), Density: &results.Density{Alive: alive, Stop: stop},
				Footprint: &results.Footprint{PSSAnonShmemBytes: &pss, NodeMemAvailableDropBytes: &drop, NodeInstances: 2}}
			if step == 0 || i == 0 {
				a.OK, a.TTFBNS, a.TotalNS = true, int64((alive+i+1)*int(time.Millisecond)), int64((alive+i+1)*int(time.Millisecond))
			} else {
				a.ErrorClass = results.ErrTimeout
			}
			set.Attempts = append(set.Attempts, a)
		}
	}
	return set
}

func TestDensityFigures(t *testing.T) {
	figs, err := Figures(densitySet(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := figureNames(figs)
	for _, want := range []string{"density-latency", "density-memory", "density-capacity"} {
		if !slices.Contains(names, want) {
			t.Errorf("figures %v lack %s", names, want)
		}
	}
	for _, f := range figs {
		if f.Name == "density-capacity" && !strings.Contains(strings.Join(f.Notes, "\n"), "runc: failed 1/2") {
			t.Errorf("capacity figure's notes %q do not say why the run stopped", f.Notes)
		}
		if _, err := f.SVG(); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	// A sweep's records draw none.
	figs, err = Figures(readSet(t, nodeRecords), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range figureNames(figs) {
		if strings.HasPrefix(n, "density-") {
			t.Errorf("a sweep drew %s", n)
		}
	}
}
