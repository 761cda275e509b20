package host

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// The meter sees CPU the process burns within the step, and a peak
// reached in the step; after a reset, a later step does not inherit an
// earlier step's peak.
func TestStepMeterSeesCPUAndPeakOfTheStep(t *testing.T) {
	requireLinux(t)
	m := StartStep()
	spin := time.Now()
	x := 0
	for time.Since(spin) < 50*time.Millisecond { // CPU time ≤ wall time: spin to get some
		x++
	}
	const big = 64 << 20
	buf := make([]byte, big)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1 // touch: resident
	}
	cpu, peak, scope := m.End()
	if cpu <= 0 {
		t.Errorf("cpu %v after a 50 ms spin: want > 0", cpu)
	}
	if scope != PeakScopeStep {
		t.Fatalf("scope %q: clear_refs refused on Linux?", scope)
	}
	if peak < big {
		t.Errorf("peak RSS %d with %d bytes touched in the step", peak, big)
	}
	runtime.KeepAlive(buf)
	buf = nil
	debug.FreeOSMemory() // the 64 MiB go back to the OS: RSS falls
	m2 := StartStep()
	_, peak2, _ := m2.End()
	// Without the reset the high-water mark is the process's, the first
	// step's peak exactly; with it, the RSS at the second step's start,
	// lower since the buffer went back (by how much varies: under -race the
	// shadow memory stays).
	if peak2 >= peak {
		t.Errorf("second step's peak %d: want below the first step's %d after %d bytes were freed (the reset did not take)", peak2, peak, big)
	}
	_ = x
}
