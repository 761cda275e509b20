package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/coldbench/coldbench/pkg/stats"
)

// A density run's records get, below the usual tables (every step is an
// ordinary cell too), its steps against the density each met, and per
// runtime the capacity with the reason the run stopped. The table, markdown
// and JSON formats show it; CSV carries rows only.

// densityTable builds the section (nil: no density run in the records).
func densityTable(ds []stats.Density) *stepTable {
	if len(ds) == 0 {
		return nil
	}
	t := &stepTable{Title: "density", Names: 1,
		Head: []string{"RUNTIME", "STEP", "ALIVE BEFORE", "STARTED", "ANSWERED", "P50 ms", "P90 ms", "MAX ms",
			"PSS ANON+SHMEM MiB", "MEMAVAILABLE DROP/N MiB", "MEMAVAILABLE AFTER MiB"}}
	for _, d := range ds {
		for _, s := range d.Steps {
			lat := []string{"-", "-", "-"}
			if s.TTFB.N > 0 {
				lat = []string{ms(s.TTFB.P50), ms(s.TTFB.P90), ms(s.TTFB.Max)}
			}
			after := "not measured"
			if s.MemAvailable != nil {
				after = strconv.FormatFloat(float64(*s.MemAvailable)/(1<<20), 'f', 0, 64)
			}
			answered := strconv.Itoa(s.Answered)
			if s.Lost > 0 {
				answered += fmt.Sprintf(" (%d lost)", s.Lost)
			}
			t.Rows = append(t.Rows, append(append([]string{d.Runtime, strconv.Itoa(s.Step), strconv.Itoa(s.Alive), strconv.Itoa(s.N), answered}, lat...),
				estimateCell(s.PSSAnonShmem, 1<<20, 1), estimateCell(s.MemAvailablePerInstance, 1<<20, 1), after))
		}
	}
	t.Notes = append(t.Notes, "density: each step started STARTED instances among ALIVE BEFORE kept from the earlier steps; those that answered were kept ((k lost): kept instances found no longer running after the step). "+
		"Latencies are the step's answered instances'; PSS anon+shmem is their median after the settle; MemAvailable drop/N is the node's drop over the step divided by its instances")
	for _, d := range ds {
		t.Notes = append(t.Notes, densityVerdict(d))
	}
	return t
}

// densityVerdict is one runtime's capacity and why its run stopped.
func densityVerdict(d stats.Density) string {
	if len(d.Stop) == 0 {
		return fmt.Sprintf("%s (%s): %d instances answered before the run was cut short (interrupt or deadline), before any stop condition: a lower bound of its capacity", d.Runtime, d.ExperimentID, d.Capacity)
	}
	return fmt.Sprintf("%s (%s): capacity %d instances; stopped: %s", d.Runtime, d.ExperimentID, d.Capacity, strings.Join(d.Stop, "; "))
}

// jsonDensity is one runtime's density run in the JSON report.
type jsonDensity struct {
	ExperimentID string `json:"experiment_id"`
	Platform     string `json:"platform"`
	Runtime      string `json:"runtime"`
	// Capacity: instances that answered (kept, less those lost) before the stop; Stop is
	// empty when the run was cut short before a stop condition held.
	Capacity int               `json:"capacity"`
	Stop     []string          `json:"stop"`
	Steps    []jsonDensityStep `json:"steps"`
}

type jsonDensityStep struct {
	Step     int `json:"step"`
	Alive    int `json:"alive_before"`
	Started  int `json:"started"`
	Answered int `json:"answered"`
	Lost     int `json:"lost"`
	// TTFB of the answered instances, ms (null: none answered).
	P50MS *float64 `json:"p50_ms"`
	P90MS *float64 `json:"p90_ms"`
	MaxMS *float64 `json:"max_ms"`
	// Bytes; null: not measured.
	PSSAnonShmemBytes       *float64 `json:"pss_anon_shmem_bytes"`
	MemAvailableDropPerInst *float64 `json:"mem_available_drop_per_instance_bytes"`
	MemAvailableAfterBytes  *int64   `json:"mem_available_after_bytes"`
}

// densityJSON is the JSON report's density list (nil: left out).
func densityJSON(ds []stats.Density) []jsonDensity {
	var out []jsonDensity
	for _, d := range ds {
		j := jsonDensity{ExperimentID: d.ExperimentID, Platform: d.Platform, Runtime: d.Runtime, Capacity: d.Capacity, Stop: d.Stop, Steps: []jsonDensityStep{}}
		if j.Stop == nil {
			j.Stop = []string{}
		}
		for _, s := range d.Steps {
			js := jsonDensityStep{Step: s.Step, Alive: s.Alive, Started: s.N, Answered: s.Answered, Lost: s.Lost, MemAvailableAfterBytes: s.MemAvailable}
			if s.TTFB.N > 0 {
				p50, p90, mx := s.TTFB.P50/1e6, s.TTFB.P90/1e6, s.TTFB.Max/1e6
				js.P50MS, js.P90MS, js.MaxMS = &p50, &p90, &mx
			}
			if s.PSSAnonShmem.N > 0 {
				js.PSSAnonShmemBytes = &s.PSSAnonShmem.Median
			}
			if s.MemAvailablePerInstance.N > 0 {
				js.MemAvailableDropPerInst = &s.MemAvailablePerInstance.Median
			}
			j.Steps = append(j.Steps, js)
		}
		out = append(out, j)
	}
	return out
}
