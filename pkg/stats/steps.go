package stats

import (
	"slices"

	"github.com/coldbench/coldbench/pkg/results"
)

// What the harness itself may cost a step, as the issue sets its goals: it
// shares the node with the instances it measures and must not compete.
const (
	// HarnessCPUShareGoal bounds the harness's CPU time over a step as a
	// share of the node's (wall × cores).
	HarnessCPUShareGoal = 0.02
	// HarnessRSSGoalBytes bounds the harness's peak resident set.
	HarnessRSSGoalBytes = 150 << 20
)

// MedianMax is the median (type 7) and the maximum of a sample (ns).
type MedianMax struct {
	Median, Max float64
}

func medianMax(x []float64) MedianMax {
	if len(x) == 0 {
		return MedianMax{}
	}
	s := slices.Sorted(slices.Values(x))
	return MedianMax{Median: Median(s), Max: s[len(s)-1]}
}

// StepSummary is a cell's measured (non-warm-up) steps' figures
// (results.Step). Every attempt of a step carries the same figures: each
// step, identified by experiment id and iteration, is counted once.
type StepSummary struct {
	Steps                 int
	Setup, Teardown, Wall MedianMax // ns
	// HarnessCPUShareMax is the largest, over the steps, of the harness's
	// CPU time / (wall × the node's cores, from the experiment's header);
	// CPUShareSteps counts the steps it was computed for (a header without
	// cores, or a step without wall, gives none).
	HarnessCPUShareMax float64
	CPUShareSteps      int
	// HarnessPeakRSSMax is the largest peak RSS (bytes) of the steps, and
	// HarnessPeakRSSScope that step's scope ("step", or "process": the
	// peak since the process started).
	HarnessPeakRSSMax   int64
	HarnessPeakRSSScope string
}

// WaitSummary is a cell's measured attempts whose pod waited for room on a
// node (results.Unschedulable).
type WaitSummary struct {
	// Waited counts them; Answered those of them that succeeded (OK).
	Waited, Answered int
	Wait             MedianMax // ns
}

// ClockSummary says whose clock a cell's measured attempts' start and
// first byte are (results.Attempt.Timestamps): the kernel's stamps, or
// coldbench's own when the kernel gave none for some request of a step.
type ClockSummary struct {
	// Kernel and User count the measured attempts by Timestamps (records
	// written before it count in neither); Notes are the user-space ones'
	// distinct reasons, in first-seen order.
	Kernel, User int
	Notes        []string
	// ReadLag is how long after the kernel's receive stamp coldbench's
	// goroutine read the first byte (user_first_byte − first_byte), over
	// the successful kernel-stamped attempts (ns): what the user-space
	// stamp would have added to their latency.
	ReadLag MedianMax
	LagN    int
}

// stepFigures is one measured step of a cell.
type stepFigures struct {
	step  results.Step
	cores int
}

// addStep notes a's step once per step, its wait for a node, and whose
// clock its stamps are.
func (m *Model) addStep(c *Cell, a *results.Attempt, ik iterKey) {
	switch a.Timestamps {
	case results.TimestampsKernel:
		c.clock.Kernel++
		if uf, ok := a.PhaseOffset(results.PhaseUserFirstByte); ok && a.OK {
			c.readLags = append(c.readLags, float64(uf.Nanoseconds()-a.TTFBNS))
		}
	case results.TimestampsUser:
		c.clock.User++
		if a.TimestampsNote != "" && !slices.Contains(c.clock.Notes, a.TimestampsNote) {
			c.clock.Notes = append(c.clock.Notes, a.TimestampsNote)
		}
	}
	if u := a.Unschedulable; u != nil {
		c.waits = append(c.waits, float64(u.WaitNS))
		if a.OK {
			c.waitedOK++
		}
	}
	if a.Step == nil {
		return
	}
	if c.stepSeen == nil {
		c.stepSeen = map[iterKey]bool{}
	}
	if c.stepSeen[ik] {
		return
	}
	c.stepSeen[ik] = true
	c.steps = append(c.steps, stepFigures{step: *a.Step, cores: m.coresOf(a.ExperimentID)})
}

// coresOf is the node's cores in the header of experiment id (0: unknown).
// Headers are read before their attempts; ones added to Headers directly
// are found by a scan, then remembered, misses too.
func (m *Model) coresOf(id string) int {
	if n, ok := m.cores[id]; ok {
		return n
	}
	if m.cores == nil {
		m.cores = map[string]int{}
	}
	m.cores[id] = 0
	for _, h := range m.Headers {
		if h.ExperimentID == id && h.Testbed.Cores > 0 {
			m.cores[id] = h.Testbed.Cores
			break
		}
	}
	return m.cores[id]
}

// stepSummary summarizes the cell's steps (nil: none carried figures).
func (c *Cell) stepSummary() *StepSummary {
	if len(c.steps) == 0 {
		return nil
	}
	s := &StepSummary{Steps: len(c.steps)}
	var setup, teardown, wall []float64
	for _, f := range c.steps {
		setup = append(setup, float64(f.step.SetupNS))
		teardown = append(teardown, float64(f.step.TeardownNS))
		wall = append(wall, float64(f.step.WallNS))
		if f.cores > 0 && f.step.WallNS > 0 {
			share := float64(f.step.HarnessCPUNS) / (float64(f.step.WallNS) * float64(f.cores))
			if s.CPUShareSteps == 0 || share > s.HarnessCPUShareMax {
				s.HarnessCPUShareMax = share
			}
			s.CPUShareSteps++
		}
		if f.step.HarnessPeakRSSBytes > s.HarnessPeakRSSMax {
			s.HarnessPeakRSSMax, s.HarnessPeakRSSScope = f.step.HarnessPeakRSSBytes, f.step.HarnessPeakRSSScope
		}
	}
	s.Setup, s.Teardown, s.Wall = medianMax(setup), medianMax(teardown), medianMax(wall)
	return s
}

// waitSummary summarizes the cell's waits for a node (nil: none waited).
func (c *Cell) waitSummary() *WaitSummary {
	if len(c.waits) == 0 {
		return nil
	}
	return &WaitSummary{Waited: len(c.waits), Answered: c.waitedOK, Wait: medianMax(c.waits)}
}

// clockSummary says whose clock the cell's stamps are (nil: no record
// said).
func (c *Cell) clockSummary() *ClockSummary {
	if c.clock.Kernel+c.clock.User == 0 {
		return nil
	}
	cs := c.clock
	cs.Notes = slices.Clone(c.clock.Notes)
	cs.ReadLag, cs.LagN = medianMax(c.readLags), len(c.readLags)
	return &cs
}
