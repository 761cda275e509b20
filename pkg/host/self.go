package host

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Self is what this process (the harness) has used so far: its CPU time
// (user + system, all threads) and its peak resident set.
type Self struct {
	CPU          time.Duration
	PeakRSSBytes int64
	// PeakFromHWM: PeakRSSBytes is VmHWM (which clear_refs resets), not
	// getrusage's maximum over the process's life.
	PeakFromHWM bool
}

// StepMeter measures what the harness uses over one step: CPU time and
// the peak RSS within the step. The kernel's high-water mark (VmHWM) is
// reset at the step's start by writing 5 to /proc/self/clear_refs (Linux
// ≥ 4.0, no privilege needed for one's own process); where that fails the
// peak is the process's since it started, and the scope says so.
type StepMeter struct {
	start     Self
	resetPeak bool
}

// Peak RSS scopes (results.Step.HarnessPeakRSSScope).
const (
	PeakScopeStep    = "step"
	PeakScopeProcess = "process"
)

// StartStep begins measuring a step.
func StartStep() *StepMeter {
	m := &StepMeter{resetPeak: os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil}
	m.start = ReadSelf()
	return m
}

// End returns the CPU time used since StartStep, the peak RSS and its scope.
func (m *StepMeter) End() (cpu time.Duration, peakRSS int64, scope string) {
	now := ReadSelf()
	scope = PeakScopeProcess
	if m.resetPeak && now.PeakFromHWM {
		scope = PeakScopeStep
	}
	return now.CPU - m.start.CPU, now.PeakRSSBytes, scope
}

// ReadSelf reads this process's usage: CPU from getrusage, the peak RSS
// from /proc/self/status (VmHWM, which clear_refs resets) or, without
// procfs, getrusage's lifetime maximum.
func ReadSelf() Self {
	var s Self
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.PeakRSSBytes = int64(ru.Maxrss) * 1024 // KiB on Linux
	}
	if hwm, ok := vmHWM(); ok {
		s.PeakRSSBytes, s.PeakFromHWM = hwm, true
	}
	return s
}

// vmHWM reads VmHWM (kB) from /proc/self/status.
func vmHWM() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "VmHWM:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0, false
			}
			return kb * 1024, true
		}
	}
	return 0, false
}
