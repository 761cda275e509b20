package stats

import (
	"cmp"
	"slices"
)

// PhaseOrder orders phase names by time: by the mean, over the cells that
// reached a phase, of each cell's median offset of it (so that when every
// runtime reaches two phases in the same order, so does the order), ties in
// the order of names. A cell maps a phase name to its offsets; names no cell
// reached are left out. The figures and the HTML report share it, so a
// table and its figure list phases alike.
func PhaseOrder(names []string, cells []map[string][]float64) []string {
	type ph struct {
		name  string
		first int
		at    float64
	}
	var list []ph
	for i, name := range names {
		sum, k := 0.0, 0
		for _, c := range cells {
			if v := c[name]; len(v) > 0 {
				sum += Median(v)
				k++
			}
		}
		if k > 0 {
			list = append(list, ph{name, i, sum / float64(k)})
		}
	}
	slices.SortStableFunc(list, func(a, b ph) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.first, b.first)
	})
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.name
	}
	return out
}
