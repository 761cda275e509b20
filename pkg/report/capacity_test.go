package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// searchSet is a capacity search's records as read from a file (the header's
// experiment a map): runtime a found exactly (3 passes, 4 fails: 3/4
// answered), runtime b's records hold a pass above a failure (an edited
// file), runtime c has nothing yet; a sweep experiment beside it gives no
// capacity.
func searchSet() *results.Set {
	exp := map[string]any{"spec": map[string]any{
		"platform": "node",
		"runtimes": []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}, map[string]any{"name": "c"}},
		"search":   map[string]any{"startN": 1, "maxN": 8, "share": 1, "resolution": 0, "iterations": 1},
	}}
	set := &results.Set{Headers: []results.Header{
		{Type: results.TypeHeader, ExperimentID: "cb-search", Experiment: exp},
		{Type: results.TypeHeader, ExperimentID: "cb-sweep", Experiment: map[string]any{"spec": map[string]any{"scales": []any{1}}}},
	}}
	cell := func(id, rt string, n, answered int) {
		for i := range n {
			a := results.Attempt{Type: results.TypeAttempt, ExperimentID: id, Platform: "node", Runtime: rt, Scale: n, Instance: i}
			if i < answered {
				a.OK, a.TTFBNS = true, 1_000_000
			} else {
				a.ErrorClass = results.ErrTimeout
			}
			set.Attempts = append(set.Attempts, a)
		}
	}
	warmup := results.Attempt{Type: results.TypeAttempt, ExperimentID: "cb-search", Platform: "node", Runtime: "a", Scale: 1, Iteration: -1, Warmup: true}
	set.Attempts = append(set.Attempts, warmup)
	cell("cb-search", "a", 1, 1)
	cell("cb-search", "a", 2, 2)
	cell("cb-search", "a", 4, 3)
	cell("cb-search", "a", 3, 3)
	cell("cb-search", "b", 8, 8)
	cell("cb-search", "b", 4, 1)
	cell("cb-sweep", "a", 1, 1)
	return set
}

func TestCapacityTable(t *testing.T) {
	m := stats.FromSet(searchSet())
	var b bytes.Buffer
	if err := Write(&b, FormatTable, m, MetaFromModel(m)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"capacity search cb-search: N from 1 to 8, exact; a probe passes when at least 100% of its N answer within the request timeout in each of its 1 iteration(s)",
		"a        3                  4                   done                   1 (1/1) pass; 2 (2/2) pass; 4 (3/4) fail; 3 (3/3) pass",
		"b        0                  4                   unfinished (--resume)  8 (8/8) pass; 4 (1/4) fail",
		"c        0                  -                   unfinished (--resume)  -",
		"note: b: passed at N = [8] above the failure at 4",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "capacity search") != 1 {
		t.Errorf("want one capacity section (the sweep has none):\n%s", out)
	}
	b.Reset()
	if err := Write(&b, FormatMarkdown, m, MetaFromModel(m)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| a | 3 | 4 | done | 1 (1/1) pass; 2 (2/2) pass; 4 (3/4) fail; 3 (3/3) pass |") {
		t.Errorf("markdown lacks runtime a's row:\n%s", b.String())
	}
}

func TestCapacityJSON(t *testing.T) {
	m := stats.FromSet(searchSet())
	var b bytes.Buffer
	if err := Write(&b, FormatJSON, m, MetaFromModel(m)); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Capacity []struct {
			Runtime          string `json:"runtime"`
			LargestPassingN  int    `json:"largest_passing_n"`
			SmallestFailingN *int   `json:"smallest_failing_n"`
			Done             bool   `json:"done"`
			NonMonotone      []int  `json:"passed_above_a_failure"`
			Probes           []struct {
				N        int    `json:"n"`
				Answered []int  `json:"answered"`
				Verdict  string `json:"verdict"`
			} `json:"probes"`
		} `json:"capacity"`
	}
	if err := json.Unmarshal(b.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Capacity) != 3 {
		t.Fatalf("%d capacities, want 3:\n%s", len(rep.Capacity), b.String())
	}
	a := rep.Capacity[0]
	if a.Runtime != "a" || a.LargestPassingN != 3 || a.SmallestFailingN == nil || *a.SmallestFailingN != 4 || !a.Done ||
		len(a.Probes) != 4 || a.Probes[2].N != 4 || a.Probes[2].Answered[0] != 3 || a.Probes[2].Verdict != "fail" {
		t.Errorf("runtime a: %+v", a)
	}
	if c := rep.Capacity[2]; c.SmallestFailingN != nil || c.Done || len(c.Probes) != 0 {
		t.Errorf("runtime c: %+v", c)
	}
	// A sweep's JSON has no capacity key at all.
	sweep := stats.FromSet(&results.Set{Headers: []results.Header{{ExperimentID: "x"}}, Attempts: []results.Attempt{ok("node", "a", 1, 5)}})
	b.Reset()
	if err := Write(&b, FormatJSON, sweep, MetaFromModel(sweep)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "capacity") {
		t.Errorf("a sweep's JSON mentions capacity:\n%s", b.String())
	}
}
