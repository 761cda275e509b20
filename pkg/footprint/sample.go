package footprint

import (
	"slices"
	"strings"
	"time"
)

// SourceStatCPU is where a process's CPU time comes from.
const SourceStatCPU = "/proc/PID/stat utime+stime"

// ProcessSample is one process's figures in a Sample.
type ProcessSample struct {
	PID  int
	PPID int
	Comm string
	// StartAfterBoot tells this process from a later one with its PID.
	StartAfterBoot time.Duration
	CPU            time.Duration // user + system since it started
	PSSBytes       int64
	RSSBytes       int64
	// PSSAnonBytes + PSSShmemBytes is the part of PSSBytes no file backs
	// (nil before Linux 5.3 or from summed smaps).
	PSSAnonBytes, PSSShmemBytes *int64
	MemorySource                string // SourceSmapsRollup or SourceSmapsSum
}

// Sample is a set of processes (an instance's: shim, pause, runtime
// helpers, function) read once, with their sums.
type Sample struct {
	Processes []ProcessSample // in increasing PID order
	// The sums over Processes; nil when no process could be read, which a
	// report must show as "not measured", not 0.
	PSSBytes *int64
	// RSSBytes counts a page shared by two processes twice; PSSBytes
	// splits it between them, so only PSS adds up across processes.
	RSSBytes *int64
	// PSSAnonShmemBytes sums the processes' Pss_Anon + Pss_Shmem: memory
	// no file backs, which the page cache cannot give back (nil unless
	// every process's rollup has both).
	PSSAnonShmemBytes *int64
	CPU               *time.Duration
	MemorySource      string // the Processes' MemorySource; " + "-joined if they differ
	CPUSource         string // SourceStatCPU
	// Gone counts the processes that exited (or were zombies) between
	// being listed and being read: expected, and left out of the sums.
	Gone int
	// KernelThreads counts kernel threads given, left out: they have no
	// memory map and are nobody's instance.
	KernelThreads int
}

// SampleProcesses reads each process's stat and smaps_rollup (or smaps)
// and sums them. Processes that vanished are counted in Gone; any other
// error (a permission, a malformed file) is returned, naming the file.
func (fsys FS) SampleProcesses(pids []int) (Sample, error) {
	pids = slices.Clone(pids)
	slices.Sort(pids)
	pids = slices.Compact(pids) // cgroup.procs may list a PID twice
	var sample Sample
	var memorySources []string
	for _, pid := range pids {
		st, err := fsys.ReadStat(pid)
		if IsGone(err) {
			sample.Gone++
			continue
		}
		if err != nil {
			return Sample{}, err
		}
		if st.State == 'Z' || st.State == 'X' { // exited (zombie) or dying: only its PID and stat remain
			sample.Gone++
			continue
		}
		if st.KernelThread {
			sample.KernelThreads++
			continue
		}
		smaps, err := fsys.ReadSmaps(pid)
		if IsGone(err) {
			sample.Gone++
			continue
		}
		if err != nil {
			return Sample{}, err
		}
		sample.Processes = append(sample.Processes, ProcessSample{
			PID:            pid,
			PPID:           st.PPID,
			Comm:           st.Comm,
			StartAfterBoot: st.StartAfterBoot,
			CPU:            st.CPU(),
			PSSBytes:       smaps.PssBytes,
			RSSBytes:       smaps.RssBytes,
			PSSAnonBytes:   smaps.PssAnonBytes,
			PSSShmemBytes:  smaps.PssShmemBytes,
			MemorySource:   smaps.Source,
		})
		if !slices.Contains(memorySources, smaps.Source) {
			memorySources = append(memorySources, smaps.Source)
		}
	}
	if len(sample.Processes) == 0 {
		return sample, nil
	}
	var pss, rss, anonShmem int64
	var cpu time.Duration
	allAnon := true
	for _, p := range sample.Processes {
		pss += p.PSSBytes
		rss += p.RSSBytes
		cpu += p.CPU
		if p.PSSAnonBytes == nil || p.PSSShmemBytes == nil {
			allAnon = false
		} else {
			anonShmem += *p.PSSAnonBytes + *p.PSSShmemBytes
		}
	}
	sample.PSSBytes, sample.RSSBytes, sample.CPU = &pss, &rss, &cpu
	if allAnon {
		sample.PSSAnonShmemBytes = &anonShmem
	}
	slices.Sort(memorySources)
	sample.MemorySource = strings.Join(memorySources, " + ")
	sample.CPUSource = SourceStatCPU
	return sample, nil
}
