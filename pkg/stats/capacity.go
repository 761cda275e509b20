package stats

import (
	"encoding/json"
	"slices"

	"github.com/coldbench/coldbench/pkg/capacity"
	"github.com/coldbench/coldbench/pkg/results"
)

// Capacity is what a capacity search's records say for one runtime: the
// search's parameters (from the header), the probes in the order they were
// recorded, and the result of pkg/capacity's rules over them, the same
// rules the run followed, so the report's answer is the run's.
type Capacity struct {
	ExperimentID, Platform, Runtime string
	Search                          capacity.Search
	// Result: Largest passing N, SmallestFailing N (0: none), Done, and
	// passes above a failure (NonMonotone).
	Result capacity.Result
	Probes []CapacityProbe
}

// CapacityProbe is one N probed: the answered instances of each recorded
// iteration (in iteration order), out of N, and the verdict.
type CapacityProbe struct {
	N        int
	Required int   // instances that must answer for an iteration to pass
	Answered []int // per recorded iteration
	Verdict  capacity.Verdict
}

// probeLog keeps, per experiment, runtime, N and iteration, the number of
// answered measured attempts, in order of first record: a few numbers per
// cell, whatever the experiment (only search experiments read them).
type probeLog struct {
	cells map[probeKey]int
	order []probeKey
}

type probeKey struct {
	experiment, runtime string
	scale, iteration    int
}

func (l *probeLog) add(a *results.Attempt) {
	if a.Warmup {
		return
	}
	if l.cells == nil {
		l.cells = map[probeKey]int{}
	}
	k := probeKey{a.ExperimentID, a.Runtime, a.Scale, a.Iteration}
	n, seen := l.cells[k]
	if !seen {
		l.order = append(l.order, k)
	}
	if a.OK {
		n++
	}
	l.cells[k] = n
}

// searchHeader is what Capacities reads of a header's experiment.
type searchHeader struct {
	Spec struct {
		Platform string `json:"platform"`
		Runtimes []struct {
			Name string `json:"name"`
		} `json:"runtimes"`
		Search *capacity.Search `json:"search"`
	} `json:"spec"`
}

// Capacities returns, for each capacity search among the headers (in
// order, each experiment once) and each of its runtimes, what its records
// say. Experiments that are sweeps give none.
func (m *Model) Capacities() []Capacity {
	var out []Capacity
	seen := map[string]bool{}
	for _, h := range m.Headers {
		if seen[h.ExperimentID] {
			continue
		}
		seen[h.ExperimentID] = true
		var sh searchHeader
		raw, err := json.Marshal(h.Experiment)
		if err != nil || json.Unmarshal(raw, &sh) != nil || sh.Spec.Search == nil {
			continue // not a search (or not a header this version reads)
		}
		for _, rt := range sh.Spec.Runtimes {
			out = append(out, m.capacityLog.capacity(h.ExperimentID, sh.Spec.Platform, rt.Name, *sh.Spec.Search))
		}
	}
	return out
}

// capacity replays one runtime's recorded probes through the search's rules.
func (l *probeLog) capacity(id, platform, runtime string, s capacity.Search) Capacity {
	c := Capacity{ExperimentID: id, Platform: platform, Runtime: runtime, Search: s}
	o := capacity.Outcomes{}
	var ns []int // in order of first record
	for _, k := range l.order {
		if k.experiment != id || k.runtime != runtime {
			continue
		}
		if o[k.scale] == nil {
			ns = append(ns, k.scale)
		}
		o.Add(k.scale, k.iteration, l.cells[k])
	}
	for _, n := range ns {
		p := CapacityProbe{N: n, Required: s.Required(n)}
		its := make([]int, 0, len(o[n]))
		for it := range o[n] {
			its = append(its, it)
		}
		slices.Sort(its)
		for _, it := range its {
			p.Answered = append(p.Answered, o[n][it])
		}
		p.Verdict, _ = s.Verdict(n, o[n])
		c.Probes = append(c.Probes, p)
	}
	c.Result = s.Result(o)
	return c
}
