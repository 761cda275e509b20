package stats

import (
	"math"
	"slices"

	"github.com/coldbench/coldbench/pkg/results"
)

// FootprintConfidence is the confidence of the footprint figures' CIs.
const FootprintConfidence = 0.95

// Estimate is a median with its distribution-free CI over N values; CI is
// false when N is too small for one (MinNForMedianCI). N = 0: not measured.
type Estimate struct {
	N              int
	Median, Lo, Hi float64
	CI             bool
}

func estimate(x []float64) Estimate {
	if len(x) == 0 {
		return Estimate{}
	}
	s := slices.Sorted(slices.Values(x))
	e := Estimate{N: len(s), Median: Median(s)}
	e.Lo, e.Hi, e.CI = MedianCI(s, FootprintConfidence)
	return e
}

// FootprintSummary is what a cell's instances cost their node: per
// successful measured attempt with a footprint record, and per step for
// the node-level cross-check.
type FootprintSummary struct {
	// Attempts counts the successful measured attempts with a footprint
	// record; each figure's N says in how many of them it was measured.
	Attempts int
	// Memory per instance (bytes) after the settle; PSSAnonShmem is the
	// part of PSS no file backs.
	PSS, PSSAnonShmem, CgroupUsage, WorkingSet Estimate
	// KubeletWorkingSet is the pod's working set as the kubelet's Summary
	// API gave it beside (knative), where it had read the pod.
	KubeletWorkingSet Estimate
	// MemAvailablePerInstance is, per step (each once), the drop of the
	// node's MemAvailable over the instances running (bytes).
	MemAvailablePerInstance Estimate
	// MixedSteps counts the steps of MemAvailablePerInstance in which not
	// every running instance had answered (some may have been starting):
	// their drop is not an idle instance's.
	MixedSteps int
	// CPU (ns) from creation to the first byte, and idle CPU as a share of
	// one core (CPU time over the idle window).
	CPUToFirstByte, IdleCores Estimate
	// CPUToFirstByteError is the error bound of the CPU to the first byte
	// where it was interpolated between samples (knative: the node
	// agent's), over the attempts that have one (ns).
	CPUToFirstByteError Estimate
	// Sources are the distinct Footprint.Source values, in order seen.
	Sources []string
	// Missing is one reason a figure was not measured (the first), if any.
	Missing string
}

// footprintSamples accumulates a cell's footprints.
type footprintSamples struct {
	attempts                          int
	pss, anonShmem, usage, workingSet []float64
	kubeletWorkingSet                 []float64
	cpu, cpuErr, idle                 []float64
	perInstance                       []float64
	mixedSteps                        int
	steps                             map[stepNode]bool
	sources                           []string
	missing                           string
}

// stepNode is one node's part of a step: on Knative a step's pods may be
// on several nodes, each with its own MemAvailable drop (the node is the
// one of the attempt's runtime clock, its agent's; "" on the node backend).
type stepNode struct {
	ik   iterKey
	node string
}

// addFootprint adds a successful measured attempt's footprint.
func (c *Cell) addFootprint(a *results.Attempt, ik iterKey) {
	f := a.Footprint
	if f == nil {
		return
	}
	s := &c.footprint
	s.attempts++
	add := func(dst *[]float64, v *int64) {
		if v != nil {
			*dst = append(*dst, float64(*v))
		}
	}
	add(&s.pss, f.PSSBytes)
	add(&s.anonShmem, f.PSSAnonShmemBytes)
	add(&s.usage, f.CgroupUsageBytes)
	add(&s.workingSet, f.CgroupWorkingSetBytes)
	if f.Kubelet != nil {
		add(&s.kubeletWorkingSet, f.Kubelet.WorkingSetBytes)
	}
	add(&s.cpu, f.CPUToFirstByteNS)
	if f.CPUToFirstByteNS != nil {
		add(&s.cpuErr, f.CPUToFirstByteErrorNS)
	}
	if f.IdleCPUNS != nil && f.IdleWindowNS > 0 {
		s.idle = append(s.idle, float64(*f.IdleCPUNS)/float64(f.IdleWindowNS))
	}
	if f.NodeMemAvailableDropBytes != nil && f.NodeInstances > 0 {
		if s.steps == nil {
			s.steps = map[stepNode]bool{}
		}
		sn := stepNode{ik: ik}
		if a.RuntimeClock != nil {
			sn.node = a.RuntimeClock.Node
		}
		if !s.steps[sn] {
			s.steps[sn] = true
			s.perInstance = append(s.perInstance, float64(*f.NodeMemAvailableDropBytes)/float64(f.NodeInstances))
			if f.NodeInstancesAnswered > 0 && f.NodeInstancesAnswered < f.NodeInstances {
				s.mixedSteps++
			}
		}
	}
	if f.Source != "" && !slices.Contains(s.sources, f.Source) {
		s.sources = append(s.sources, f.Source)
	}
	if s.missing == "" && f.Missing != "" {
		s.missing = f.Missing
	}
}

// footprintSummary summarizes the cell's footprints (nil: none recorded).
func (c *Cell) footprintSummary() *FootprintSummary {
	s := &c.footprint
	if s.attempts == 0 {
		return nil
	}
	return &FootprintSummary{Attempts: s.attempts, PSS: estimate(s.pss), PSSAnonShmem: estimate(s.anonShmem), CgroupUsage: estimate(s.usage),
		WorkingSet: estimate(s.workingSet), KubeletWorkingSet: estimate(s.kubeletWorkingSet), MemAvailablePerInstance: estimate(s.perInstance), MixedSteps: s.mixedSteps,
		CPUToFirstByte: estimate(s.cpu), CPUToFirstByteError: estimate(s.cpuErr), IdleCores: estimate(s.idle), Sources: slices.Clone(s.sources), Missing: s.missing}
}

// Agreement is how far two per-instance memory figures are apart,
// relative to the larger: |a − b| / max(a, b); NaN when either is missing.
func Agreement(a, b Estimate) float64 {
	if a.N == 0 || b.N == 0 || math.Max(a.Median, b.Median) <= 0 {
		return math.NaN()
	}
	return math.Abs(a.Median-b.Median) / math.Max(a.Median, b.Median)
}

// FootprintSamples are a cell's per-attempt footprint figures that compare
// tests: one value per successful measured attempt that has it, in record
// order (the cell's own slices: read, do not change).
type FootprintSamples struct {
	// PSSAnonShmem in bytes, CPUToFirstByte in ns.
	PSSAnonShmem, CPUToFirstByte []float64
}

// Footprints returns the cell's FootprintSamples.
func (c *Cell) Footprints() FootprintSamples {
	return FootprintSamples{PSSAnonShmem: c.footprint.anonShmem, CPUToFirstByte: c.footprint.cpu}
}
