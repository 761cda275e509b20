package report

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"strconv"

	"github.com/coldbench/coldbench/pkg/stats"
)

// jsonReport is the JSON layout (schema JSONSchema). It is separate from the
// stats types so that renaming a Go field never changes the output.
type jsonReport struct {
	Schema             string    `json:"schema"`
	LatencyDefinition  string    `json:"latency_definition"`
	Unit               string    `json:"unit"`
	MedianCIConfidence float64   `json:"median_ci_confidence"`
	P99MinN            int       `json:"p99_min_n"`
	ExperimentIDs      []string  `json:"experiment_ids"`
	Files              []string  `json:"files"`
	Warnings           []string  `json:"warnings"`
	Rows               []jsonRow `json:"rows"`
	// Capacity: capacity.go; left out of a sweep's report.
	Capacity []jsonCapacity `json:"capacity,omitempty"`
	// Density: density.go; left out unless the records hold a density run.
	Density []jsonDensity `json:"density,omitempty"`
}

type jsonRow struct {
	Platform        string         `json:"platform"`
	Runtime         string         `json:"runtime"`
	Scale           int            `json:"scale"`
	Attempts        int            `json:"attempts"`
	Successes       int            `json:"successes"`
	Failures        int            `json:"failures"`
	FailuresByClass map[string]int `json:"failures_by_class"`
	Warmups         int            `json:"warmups"`
	TTFB            jsonSummary    `json:"ttfb_ns"`
	// Absent for records written before steps and waits were recorded.
	Steps         *jsonSteps `json:"steps,omitempty"`
	WaitedForNode *jsonWaits `json:"waited_for_node,omitempty"`
	// Absent when no attempt of the row has a footprint record.
	Footprint *jsonFootprint `json:"footprint,omitempty"`
	// Absent for records written before kernel stamps.
	Clock *jsonClock `json:"clock,omitempty"`
}

// jsonClock is stats.ClockSummary: whose clock the row's stamps are, and
// the kernel-stamped attempts' read lag (ns; null when none had one).
type jsonClock struct {
	Kernel  int            `json:"kernel_attempts"`
	User    int            `json:"user_attempts"`
	Notes   []string       `json:"user_notes,omitempty"`
	ReadLag *jsonMedianMax `json:"read_lag_ns"`
}

func toJSONClock(c *stats.ClockSummary) *jsonClock {
	if c == nil {
		return nil
	}
	j := &jsonClock{Kernel: c.Kernel, User: c.User, Notes: c.Notes}
	if c.LagN > 0 {
		j.ReadLag = &jsonMedianMax{Median: c.ReadLag.Median, Max: c.ReadLag.Max}
	}
	return j
}

// jsonFootprint is stats.FootprintSummary: bytes, ns and cores; a figure
// measured in no attempt is null ("not measured"), never 0.
type jsonFootprint struct {
	Attempts                int           `json:"attempts"`
	PSS                     *jsonEstimate `json:"pss_bytes"`
	PSSAnonShmem            *jsonEstimate `json:"pss_anon_shmem_bytes"`
	CgroupUsage             *jsonEstimate `json:"cgroup_usage_bytes"`
	WorkingSet              *jsonEstimate `json:"cgroup_working_set_bytes"`
	KubeletWorkingSet       *jsonEstimate `json:"kubelet_working_set_bytes,omitempty"` // knative, where the kubelet had read the pod
	MemAvailablePerInstance *jsonEstimate `json:"mem_available_drop_per_instance_bytes"`
	CPUToFirstByte          *jsonEstimate `json:"cpu_to_first_byte_ns"`
	CPUToFirstByteError     *jsonEstimate `json:"cpu_to_first_byte_error_ns,omitempty"` // knative: the bound of each interpolation between the agent's samples
	IdleCores               *jsonEstimate `json:"idle_cpu_cores"`
	Sources                 []string      `json:"sources"`
	Missing                 string        `json:"missing,omitempty"`
}

// jsonEstimate is a median over N values with its CI (null when N is too
// small for one).
type jsonEstimate struct {
	N          int      `json:"n"`
	Median     float64  `json:"median"`
	MedianCILo *float64 `json:"median_ci_lo"`
	MedianCIHi *float64 `json:"median_ci_hi"`
}

func toJSONEstimate(e stats.Estimate) *jsonEstimate {
	if e.N == 0 {
		return nil
	}
	j := &jsonEstimate{N: e.N, Median: e.Median}
	if e.CI {
		j.MedianCILo, j.MedianCIHi = ptr(e.Lo), ptr(e.Hi)
	}
	return j
}

func toJSONFootprint(f *stats.FootprintSummary) *jsonFootprint {
	if f == nil {
		return nil
	}
	return &jsonFootprint{Attempts: f.Attempts, PSS: toJSONEstimate(f.PSS), PSSAnonShmem: toJSONEstimate(f.PSSAnonShmem), CgroupUsage: toJSONEstimate(f.CgroupUsage),
		WorkingSet: toJSONEstimate(f.WorkingSet), KubeletWorkingSet: toJSONEstimate(f.KubeletWorkingSet), MemAvailablePerInstance: toJSONEstimate(f.MemAvailablePerInstance),
		CPUToFirstByte: toJSONEstimate(f.CPUToFirstByte), CPUToFirstByteError: toJSONEstimate(f.CPUToFirstByteError), IdleCores: toJSONEstimate(f.IdleCores),
		Sources: nonNil(f.Sources), Missing: f.Missing}
}

// jsonSteps is stats.StepSummary: durations in ns; the CPU share a
// fraction of the node (null when no header gave its cores).
type jsonSteps struct {
	Steps                int           `json:"steps"`
	Setup                jsonMedianMax `json:"setup_ns"`
	Teardown             jsonMedianMax `json:"teardown_ns"`
	Wall                 jsonMedianMax `json:"wall_ns"`
	HarnessCPUShareMax   *float64      `json:"harness_cpu_share_max"`
	HarnessCPUShareSteps int           `json:"harness_cpu_share_steps"`
	HarnessCPUShareGoal  float64       `json:"harness_cpu_share_goal"`
	HarnessPeakRSSMax    int64         `json:"harness_peak_rss_bytes_max"`
	HarnessPeakRSSScope  string        `json:"harness_peak_rss_scope,omitempty"`
	HarnessPeakRSSGoal   int64         `json:"harness_peak_rss_bytes_goal"`
}

type jsonMedianMax struct {
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// jsonWaits is stats.WaitSummary: attempts that waited for room on a node.
type jsonWaits struct {
	Attempts int           `json:"attempts"`
	Answered int           `json:"answered"`
	Wait     jsonMedianMax `json:"wait_ns"`
}

func toJSONSteps(s *stats.StepSummary) *jsonSteps {
	if s == nil {
		return nil
	}
	j := &jsonSteps{Steps: s.Steps, Setup: jsonMedianMax(s.Setup), Teardown: jsonMedianMax(s.Teardown), Wall: jsonMedianMax(s.Wall),
		HarnessCPUShareSteps: s.CPUShareSteps, HarnessCPUShareGoal: stats.HarnessCPUShareGoal,
		HarnessPeakRSSMax: s.HarnessPeakRSSMax, HarnessPeakRSSScope: s.HarnessPeakRSSScope, HarnessPeakRSSGoal: stats.HarnessRSSGoalBytes}
	if s.CPUShareSteps > 0 {
		j.HarnessCPUShareMax = ptr(s.HarnessCPUShareMax)
	}
	return j
}

func toJSONWaits(w *stats.WaitSummary) *jsonWaits {
	if w == nil {
		return nil
	}
	return &jsonWaits{Attempts: w.Waited, Answered: w.Answered, Wait: jsonMedianMax(w.Wait)}
}

// jsonSummary: values are null when undefined (n = 0; stdev with n < 2; the
// median interval when median_ci_ok is false) rather than a fake 0.
type jsonSummary struct {
	N           int      `json:"n"`
	Mean        *float64 `json:"mean"`
	Stdev       *float64 `json:"stdev"`
	Min         *float64 `json:"min"`
	P50         *float64 `json:"p50"`
	P90         *float64 `json:"p90"`
	P95         *float64 `json:"p95"`
	P99         *float64 `json:"p99"`
	Max         *float64 `json:"max"`
	P99Reliable bool     `json:"p99_reliable"`
	MedianCILo  *float64 `json:"median_ci_lo"`
	MedianCIHi  *float64 `json:"median_ci_hi"`
	MedianCIOK  bool     `json:"median_ci_ok"`
}

func ptr(v float64) *float64 { return &v }

func toJSONSummary(s stats.Summary) jsonSummary {
	j := jsonSummary{N: s.N, P99Reliable: s.P99Reliable, MedianCIOK: s.CIOK}
	if s.N > 0 {
		j.Mean, j.Min, j.Max = ptr(s.Mean), ptr(s.Min), ptr(s.Max)
		j.P50, j.P90, j.P95, j.P99 = ptr(s.P50), ptr(s.P90), ptr(s.P95), ptr(s.P99)
	}
	if s.N >= 2 { // a sample stdev needs two values
		j.Stdev = ptr(s.Stdev)
	}
	if s.CIOK {
		j.MedianCILo, j.MedianCIHi = ptr(s.MedianCILo), ptr(s.MedianCIHi)
	}
	return j
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w io.Writer, rows []stats.Row, meta Meta) error {
	rep := jsonReport{
		Schema:             JSONSchema,
		LatencyDefinition:  "request start → first byte of the first 2xx reply; warm-ups excluded; stats over successful attempts only",
		Unit:               "ns",
		MedianCIConfidence: stats.CIConfidence,
		P99MinN:            stats.P99MinN,
		ExperimentIDs:      nonNil(meta.ExperimentIDs),
		Files:              nonNil(meta.Files),
		Warnings:           nonNil(meta.Warnings),
		Rows:               make([]jsonRow, 0, len(rows)),
		Capacity:           capacityJSON(meta.Capacities),
		Density:            densityJSON(meta.Densities),
	}
	for _, r := range rows {
		byClass := r.FailuresByClass
		if byClass == nil {
			byClass = map[string]int{}
		}
		rep.Rows = append(rep.Rows, jsonRow{
			Platform: r.Platform, Runtime: r.Runtime, Scale: r.Scale,
			Attempts: r.Attempts, Successes: r.Successes, Failures: r.Failures,
			FailuresByClass: byClass, Warmups: r.Warmups,
			TTFB:  toJSONSummary(r.TTFB),
			Steps: toJSONSteps(r.Steps), WaitedForNode: toJSONWaits(r.Waited), Clock: toJSONClock(r.Clock),
			Footprint: toJSONFootprint(r.Footprint),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep "→" and "<" readable; this is not HTML
	return enc.Encode(rep)
}

// csvHeader: identity and counts, then latency in ms (3 decimals, as in the
// table), then the same statistics in ns at full precision. Latency cells
// are empty when undefined, as in JSON: all of them when there were no
// successes, stdev when n < 2, the CI when median_ci_ok is false. failures_by_class is "class=count" joined by ";" so it needs no
// quoting.
var csvHeader = []string{
	"platform", "runtime", "scale", "attempts", "successes", "failures", "warmups", "failures_by_class",
	"mean_ms", "stdev_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "median_ci_lo_ms", "median_ci_hi_ms",
	"p99_reliable", "median_ci_ok",
	"mean_ns", "stdev_ns", "min_ns", "p50_ns", "p90_ns", "p95_ns", "p99_ns", "max_ns", "median_ci_lo_ns", "median_ci_hi_ns",
}

// csvStepHeader and csvWaitHeader are appended to csvHeader only when some
// row has step figures, or waits for a node, so that records written
// before them load into the same columns as ever. Durations in ns.
var (
	csvStepHeader = []string{"steps", "setup_p50_ns", "setup_max_ns", "teardown_p50_ns", "teardown_max_ns", "wall_p50_ns", "wall_max_ns",
		"harness_cpu_share_max", "harness_peak_rss_bytes_max", "harness_peak_rss_scope"}
	csvWaitHeader = []string{"waited_for_node", "waited_for_node_ok", "wait_p50_ns", "wait_max_ns"}
	// csvFootprintHeader: medians, appended when some row has footprint
	// records; empty where not measured.
	csvFootprintHeader = []string{"footprint_attempts", "pss_p50_bytes", "pss_anon_shmem_p50_bytes", "cgroup_usage_p50_bytes", "cgroup_working_set_p50_bytes",
		"mem_available_drop_per_instance_p50_bytes", "cpu_to_first_byte_p50_ns", "idle_cpu_p50_cores"}
)

func csvFootprintCells(f *stats.FootprintSummary) []string {
	if f == nil {
		return make([]string, len(csvFootprintHeader))
	}
	cell := func(e stats.Estimate) string {
		if e.N == 0 {
			return ""
		}
		return strconv.FormatFloat(e.Median, 'f', -1, 64)
	}
	return []string{strconv.Itoa(f.Attempts), cell(f.PSS), cell(f.PSSAnonShmem), cell(f.CgroupUsage), cell(f.WorkingSet),
		cell(f.MemAvailablePerInstance), cell(f.CPUToFirstByte), cell(f.IdleCores)}
}

func csvStepCells(s *stats.StepSummary) []string {
	if s == nil {
		return make([]string, len(csvStepHeader))
	}
	cpu := ""
	if s.CPUShareSteps > 0 {
		cpu = strconv.FormatFloat(s.HarnessCPUShareMax, 'f', -1, 64)
	}
	return []string{strconv.Itoa(s.Steps), fullNS(s.Setup.Median), fullNS(s.Setup.Max), fullNS(s.Teardown.Median), fullNS(s.Teardown.Max),
		fullNS(s.Wall.Median), fullNS(s.Wall.Max), cpu, strconv.FormatInt(s.HarnessPeakRSSMax, 10), s.HarnessPeakRSSScope}
}

// csvClockHeader: whose clock a row's stamps are (stats.ClockSummary).
var csvClockHeader = []string{"clock_kernel_attempts", "clock_user_attempts", "read_lag_p50_ns", "read_lag_max_ns"}

func csvClockCells(c *stats.ClockSummary) []string {
	if c == nil {
		return make([]string, len(csvClockHeader))
	}
	out := []string{strconv.Itoa(c.Kernel), strconv.Itoa(c.User), "", ""}
	if c.LagN > 0 {
		out[2], out[3] = fullNS(c.ReadLag.Median), fullNS(c.ReadLag.Max)
	}
	return out
}

// csvWaitCells: a row with step figures but no waits had none (0).
func csvWaitCells(w *stats.WaitSummary, recorded bool) []string {
	switch {
	case w == nil && recorded:
		return []string{"0", "0", "", ""}
	case w == nil:
		return make([]string, len(csvWaitHeader))
	}
	return []string{strconv.Itoa(w.Waited), strconv.Itoa(w.Answered), fullNS(w.Wait.Median), fullNS(w.Wait.Max)}
}

func writeCSV(w io.Writer, rows []stats.Row, _ Meta) error { // CSV carries rows only (see Meta)
	cw := csv.NewWriter(w)
	var anySteps, anyWaits, anyFootprint, anyClock bool
	for _, r := range rows {
		anySteps = anySteps || r.Steps != nil
		anyWaits = anyWaits || r.Waited != nil
		anyFootprint = anyFootprint || r.Footprint != nil
		anyClock = anyClock || r.Clock != nil
	}
	header := slices.Clone(csvHeader)
	if anySteps {
		header = append(header, csvStepHeader...)
	}
	if anyWaits {
		header = append(header, csvWaitHeader...)
	}
	if anyFootprint {
		header = append(header, csvFootprintHeader...)
	}
	if anyClock {
		header = append(header, csvClockHeader...)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{r.Platform, r.Runtime, strconv.Itoa(r.Scale), strconv.Itoa(r.Attempts), strconv.Itoa(r.Successes),
			strconv.Itoa(r.Failures), strconv.Itoa(r.Warmups), failureList(r.FailuresByClass, ";")}
		// Same nil-when-undefined rules as the JSON output.
		j := toJSONSummary(r.TTFB)
		vals := []*float64{j.Mean, j.Stdev, j.Min, j.P50, j.P90, j.P95, j.P99, j.Max, j.MedianCILo, j.MedianCIHi}
		cell := func(v *float64, f func(float64) string) string {
			if v == nil {
				return ""
			}
			return f(*v)
		}
		for _, v := range vals {
			rec = append(rec, cell(v, ms))
		}
		rec = append(rec, strconv.FormatBool(j.P99Reliable), strconv.FormatBool(j.MedianCIOK))
		for _, v := range vals {
			rec = append(rec, cell(v, fullNS))
		}
		if anySteps {
			rec = append(rec, csvStepCells(r.Steps)...)
		}
		if anyWaits {
			rec = append(rec, csvWaitCells(r.Waited, r.Steps != nil)...)
		}
		if anyFootprint {
			rec = append(rec, csvFootprintCells(r.Footprint)...)
		}
		if anyClock {
			rec = append(rec, csvClockCells(r.Clock)...)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
