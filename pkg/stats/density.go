package stats

import (
	"slices"

	"github.com/coldbench/coldbench/pkg/results"
)

// A density run's steps are ordinary cells too (N = the step's size, one
// iteration per step), so the usual rows count every attempt; what the
// density view adds is each step against the density it met, and each
// runtime's capacity with the reason its run stopped, all from the records'
// density fields (results.Density).

// Density is one runtime's density run.
type Density struct {
	ExperimentID, Platform, Runtime string
	// Steps in the order they ran.
	Steps []DensityStep
	// Capacity is how many instances answered over the steps less those
	// lost after (OOM-killed, crashed): those running when the run stopped.
	Capacity int
	// Stop is why the run stopped (the last step's stop conditions); empty
	// when it was cut short (interrupt, deadline) before one held.
	Stop []string
}

// DensityStep is one step of a density run.
type DensityStep struct {
	Step int // its number (the cell's iteration)
	// Alive is the instances running when the step's were started; N the
	// step's instances, Answered those that answered (and were kept); Lost
	// the kept instances found no longer running after the step.
	Alive, N, Answered, Lost int
	// TTFB of the answered ones (ns).
	TTFB Summary
	// PSSAnonShmem is the median per answered instance with a footprint
	// (bytes; N = 0: not measured); MemAvailablePerInstance is the step's
	// drop of the node's MemAvailable over its instances.
	PSSAnonShmem, MemAvailablePerInstance Estimate
	// MemAvailable after the step (bytes; nil: not read).
	MemAvailable *int64
	Stop         []string
}

// densityLog keeps the density fields of measured attempts, per experiment,
// runtime and step, in order of first record.
type densityLog struct {
	steps map[densityKey]*densityAcc
	order []densityKey
}

type densityKey struct {
	experiment, platform, runtime string
	step                          int
}

type densityAcc struct {
	alive, n, answered int
	lost               int
	ttfb               []int64
	anonShmem          []float64
	perInstance        *float64
	memAvailable       *int64
	stop               []string
}

func (l *densityLog) add(a *results.Attempt) {
	d := a.Density
	if d == nil || a.Warmup {
		return
	}
	if l.steps == nil {
		l.steps = map[densityKey]*densityAcc{}
	}
	k := densityKey{a.ExperimentID, a.Platform, a.Runtime, a.Iteration}
	s := l.steps[k]
	if s == nil {
		s = &densityAcc{alive: d.Alive, lost: d.Lost, memAvailable: d.MemAvailableBytes}
		l.steps[k] = s
		l.order = append(l.order, k)
	}
	s.n++
	if len(d.Stop) > 0 {
		s.stop = d.Stop
	}
	if f := a.Footprint; f != nil && s.perInstance == nil && f.NodeMemAvailableDropBytes != nil && f.NodeInstances > 0 {
		v := float64(*f.NodeMemAvailableDropBytes) / float64(f.NodeInstances)
		s.perInstance = &v
	}
	if !a.OK {
		return
	}
	s.answered++
	s.ttfb = append(s.ttfb, a.TTFBNS)
	if f := a.Footprint; f != nil && f.PSSAnonShmemBytes != nil {
		s.anonShmem = append(s.anonShmem, float64(*f.PSSAnonShmemBytes))
	}
}

// Densities returns each density run's runtimes (experiments and runtimes
// in order of first record), steps in order.
func (m *Model) Densities() []Density {
	var out []Density
	idx := map[[3]string]int{}
	for _, k := range m.densityLog.order {
		s := m.densityLog.steps[k]
		rk := [3]string{k.experiment, k.platform, k.runtime}
		i, seen := idx[rk]
		if !seen {
			i = len(out)
			idx[rk] = i
			out = append(out, Density{ExperimentID: k.experiment, Platform: k.platform, Runtime: k.runtime})
		}
		st := DensityStep{Step: k.step, Alive: s.alive, N: s.n, Answered: s.answered, Lost: s.lost, TTFB: Summarize(s.ttfb),
			PSSAnonShmem: estimate(s.anonShmem), MemAvailable: s.memAvailable, Stop: s.stop}
		if s.perInstance != nil {
			st.MemAvailablePerInstance = Estimate{N: 1, Median: *s.perInstance}
		}
		out[i].Steps = append(out[i].Steps, st)
		out[i].Capacity += s.answered - s.lost
	}
	for i := range out {
		d := &out[i]
		slices.SortStableFunc(d.Steps, func(a, b DensityStep) int { return a.Step - b.Step })
		d.Stop = d.Steps[len(d.Steps)-1].Stop // empty unless the last step stopped the run
	}
	return out
}
