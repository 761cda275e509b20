package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

const sec = int64(1e9)

var columns = regexp.MustCompile(`\s{2,}`)

// stepsFixture: runc at N = 2 over experiments A (4 cores) and B (8) with
// a warm-up step whose figures would top every maximum; crun at N = 1 with
// one step over both goals (harness CPU 3 %, RSS 200 MiB) and no waits; and
// kata at N = 1 from records written before step figures existed.
func stepsFixture() *results.Set {
	set := &results.Set{Headers: []results.Header{
		{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "A", Testbed: results.Testbed{Cores: 4}},
		{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "B", Testbed: results.Testbed{Cores: 8}},
	}}
	step := func(id, rt string, n, it int, warmup bool, st results.Step, waits map[int]*results.Unschedulable) {
		for i := range n {
			a := ok("knative", rt, n, int64(1000+it)*1e6)
			a.ExperimentID, a.Iteration, a.Instance, a.Warmup, a.Step = id, it, i, warmup, &st
			if u := waits[i]; u != nil {
				a.Unschedulable = u
				if !u.Scheduled {
					a.OK, a.TTFBNS, a.ErrorClass = false, 0, results.ErrNotScheduled
				}
			}
			set.Attempts = append(set.Attempts, a)
		}
	}
	cpu := func(r string) *results.Unschedulable {
		return &results.Unschedulable{Reason: "0/1 nodes are available: 1 Insufficient cpu.", WaitNS: 0, Scheduled: r == "scheduled"}
	}
	w := func(u *results.Unschedulable, ns int64) *results.Unschedulable { u.WaitNS = ns; return u }
	step("A", "runc", 2, 0, true, results.Step{WallNS: 100 * sec, SetupNS: 50 * sec, TeardownNS: 40 * sec, HarnessCPUNS: 40 * sec, HarnessPeakRSSBytes: 200 << 20, HarnessPeakRSSScope: "step"},
		map[int]*results.Unschedulable{0: w(cpu("scheduled"), 100*sec)})
	step("A", "runc", 2, 1, false, results.Step{WallNS: 10 * sec, SetupNS: 4 * sec, TeardownNS: 1 * sec, HarnessCPUNS: 400e6, HarnessPeakRSSBytes: 100 << 20, HarnessPeakRSSScope: "step"},
		map[int]*results.Unschedulable{0: w(cpu("scheduled"), 3*sec)})
	step("A", "runc", 2, 2, false, results.Step{WallNS: 20 * sec, SetupNS: 8 * sec, TeardownNS: 3 * sec, HarnessCPUNS: 1200e6, HarnessPeakRSSBytes: 120 << 20, HarnessPeakRSSScope: "process"},
		map[int]*results.Unschedulable{1: w(cpu(""), 61*sec)})
	step("B", "runc", 2, 1, false, results.Step{WallNS: 12 * sec, SetupNS: 2 * sec, TeardownNS: 2 * sec, HarnessCPUNS: 1600e6, HarnessPeakRSSBytes: 90 << 20, HarnessPeakRSSScope: "step"},
		map[int]*results.Unschedulable{0: w(cpu("scheduled"), 5*sec)})
	step("B", "crun", 1, 0, false, results.Step{WallNS: 10 * sec, SetupNS: sec, TeardownNS: sec, HarnessCPUNS: 2400e6, HarnessPeakRSSBytes: 200 << 20, HarnessPeakRSSScope: "step"}, nil)
	set.Attempts = append(set.Attempts, ok("knative", "kata", 1, 2e9))
	return set
}

func TestGoldenSteps(t *testing.T) {
	set := stepsFixture()
	meta := MetaFromSet(set, "runs/steps.jsonl")
	for _, f := range Formats() {
		t.Run(f, func(t *testing.T) { golden(t, "steps_"+f, render(t, f, set, meta)) })
	}
}

// The figures, hand-computed (see stepsFixture and pkg/stats's test of
// the same set): runc's steps A/1, A/2, B/1 once each, warm-up excluded;
// harness CPU 1.6/(12×8) = 1.67 % (B's cores); RSS 120 MiB, the process's;
// waits 3, 61, 5 s, two of the three answered. crun: 2.4/(10×8) = 3 % and
// 200 MiB, both over their goals; no waits. kata: no figures at all.
func TestStepsTableFigures(t *testing.T) {
	out := string(render(t, FormatTable, stepsFixture(), Meta{}))
	_, steps, found := strings.Cut(out, "\nsteps\n")
	if !found {
		t.Fatalf("no steps table:\n%s", out)
	}
	want := map[string][]string{
		"runc": {"3", "4.000/8.000", "2.000/3.000", "12.000/20.000", "1.67%", "120.0 MiB+", "3 (2)", "5.000/61.000"},
		"crun": {"1", "1.000/1.000", "1.000/1.000", "10.000/10.000", "3.00%!", "200.0 MiB!", "0", "-"},
	}
	lines := strings.Split(steps, "\n")
	for rt, cells := range want {
		var got []string
		for _, l := range lines {
			// tabwriter pads columns with two spaces or more
			if f := columns.Split(strings.TrimSpace(l), -1); len(f) > 2 && f[0] == rt {
				got = f[2:]
			}
		}
		if strings.Join(got, "|") != strings.Join(cells, "|") {
			t.Errorf("%s: steps row %q, want %q\n%s", rt, got, cells, steps)
		}
	}
	if strings.Contains(steps, "kata") {
		t.Errorf("kata has no step figures, yet a steps row:\n%s", steps)
	}
	for _, note := range []string{"! over its goal", "+ peak since the process started", "waited for a node:"} {
		if !strings.Contains(steps, note) {
			t.Errorf("no note %q:\n%s", note, steps)
		}
	}
}

// JSON and CSV carry the same figures at full precision; a row without
// them has no steps fields in JSON.
func TestStepsMachineFormats(t *testing.T) {
	var rep struct {
		Rows []struct {
			Runtime string
			Steps   *struct {
				Steps    int
				Setup    struct{ Median, Max float64 } `json:"setup_ns"`
				CPUShare *float64                      `json:"harness_cpu_share_max"`
				RSS      int64                         `json:"harness_peak_rss_bytes_max"`
				Scope    string                        `json:"harness_peak_rss_scope"`
			}
			Waited *struct {
				Attempts, Answered int
				Wait               struct{ Median, Max float64 } `json:"wait_ns"`
			} `json:"waited_for_node"`
		}
	}
	if err := json.Unmarshal(render(t, FormatJSON, stepsFixture(), Meta{}), &rep); err != nil {
		t.Fatal(err)
	}
	r := rep.Rows[0]
	if r.Runtime != "runc" || r.Steps == nil || r.Steps.Steps != 3 || r.Steps.Setup.Median != 4e9 || r.Steps.Setup.Max != 8e9 ||
		r.Steps.CPUShare == nil || *r.Steps.CPUShare != 1.6/96 || r.Steps.RSS != 120<<20 || r.Steps.Scope != "process" {
		t.Errorf("json runc steps: %+v", r.Steps)
	}
	if w := r.Waited; w == nil || w.Attempts != 3 || w.Answered != 2 || w.Wait.Median != 5e9 || w.Wait.Max != 61e9 {
		t.Errorf("json runc waits: %+v", w)
	}
	if k := rep.Rows[2]; k.Runtime != "kata" || k.Steps != nil || k.Waited != nil {
		t.Errorf("json kata: %+v", k)
	}

	recs, err := csv.NewReader(bytes.NewReader(render(t, FormatCSV, stepsFixture(), Meta{}))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for name, want := range map[string]string{"steps": "3", "wall_p50_ns": "12000000000", "harness_cpu_share_max": "0.016666666666666666",
		"harness_peak_rss_scope": "process", "waited_for_node": "3", "waited_for_node_ok": "2", "wait_max_ns": "61000000000"} {
		if i, ok := col[name]; !ok || recs[1][i] != want {
			t.Errorf("csv runc %s: %q, want %q (header %v)", name, recs[1][min(i, len(recs[1])-1)], want, recs[0])
		}
	}
}

// Records written before step figures and waits report exactly as before:
// no steps table, no empty columns or fields.
func TestNoStepFiguresNoStepOutput(t *testing.T) {
	set, meta := fixture()
	for _, f := range Formats() {
		out := string(render(t, f, set, meta))
		for _, s := range []string{"steps", "STEPS", "waited"} {
			if strings.Contains(out, s) {
				t.Errorf("%s: %q in the report of records without step figures", f, s)
			}
		}
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, set, meta, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), `id="steps"`) {
		t.Error("html: a steps table for records without step figures")
	}
	page.Reset()
	if err := WriteHTML(&page, stepsFixture(), meta, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`id="steps"`, "<td class=\"num\">1.67%</td>", "<td class=\"num\">3 (2)</td>"} {
		if !strings.Contains(page.String(), s) {
			t.Errorf("html: no %s", s)
		}
	}
}

// clockFixture: runc at N = 1 on kernel stamps, its goroutine reading the
// first byte 40 µs, 100 µs and 2 ms after the kernel's stamp; crun at N = 1
// on user-space stamps for want of one; kata from records written before.
func clockFixture() *results.Set {
	set := &results.Set{Headers: []results.Header{{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "A"}}}
	for i, lag := range []int64{40e3, 100e3, 2e6} {
		a := ok("node", "runc", 1, 500e6)
		a.ExperimentID, a.Iteration, a.Timestamps = "A", i, results.TimestampsKernel
		a.Phases = []results.Phase{{Name: results.PhaseFirstByte, OffsetNS: 500e6}, {Name: results.PhaseUserFirstByte, OffsetNS: 500e6 + lag}}
		set.Attempts = append(set.Attempts, a)
	}
	for i := range 2 {
		a := ok("node", "crun", 1, 400e6)
		a.ExperimentID, a.Iteration = "A", i
		a.Timestamps, a.TimestampsNote = results.TimestampsUser, "instance 0: the kernel gave no receive stamp for the reply's first byte"
		set.Attempts = append(set.Attempts, a)
	}
	kata := ok("node", "kata", 1, 2e9)
	kata.ExperimentID = "A"
	set.Attempts = append(set.Attempts, kata)
	return set
}

// The steps table says whose clock each row's stamps are and how late
// coldbench's own read was; JSON and CSV carry the same.
func TestClockColumns(t *testing.T) {
	out := string(render(t, FormatTable, clockFixture(), Meta{}))
	_, steps, found := strings.Cut(out, "\nsteps\n")
	if !found {
		t.Fatalf("no steps table:\n%s", out)
	}
	want := map[string][]string{"runc": {"kernel", "0.100/2.000"}, "crun": {"user", "-"}}
	for rt, cells := range want {
		var got []string
		for _, l := range strings.Split(steps, "\n") {
			if f := columns.Split(strings.TrimSpace(l), -1); len(f) > 2 && f[0] == rt {
				got = f[2:]
			}
		}
		if strings.Join(got, "|") != strings.Join(cells, "|") {
			t.Errorf("%s: row %q, want %q\n%s", rt, got, cells, steps)
		}
	}
	if !strings.Contains(steps, "user-space stamps at crun N=1: instance 0: the kernel gave no receive stamp") || strings.Contains(steps, "kata") {
		t.Errorf("notes or rows:\n%s", steps)
	}
	var rep struct {
		Rows []struct {
			Runtime string
			Clock   *struct {
				Kernel  int                            `json:"kernel_attempts"`
				User    int                            `json:"user_attempts"`
				ReadLag *struct{ Median, Max float64 } `json:"read_lag_ns"`
			}
		}
	}
	if err := json.Unmarshal(render(t, FormatJSON, clockFixture(), Meta{}), &rep); err != nil {
		t.Fatal(err)
	}
	if c := rep.Rows[0].Clock; c == nil || c.Kernel != 3 || c.User != 0 || c.ReadLag == nil || c.ReadLag.Median != 100e3 || c.ReadLag.Max != 2e6 {
		t.Errorf("json runc clock: %+v", c)
	}
	if c := rep.Rows[1].Clock; c == nil || c.Kernel != 0 || c.User != 2 || c.ReadLag != nil {
		t.Errorf("json crun clock: %+v", c)
	}
	if rep.Rows[2].Clock != nil {
		t.Errorf("json kata clock: %+v, want none", rep.Rows[2].Clock)
	}
	recs, err := csv.NewReader(bytes.NewReader(render(t, FormatCSV, clockFixture(), Meta{}))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	h := strings.Join(recs[0], ",")
	if !strings.HasSuffix(h, "clock_kernel_attempts,clock_user_attempts,read_lag_p50_ns,read_lag_max_ns") ||
		strings.Join(recs[1][len(recs[1])-4:], ",") != "3,0,100000,2000000" {
		t.Errorf("csv: %q / %q", h, recs[1])
	}
}
