package compare

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
)

// withFootprint gives each attempt a footprint: PSS anon+shmem of mib[i]
// MiB, and CPU to first byte of 50 ms.
func withFootprint(as []results.Attempt, mib ...float64) []results.Attempt {
	for i := range as {
		pss, cpu := int64(mib[i]*(1<<20)), int64(50e6)
		as[i].Footprint = &results.Footprint{PSSAnonShmemBytes: &pss, CPUToFirstByteNS: &cpu}
	}
	return as
}

// Footprints are compared like latency: a doubled PSS is a +100 % change,
// significant; the same CPU is no change; records without footprints give
// no footprint rows, and the threshold stays the latency's.
func TestFootprintsCompared(t *testing.T) {
	ms := []float64{100, 101, 102, 103, 104, 105, 106, 107}
	a := &results.Set{Attempts: withFootprint(attempts("runc", 1, ms...), 6, 6.1, 5.9, 6.2, 6, 5.8, 6.1, 6)}
	b := &results.Set{Attempts: withFootprint(attempts("runc", 1, ms...), 12, 12.2, 11.8, 12.4, 12, 11.6, 12.2, 12)}
	res, err := Compare(a, b, Options{ThresholdPct: 10})
	if err != nil {
		t.Fatal(err)
	}
	fs := res.Rows[0].Footprint
	if len(fs) != 2 || fs[0].Figure != FigurePSSAnonShmem || fs[1].Figure != FigureCPUToFirstByte {
		t.Fatalf("footprint changes %+v", fs)
	}
	if !fs[0].Tested || !fs[0].Significant || math.Abs(fs[0].Change-1) > 0.02 {
		t.Errorf("PSS: %+v, want a significant +100 %%", fs[0])
	}
	if fs[1].Significant || fs[1].Change != 0 {
		t.Errorf("CPU: %+v, want no change", fs[1])
	}
	if res.Exceeded() {
		t.Error("a footprint change crossed the latency's threshold")
	}
	var table, js bytes.Buffer
	if err := res.Write(&table, FormatTable); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "pss anon+shmem     6.0 (8)       12.0 (8)") {
		t.Errorf("table:\n%s", table.String())
	}
	if err := res.Write(&js, FormatJSON); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"figure": "pss_anon_shmem"`) {
		t.Errorf("JSON lacks the footprint:\n%s", js.String())
	}
	plain := &results.Set{Attempts: attempts("runc", 1, ms...)}
	res, err = Compare(plain, plain, Options{})
	if err != nil {
		t.Fatal(err)
	}
	table.Reset()
	if err := res.Write(&table, FormatTable); err != nil {
		t.Fatal(err)
	}
	if res.Rows[0].Footprint != nil || strings.Contains(table.String(), "footprint") {
		t.Errorf("records without footprints: %+v\n%s", res.Rows[0].Footprint, table.String())
	}
}

// A density run's cells pool steps at different densities: compare refuses
// them rather than test a mixture.
func TestCompareRefusesDensityRuns(t *testing.T) {
	d := attempts("runc", 5, 100, 101, 102)
	for i := range d {
		d[i].Density = &results.Density{Alive: 5 * i}
	}
	_, err := Compare(&results.Set{Attempts: d}, &results.Set{Attempts: attempts("runc", 5, 100, 101, 102)}, Options{})
	if err == nil || !strings.Contains(err.Error(), "A holds a density run (runc)") {
		t.Errorf("compare of a density run: %v", err)
	}
}
