package plot

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// series is one line, bar colour and legend entry: a runtime on a platform.
type series struct {
	platform, runtime string
	label             string // runtime, or platform/runtime when there are several platforms
	index             int    // first-seen order; picks the colour
}

type cellKey struct {
	platform, runtime string
	scale             int
}

// cell is every measured (non-warm-up) attempt of one runtime at one N.
type cell struct {
	series *series
	scale  int
	row    stats.Row
	okMS   []float64 // successful attempts' TTFB in ms, ascending
	// responded is the model cell's Responded (shared, not copied): the
	// number of successful attempts per iteration, against the target N.
	responded []int
	// phaseMS maps a phase name to the offsets (ms) of that phase in the
	// successful attempts that recorded it, ascending.
	phaseMS map[string][]float64
	// rtMS is the same for the runtime view (stats.PhaseView.Offsets): its
	// phases, over the attempts with all rt_ phases only (stats.InRuntimeView).
	rtMS map[string][]float64
	// view is what stats.ChoosePhaseView reads of the cell.
	view stats.ViewCell
	// shown is phaseMS or rtMS: the offsets the phase figure of the cell's
	// N stacks, by that N's view (data.views).
	shown map[string][]float64
}

// data is a results set arranged for plotting.
type data struct {
	series     []*series
	scales     []int // ascending
	cells      map[cellKey]*cell
	phaseNames []string // first-seen order over successful attempts
	platforms  []string
	// views is each N's phase view (stats.ChoosePhaseView over the cells
	// at N: a phase figure shows every runtime at its N).
	views map[int]stats.PhaseView
}

func newData(set *results.Set) *data { return fromModel(stats.FromSet(set), false) }

// fromModel arranges the analysis model for plotting. With consume, it
// drops each cell's phase offsets from m once it has its own copy in ms,
// so that the two copies do not coexist (m's phases are then gone).
func fromModel(m *stats.Model, consume bool) *data {
	d := &data{cells: map[cellKey]*cell{}, phaseNames: slices.Clone(m.PhaseNames)}
	mc := m.Cells()
	for _, c := range mc {
		if !slices.Contains(d.platforms, c.Key.Platform) {
			d.platforms = append(d.platforms, c.Key.Platform)
		}
	}
	byName := map[[2]string]*series{}
	for _, mcell := range mc {
		r := mcell.Row()
		k := [2]string{r.Platform, r.Runtime}
		s := byName[k]
		if s == nil {
			label := stats.RuntimeLabel(r.Runtime)
			if len(d.platforms) > 1 {
				label = r.Platform + "/" + label
			}
			s = &series{platform: r.Platform, runtime: r.Runtime, label: label, index: len(d.series)}
			byName[k] = s
			d.series = append(d.series, s)
		}
		if !slices.Contains(d.scales, r.Scale) {
			d.scales = append(d.scales, r.Scale)
		}
		c := &cell{series: s, scale: r.Scale, row: r, responded: mcell.Responded}
		c.okMS = make([]float64, len(mcell.TTFB))
		for i, v := range mcell.TTFB {
			c.okMS[i] = float64(v) / 1e6
		}
		slices.Sort(c.okMS)
		c.phaseMS = toMS(mcell.Phases)
		c.view = mcell.ViewCell()
		c.rtMS = toMS(stats.PhaseView{Runtime: true}.Offsets(mcell))
		if consume {
			mcell.Phases, mcell.RTPhases = nil, nil
		}
		d.cells[cellKey{r.Platform, r.Runtime, r.Scale}] = c
	}
	slices.Sort(d.scales)
	d.chooseViews()
	return d
}

// toMS converts offsets (ns) to ms, each ascending.
func toMS(offsets map[string][]float64) map[string][]float64 {
	out := make(map[string][]float64, len(offsets))
	for name, offs := range offsets {
		v := make([]float64, len(offs))
		for i, o := range offs {
			v[i] = o / 1e6
		}
		slices.Sort(v)
		out[name] = v
	}
	return out
}

// chooseViews decides each N's phase view and points its cells' shown
// offsets at it: in the runtime view only its phases.
func (d *data) chooseViews() {
	d.views = map[int]stats.PhaseView{}
	for _, n := range d.scales {
		cells := d.cellsAt(n)
		vcs := make([]stats.ViewCell, len(cells))
		for i, c := range cells {
			vcs[i] = c.view
		}
		v := stats.ChoosePhaseView(vcs)
		d.views[n] = v
		for _, c := range cells {
			c.shown = c.phaseMS
			if v.Runtime {
				c.shown = c.rtMS
			}
		}
	}
}

// cellsAt returns the cells at scale n in series order (series without a
// cell at n are left out).
func (d *data) cellsAt(n int) []*cell {
	var out []*cell
	for _, s := range d.series {
		if c := d.cells[cellKey{s.platform, s.runtime, n}]; c != nil {
			out = append(out, c)
		}
	}
	return out
}

// nsToMS converts a stats value (ns) to ms.
func nsToMS(ns float64) float64 { return ns / 1e6 }

// meanCI is the two-sided Student-t confidence interval of the mean of a
// sample with the given size, mean and sample standard deviation (any unit).
// ok is false for n < 2.
func meanCI(n int, mean, stdev, confidence float64) (lo, hi float64, ok bool) {
	if n < 2 {
		return 0, 0, false
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(1 - (1-confidence)/2)
	half := t * stdev / math.Sqrt(float64(n))
	return mean - half, mean + half, true
}

// phaseGroup is one entry of a phase figure's stack and legend: phases
// whose median offsets coincide in every runtime of the figure (Knative's
// pod phases often come from one status update) share one segment, so no
// segment is ever empty for a tie.
type phaseGroup struct {
	names []string // in stack order; names[0] leads
	// first is the smallest first-seen index of the names: it picks the
	// colour, the same for the same phase in every figure.
	first int
}

// label is the legend text: the leading name, the others below it.
func (g phaseGroup) label() string { return strings.Join(g.names, "\n= ") }

func (g phaseGroup) has(name string) bool { return slices.Contains(g.names, name) }

// phaseStep is one segment of a stacked phase bar: the time from the end
// of the previous segment until the group's median offset.
type phaseStep struct {
	group    int     // index into the figure's groups
	from, to float64 // ms
	// empty: the median offset is not above the top of the stack so far (a
	// tie with the segment below, or a negative offset), so the segment has
	// no height.
	empty  bool
	median float64
}

// phaseOrder orders the phase names seen in cells by time (stats.PhaseOrder).
func (d *data) phaseOrder(cells []*cell) []string {
	maps := make([]map[string][]float64, len(cells))
	for i, c := range cells {
		maps[i] = c.shown
	}
	return stats.PhaseOrder(d.phaseNames, maps)
}

// phaseGroups joins the phases of order (see phaseOrder) whose median offset
// is the same as an earlier phase's in every cell, recorded in the same
// cells. The groups keep the order of their leading phases.
func (d *data) phaseGroups(cells []*cell, order []string) []phaseGroup {
	same := func(a, b string) bool {
		for _, c := range cells {
			va, vb := c.shown[a], c.shown[b]
			if (len(va) == 0) != (len(vb) == 0) {
				return false
			}
			if len(va) > 0 && stats.Median(va) != stats.Median(vb) {
				return false
			}
		}
		return true
	}
	var groups []phaseGroup
	for _, name := range order {
		idx := slices.Index(d.phaseNames, name)
		i := slices.IndexFunc(groups, func(g phaseGroup) bool { return same(g.names[0], name) })
		if i < 0 {
			groups = append(groups, phaseGroup{names: []string{name}, first: idx})
			continue
		}
		groups[i].names = append(groups[i].names, name)
		groups[i].first = min(groups[i].first, idx)
	}
	return groups
}

// phaseSteps stacks the groups this cell recorded in the cell's own time
// order (by its medians; ties keep the order of groups): each segment runs
// from the previous one's end to the group's median offset, so no segment is
// negative and the top of the stack is the latest median.
func (c *cell) phaseSteps(groups []phaseGroup) []phaseStep {
	var steps []phaseStep
	for i, g := range groups {
		if v := c.shown[g.names[0]]; len(v) > 0 {
			steps = append(steps, phaseStep{group: i, median: stats.Median(v)})
		}
	}
	slices.SortStableFunc(steps, func(a, b phaseStep) int { return cmp.Compare(a.median, b.median) })
	top := 0.0
	for i := range steps {
		st := &steps[i]
		st.from, st.to = top, top
		if st.median > top {
			st.to = st.median
			top = st.median
		} else {
			st.empty = true
		}
	}
	return steps
}
