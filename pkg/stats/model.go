package stats

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// The analysis model lives in stats because everything that reads records
// (report's tables and HTML page, plot's figures, compare) already depends
// on stats and needs exactly its grouping, and stats depends on nothing
// heavier than results: a package of its own would only add an import.

// CellKey identifies a cell: one runtime at one N on one platform.
type CellKey struct {
	Platform, Runtime string
	Scale             int
}

// Cell is what the analyses need of one cell's attempts, gathered in one
// pass: counts, the successful measured attempts' samples, and bounded
// failure examples. No attempt is kept.
type Cell struct {
	Key CellKey
	// Attempts, Successes, Failures, FailuresByClass, Warmups: as in Row.
	Attempts, Successes, Failures, Warmups int
	FailuresByClass                        map[string]int
	// TTFB holds the successful measured attempts' TTFB (ns) in record
	// order; TTFBIter, beside it, each one's iteration (an index into
	// Responded): the attempts of one cell start together and are not
	// independent, so a test over cells groups them (pkg/compare).
	TTFB     []int64
	TTFBIter []int
	// Phases maps a phase name to its offsets (ns) in the successful
	// measured attempts that recorded it, in record order (an output may
	// sort them in place: no analysis depends on their order).
	Phases map[string][]float64
	// WithRT counts the successful measured attempts the runtime view
	// reads (view.go's InRuntimeView): every rt_ phase of the platform, no
	// "partial: " note. AnyRT counts those with at least one rt_ phase.
	WithRT, AnyRT int
	// RTPhases maps each phase the runtime view shows (RuntimeViewPhase)
	// to its offsets (ns) in those WithRT attempts: one entry per attempt,
	// in record order, NaN where the attempt lacks the phase. Columns
	// aligned by attempt, because a segment between two phases is taken
	// attempt by attempt (pkg/compare's breakdown), not as a difference of
	// medians. Kept under Model.NoPhases (the text report's breakdown reads
	// it), dropped under Model.NoRuntimeView.
	RTPhases map[string][]float64
	// Responded is, per iteration (experiment id and number, so sessions
	// and experiments appended to one file stay apart; in order of first
	// record), the number of successful measured attempts.
	Responded []int

	iterIdx map[iterKey]int
	// Measured steps' figures, each step once (steps.go), and the waits
	// for a node of measured attempts.
	steps    []stepFigures
	stepSeen map[iterKey]bool
	waits    []float64
	waitedOK int
	// clock: whose clock the measured attempts' stamps are, and the
	// kernel-stamped ones' read lags (ns).
	clock    ClockSummary
	readLags []float64
	// rtSources: the distinct RuntimePhases values of WithRT attempts that
	// name a source (view.go's ViewCell).
	rtSources []string
	// footprint: the successful measured attempts' footprints (footprint.go).
	footprint footprintSamples
	// densitySteps counts the density run steps (iterations with a density
	// record) among the cell's.
	densitySteps int
}

type iterKey struct {
	experiment string
	iteration  int
}

// FailureGroup is the failed measured attempts of one cell and class.
type FailureGroup struct {
	Key     CellKey
	Class   string
	Count   int
	Example string // the first one's error message
}

// Model is a results set reduced, in one pass over the records, to what
// every analysis reads: headers whole (there are few), per cell the
// samples and counts, failures by class with one example each, and the
// span of attempt start times. Its memory grows with the number of
// successful attempts (one TTFB and the phase offsets each), not with the
// size of the records.
type Model struct {
	Headers  []results.Header
	Warnings []string // from the reader
	// PhaseNames in first-seen order over successful measured attempts.
	PhaseNames []string
	// First and Last are the earliest and latest attempt start (zero if
	// none recorded one).
	First, Last time.Time
	// Records counts the attempts added.
	Records int
	// NoPhases, set before adding attempts, leaves Cell.Phases and
	// PhaseNames empty: the text report needs no phase offsets, and they
	// are most of the model's memory (8 per successful attempt).
	NoPhases bool
	// NoRuntimeView, set before adding attempts, leaves Cell.RTPhases,
	// WithRT, AnyRT and RTPhaseNames empty: for readers that show no phases at
	// all (compare).
	NoRuntimeView bool
	// RTPhaseNames are the names in Cell.RTPhases, in first-seen order.
	RTPhaseNames []string

	cells         map[CellKey]*Cell
	keys          []CellKey
	measured      []CellKey // in order of their first measured attempt
	platformOrder map[string]int
	runtimeOrder  map[string]int
	failures      []FailureGroup
	failureIdx    map[failureKey]int
	capacityLog   probeLog       // capacity.go: what a capacity search's report replays
	densityLog    densityLog     // density.go: a density run's steps
	cores         map[string]int // experiment id -> its header's testbed cores
}

type failureKey struct {
	cell  CellKey
	class string
}

// maxExampleRunes bounds a failure example (error messages can be long).
const maxExampleRunes = 400

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{cells: map[CellKey]*Cell{}, platformOrder: map[string]int{}, runtimeOrder: map[string]int{},
		failureIdx: map[failureKey]int{}}
}

// FromSet builds the model of an in-memory set.
func FromSet(set *results.Set) *Model {
	m := NewModel()
	if set == nil {
		return m
	}
	m.Headers = slices.Clone(set.Headers)
	m.Warnings = slices.Clone(set.Warnings)
	for i := range set.Attempts {
		m.AddAttempt(&set.Attempts[i])
	}
	return m
}

// Load streams and validates results files (results.Reader) into a model.
func Load(ctx context.Context, opt results.ReadOptions, files ...string) (*Model, error) {
	return NewModel().Load(ctx, opt, files...)
}

// Load streams and validates results files (results.Reader) into m.
func (m *Model) Load(ctx context.Context, opt results.ReadOptions, files ...string) (*Model, error) {
	r := results.NewReader(opt)
	for _, f := range files {
		if err := r.ReadFile(ctx, f, m.Add); err != nil {
			return nil, err
		}
	}
	m.Warnings = append(m.Warnings, r.Warnings()...)
	return m, nil
}

// Add adds one record (a results.Reader callback).
func (m *Model) Add(rec results.Record) error {
	if rec.Header != nil {
		m.Headers = append(m.Headers, *rec.Header)
	}
	if rec.Attempt != nil {
		m.AddAttempt(rec.Attempt)
	}
	return nil
}

// AddAttempt adds one attempt; a is not kept.
func (m *Model) AddAttempt(a *results.Attempt) {
	m.Records++
	m.capacityLog.add(a)
	m.densityLog.add(a)
	if _, seen := m.platformOrder[a.Platform]; !seen {
		m.platformOrder[a.Platform] = len(m.platformOrder)
	}
	if _, seen := m.runtimeOrder[a.Runtime]; !seen {
		m.runtimeOrder[a.Runtime] = len(m.runtimeOrder)
	}
	if !a.Start.IsZero() {
		if m.First.IsZero() || a.Start.Before(m.First) {
			m.First = a.Start
		}
		if a.Start.After(m.Last) {
			m.Last = a.Start
		}
	}
	k := CellKey{a.Platform, a.Runtime, a.Scale}
	c := m.cells[k]
	if c == nil {
		c = &Cell{Key: k, FailuresByClass: map[string]int{}, Phases: map[string][]float64{},
			RTPhases: map[string][]float64{}, iterIdx: map[iterKey]int{}}
		m.cells[k] = c
		m.keys = append(m.keys, k)
	}
	if a.Warmup {
		c.Warmups++
		return
	}
	if c.Attempts == 0 {
		m.measured = append(m.measured, k)
	}
	c.Attempts++
	ik := iterKey{a.ExperimentID, a.Iteration}
	it, seen := c.iterIdx[ik]
	if !seen {
		it = len(c.Responded)
		c.iterIdx[ik] = it
		c.Responded = append(c.Responded, 0)
		if a.Density != nil {
			c.densitySteps++
		}
	}
	m.addStep(c, a, ik)
	if a.OK {
		c.Successes++
		c.Responded[it]++
		c.TTFB = append(c.TTFB, a.TTFBNS)
		c.TTFBIter = append(c.TTFBIter, it)
		c.addFootprint(a, ik)
		if !m.NoRuntimeView && hasRuntimePhase(a) {
			c.AnyRT++
			if InRuntimeView(a) {
				m.addRuntimeView(c, a)
			}
		}
		if m.NoPhases {
			return
		}
		for _, p := range a.Phases {
			if results.HarnessPhase(p.Name) {
				continue // not a moment of the cold start: the harness's delay (results.PhaseUserStart)
			}
			if _, ok := c.Phases[p.Name]; !ok && !slices.Contains(m.PhaseNames, p.Name) {
				m.PhaseNames = append(m.PhaseNames, p.Name)
			}
			c.Phases[p.Name] = append(c.Phases[p.Name], float64(p.OffsetNS))
		}
		return
	}
	c.Failures++
	class := a.ErrorClass
	if class == "" {
		class = Unclassified
	}
	c.FailuresByClass[class]++
	fk := failureKey{k, class}
	i, seen := m.failureIdx[fk]
	if !seen {
		msg := a.Error
		if r := []rune(msg); len(r) > maxExampleRunes {
			msg = string(r[:maxExampleRunes]) + "…"
		}
		i = len(m.failures)
		m.failureIdx[fk] = i
		m.failures = append(m.failures, FailureGroup{Key: k, Class: class, Example: msg})
	}
	m.failures[i].Count++
}

// addRuntimeView adds a successful attempt in the runtime view to c's
// runtime-view columns, keeping them aligned: every column gets one entry,
// NaN for a phase a lacks (or a column new since earlier attempts, padded).
func (m *Model) addRuntimeView(c *Cell, a *results.Attempt) {
	i := c.WithRT
	c.WithRT++
	for _, p := range a.Phases {
		if !RuntimeViewPhase(p.Name) {
			continue
		}
		col, seen := c.RTPhases[p.Name]
		if !seen && !slices.Contains(m.RTPhaseNames, p.Name) {
			m.RTPhaseNames = append(m.RTPhaseNames, p.Name)
		}
		if len(col) > i {
			continue // a phase twice in one attempt: the first counts, as in PhaseOffset
		}
		for len(col) < i {
			col = append(col, math.NaN())
		}
		c.RTPhases[p.Name] = append(col, float64(p.OffsetNS))
	}
	for name, col := range c.RTPhases {
		if len(col) == i {
			c.RTPhases[name] = append(col, math.NaN())
		}
	}
	if s := a.RuntimePhases; (s == results.RuntimePhasesFromAgent || s == results.RuntimePhasesFromEvents) &&
		!slices.Contains(c.rtSources, s) {
		c.rtSources = append(c.rtSources, s)
	}
}

// Cells returns the cells in row order: by platform, then runtime, each in
// order of first appearance, then by N ascending.
func (m *Model) Cells() []*Cell {
	keys := slices.Clone(m.keys)
	slices.SortFunc(keys, func(x, y CellKey) int {
		if d := m.platformOrder[x.Platform] - m.platformOrder[y.Platform]; d != 0 {
			return d
		}
		if d := m.runtimeOrder[x.Runtime] - m.runtimeOrder[y.Runtime]; d != 0 {
			return d
		}
		return x.Scale - y.Scale
	})
	out := make([]*Cell, len(keys))
	for i, k := range keys {
		out[i] = m.cells[k]
	}
	return out
}

// MeasuredCells returns the cells that have measured (non-warm-up)
// attempts, in order of their first one.
func (m *Model) MeasuredCells() []*Cell {
	out := make([]*Cell, len(m.measured))
	for i, k := range m.measured {
		out[i] = m.cells[k]
	}
	return out
}

// Failures returns the failure groups in order of their first failure.
func (m *Model) Failures() []FailureGroup { return slices.Clone(m.failures) }

// Rows summarizes every cell as a report row, in Cells order.
func (m *Model) Rows() []Row {
	cells := m.Cells()
	out := make([]Row, 0, len(cells))
	for _, c := range cells {
		out = append(out, c.Row())
	}
	return out
}

// Row summarizes the cell.
func (c *Cell) Row() Row {
	byClass := make(map[string]int, len(c.FailuresByClass))
	for k, v := range c.FailuresByClass {
		byClass[k] = v
	}
	return Row{Platform: c.Key.Platform, Runtime: c.Key.Runtime, Scale: c.Key.Scale,
		Attempts: c.Attempts, Successes: c.Successes, Failures: c.Failures, FailuresByClass: byClass,
		Warmups: c.Warmups, TTFB: Summarize(c.TTFB), Steps: c.stepSummary(), Waited: c.waitSummary(),
		Footprint: c.footprintSummary(), DensitySteps: c.densitySteps, Clock: c.clockSummary()}
}
