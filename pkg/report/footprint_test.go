package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

func i64(v int64) *int64 { return &v }

// footprintFixture: runsc at N = 1 over 6 iterations with every figure
// (PSS 60..65 MiB, MemAvailable drop 70 MiB a step); runc at N = 2 with
// PSS not measured in either attempt; crun from records without
// footprints.
func footprintFixture() *results.Set {
	set := &results.Set{Headers: []results.Header{{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "A"}}}
	for it := range 6 {
		a := ok("node", "runsc", 1, 1e9)
		a.ExperimentID, a.Iteration = "A", it
		a.Footprint = &results.Footprint{Source: results.FootprintFromNode, PSSBytes: i64(int64(60+it) << 20), PSSAnonShmemBytes: i64(63 << 20),
			CgroupUsageBytes: i64(40 << 20), CgroupWorkingSetBytes: i64(38 << 20), CPUToFirstByteNS: i64(int64(300+it) * 1e6),
			IdleCPUNS: i64(2e6), IdleWindowNS: 1e9, NodeMemAvailableDropBytes: i64(70 << 20), NodeInstances: 1}
		set.Attempts = append(set.Attempts, a)
	}
	for i := range 2 {
		a := ok("node", "runc", 2, 1e8)
		a.ExperimentID, a.Instance = "A", i
		a.Footprint = &results.Footprint{Source: results.FootprintFromNode, CPUToFirstByteNS: i64(80e6), CPUToFirstByteErrorNS: i64(int64(4+2*i) * 1e6), Missing: "shim: cannot tell the shim",
			NodeMemAvailableDropBytes: i64(30 << 20), NodeInstances: 3, NodeInstancesAnswered: 2}
		if i == 0 {
			a.Footprint.PSSAnonShmemBytes = i64(9 << 20)
		}
		set.Attempts = append(set.Attempts, a)
	}
	set.Attempts = append(set.Attempts, ok("node", "crun", 1, 1e8))
	return set
}

func TestFootprintTable(t *testing.T) {
	out := string(render(t, FormatTable, footprintFixture(), Meta{}))
	_, table, found := strings.Cut(out, "\nfootprint\n")
	if !found {
		t.Fatalf("no footprint table:\n%s", out)
	}
	want := map[string][]string{
		// median of 60..65 is 62.5; the 95 % CI of a median of 6 is [min, max]
		"runsc": {"6/6", "62.5 [60.0, 65.0]", "63.0 [63.0, 63.0]", "40.0 [40.0, 40.0]", "38.0 [38.0, 38.0]", "70.0 [70.0, 70.0]", "10%", "302.5 [300.0, 305.0]", "2.0 [2.0, 2.0]"},
		// PSS anon+shmem in one of the two; 30 MiB over 3 running, of which 2 answered
		// the CPU's bound interpolated between samples (± 4 and 6 ms): its median
		"runc": {"2/2", "not measured", "9.0 (n=1)", "not measured", "not measured", "10.0", "10%†", "80.0 ±5.0", "not measured"},
	}
	for rt, cells := range want {
		var got []string
		for _, l := range strings.Split(table, "\n") {
			if f := columns.Split(strings.TrimSpace(l), -1); len(f) > 2 && f[0] == rt {
				got = f[2:]
			}
		}
		if strings.Join(got, "|") != strings.Join(cells, "|") {
			t.Errorf("%s: footprint row %q, want %q\n%s", rt, got, cells, table)
		}
	}
	if strings.Contains(table, "crun") {
		t.Errorf("crun has no footprint records, yet a row:\n%s", table)
	}
	for _, note := range []string{"sources: " + results.FootprintFromNode, "(n=k): the figure was measured in k", "† in some steps not every running instance had answered", "not measured in some attempts: runc N=2: shim: cannot tell the shim", "CPU to first byte ±e: interpolated between the node agent's samples"} {
		if !strings.Contains(table, note) {
			t.Errorf("no note %q:\n%s", note, table)
		}
	}
	var rep struct {
		Rows []struct {
			Runtime   string
			Footprint *struct {
				Attempts int
				PSS      *struct {
					N          int
					Median     float64
					MedianCILo *float64 `json:"median_ci_lo"`
				} `json:"pss_bytes"`
			}
		}
	}
	if err := json.Unmarshal(render(t, FormatJSON, footprintFixture(), Meta{}), &rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Rows {
		switch r.Runtime {
		case "runsc":
			if f := r.Footprint; f == nil || f.PSS == nil || f.PSS.N != 6 || f.PSS.Median != 62.5*(1<<20) || f.PSS.MedianCILo == nil {
				t.Errorf("json runsc footprint %+v", f)
			}
		case "runc":
			if f := r.Footprint; f == nil || f.PSS != nil {
				t.Errorf("json runc: PSS not measured must be null, got %+v", f)
			}
		case "crun":
			if r.Footprint != nil {
				t.Errorf("json crun has a footprint")
			}
		}
	}
	csv := string(render(t, FormatCSV, footprintFixture(), Meta{}))
	if !strings.Contains(strings.SplitN(csv, "\n", 2)[0], "pss_p50_bytes") {
		t.Errorf("csv header without footprint columns:\n%s", csv)
	}
	html := renderHTML(t, footprintFixture(), Meta{})
	if !strings.Contains(html, `<h3 id="footprint">Footprint</h3>`) || !strings.Contains(html, "62.5 [60.0, 65.0]") {
		t.Error("the HTML report has no footprint table")
	}
}

// Knative records with the kubelet's figures beside the node agent's get
// a kubelet column, with (n=k) where the kubelet had read only some pods;
// records without them (the node backend's) get none.
func TestFootprintTableKubeletColumn(t *testing.T) {
	set := &results.Set{Headers: []results.Header{{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "K"}}}
	for i := range 3 {
		a := ok("knative", "gvisor", 3, 1e9)
		a.ExperimentID, a.Instance = "K", i
		a.Footprint = &results.Footprint{Source: results.FootprintFromAgent, PSSBytes: i64(130 << 20), CgroupWorkingSetBytes: i64(40 << 20),
			Kubelet: &results.KubeletFootprint{Missing: "memory: the kubelet had not read the pod's yet"}}
		if i == 0 {
			a.Footprint.Kubelet = &results.KubeletFootprint{WorkingSetBytes: i64(41 << 20)}
		}
		set.Attempts = append(set.Attempts, a)
	}
	out := string(render(t, FormatTable, set, Meta{}))
	_, table, _ := strings.Cut(out, "\nfootprint\n")
	if !strings.Contains(table, "KUBELET WORKING SET MiB") || !strings.Contains(table, "41.0 (n=1)") || !strings.Contains(table, "kubelet working set: the pod cgroup's") {
		t.Errorf("no kubelet column with its figure and note:\n%s", table)
	}
	if node := string(render(t, FormatTable, footprintFixture(), Meta{})); strings.Contains(node, "KUBELET") {
		t.Errorf("a kubelet column without kubelet figures:\n%s", node)
	}
}
