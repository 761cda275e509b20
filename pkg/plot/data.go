package plot

import (
	"cmp"
	"math"
	"slices"

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
	// responded[i] is the number of successful attempts of the i-th
	// iteration (in order of appearance; an iteration is identified by
	// experiment id and number, so runs appended to one file stay apart;
	// only iterations that have records).
	responded []int
	// phaseMS maps a phase name to the offsets (ms) of that phase in the
	// successful attempts that recorded it.
	phaseMS map[string][]float64
}

// data is a results set arranged for plotting.
type data struct {
	series     []*series
	scales     []int // ascending
	cells      map[cellKey]*cell
	phaseNames []string // first-seen order over successful attempts
	platforms  []string
}

func newData(set *results.Set) *data {
	d := &data{cells: map[cellKey]*cell{}}
	rows := stats.Group(set)
	for _, r := range rows {
		if !slices.Contains(d.platforms, r.Platform) {
			d.platforms = append(d.platforms, r.Platform)
		}
	}
	byName := map[[2]string]*series{}
	for _, r := range rows {
		k := [2]string{r.Platform, r.Runtime}
		s := byName[k]
		if s == nil {
			label := r.Runtime
			if label == "" {
				label = "(default)"
			}
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
		d.cells[cellKey{r.Platform, r.Runtime, r.Scale}] = &cell{series: s, scale: r.Scale, row: r, phaseMS: map[string][]float64{}}
	}
	slices.Sort(d.scales)

	type iterKey struct {
		c          *cell
		experiment string
		iter       int
	}
	perIter := map[iterKey]int{}
	iters := map[*cell][]iterKey{}
	for i := range set.Attempts {
		a := &set.Attempts[i]
		if a.Warmup {
			continue
		}
		c := d.cells[cellKey{a.Platform, a.Runtime, a.Scale}]
		if c == nil {
			continue
		}
		k := iterKey{c, a.ExperimentID, a.Iteration}
		if _, seen := perIter[k]; !seen {
			iters[c] = append(iters[c], k)
			perIter[k] = 0
		}
		if !a.OK {
			continue
		}
		perIter[k]++
		c.okMS = append(c.okMS, float64(a.TTFBNS)/1e6)
		for _, p := range a.Phases {
			if !slices.Contains(d.phaseNames, p.Name) {
				d.phaseNames = append(d.phaseNames, p.Name)
			}
			c.phaseMS[p.Name] = append(c.phaseMS[p.Name], float64(p.OffsetNS)/1e6)
		}
	}
	for c, its := range iters {
		for _, k := range its {
			c.responded = append(c.responded, perIter[k])
		}
	}
	for _, c := range d.cells {
		slices.Sort(c.okMS)
		for _, v := range c.phaseMS {
			slices.Sort(v)
		}
	}
	return d
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

// phaseStep is one segment of a stacked phase bar: the time from the end
// of the previous segment until the phase's median offset.
type phaseStep struct {
	name     string
	from, to float64 // ms
	// early: the phase was recorded, but its median offset (median) lies
	// below the top of the stack so far, so its segment is empty.
	early  bool
	median float64
}

// phaseOrder orders the phase names seen in cells by their median offset
// pooled over the cells (ties and missing medians keep first-seen order),
// so the stack follows the time line.
func (d *data) phaseOrder(cells []*cell) []string {
	type ph struct {
		name  string
		first int
		med   float64
	}
	var list []ph
	for i, name := range d.phaseNames {
		var pooled []float64
		for _, c := range cells {
			pooled = append(pooled, c.phaseMS[name]...)
		}
		if len(pooled) == 0 {
			continue
		}
		slices.Sort(pooled)
		list = append(list, ph{name, i, stats.Median(pooled)})
	}
	slices.SortStableFunc(list, func(a, b ph) int {
		if c := cmp.Compare(a.med, b.med); c != 0 {
			return c
		}
		return cmp.Compare(a.first, b.first)
	})
	names := make([]string, len(list))
	for i, p := range list {
		names[i] = p.name
	}
	return names
}

// phaseSteps turns the median offset of each phase (in order) into
// non-negative stacked segments: a phase whose median comes before the
// stack's current top (the order differs in this cell) gets a zero-height
// segment rather than a negative one, so the top of the stack is the largest
// median offset.
func (c *cell) phaseSteps(order []string) []phaseStep {
	steps := make([]phaseStep, len(order))
	top := 0.0
	for i, name := range order {
		steps[i] = phaseStep{name: name, from: top, to: top}
		if v := c.phaseMS[name]; len(v) > 0 {
			m := stats.Median(v)
			steps[i].median = m
			if m > top {
				steps[i].to = m
				top = m
			} else {
				steps[i].early = true
			}
		}
	}
	return steps
}
