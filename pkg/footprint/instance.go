package footprint

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// An instance (a pod sandbox) is found from its pod cgroup, which every
// process the runtime starts for it joins (pause and the function for
// runc and crun; the sandbox and the gofers for runsc; a VMM for Kata with
// sandbox_cgroup_only). Its containerd shims run outside it (containerd
// starts shims in its own cgroup) as the parents of the cgroup's top
// processes. Both platforms read instances through these functions: the
// node backend on its own node, the node agent (pkg/agent) for Knative.

// ShimComm begins the name (comm, 15 bytes) of every containerd shim:
// containerd-shim-runc-v2, -runsc-v1, -kata-v2, -urunc-v2...
const ShimComm = "containerd-shim"

// Shim is one of an instance's shims as found. InCgroup: it runs in the
// pod cgroup (Kata's sandbox_cgroup_only), whose CPU figure then already
// holds it.
type Shim struct {
	PID      int           `json:"pid"`
	Started  time.Duration `json:"started_after_boot_ns"` // tells it from a later process with its PID
	InCgroup bool          `json:"in_cgroup,omitempty"`
}

// Instance is one sandbox as found from its pod cgroup. An instance may
// have more than one shim: gVisor's shim without its grouping option runs
// one per container.
type Instance struct {
	CgroupPath string `json:"cgroup_path"` // as the CRI cgroup parent names it
	Shims      []Shim `json:"shims"`
}

// FindInstance finds the shims of the instance whose pod cgroup is
// cgroupPath from the cgroup's processes: those whose parent is outside
// the cgroup are the runtime's top processes, and their parents are the
// shims. A top process that is itself a shim runs in the cgroup. A parent
// that is not a shim (init, after its shim died; containerd) is refused
// rather than counted.
func (fsys FS) FindInstance(layout CgroupLayout, cgroupPath string) (Instance, error) {
	in := Instance{CgroupPath: cgroupPath}
	cg, err := layout.At("cpuacct", cgroupPath)
	if err != nil {
		return in, err
	}
	pids, err := cg.SubtreeProcs()
	if err != nil {
		return in, err
	}
	stats := map[int]Stat{}
	for _, pid := range pids {
		st, err := fsys.ReadStat(pid)
		if IsGone(err) {
			continue
		}
		if err != nil {
			return in, err
		}
		stats[pid] = st
	}
	seen := map[int]bool{}
	for _, pid := range slices.Sorted(maps.Keys(stats)) {
		st := stats[pid]
		if _, inside := stats[st.PPID]; inside {
			continue
		}
		if strings.HasPrefix(st.Comm, ShimComm) {
			in.Shims = append(in.Shims, Shim{PID: st.PID, Started: st.StartAfterBoot, InCgroup: true})
			continue
		}
		if seen[st.PPID] {
			continue
		}
		seen[st.PPID] = true
		parent, err := fsys.ReadStat(st.PPID)
		if err != nil {
			return in, fmt.Errorf("the parent (pid %d) of %s (pid %d) in cgroup %s: %w", st.PPID, st.Comm, st.PID, cgroupPath, err)
		}
		if !strings.HasPrefix(parent.Comm, ShimComm) {
			return in, fmt.Errorf("cannot tell the shims of cgroup %s: %s (pid %d) in it has the parent %s (pid %d), not a %s*", cgroupPath, st.Comm, st.PID, parent.Comm, parent.PID, ShimComm)
		}
		in.Shims = append(in.Shims, Shim{PID: parent.PID, Started: parent.StartAfterBoot})
	}
	if len(in.Shims) == 0 {
		return in, fmt.Errorf("cgroup %s has no process", cgroupPath)
	}
	return in, nil
}

// CPU is the CPU the pod cgroup and, outside it, the shims (with the
// children they reaped: the runtime's create and start commands, which
// exit before anything could read them) have used so far.
func (fsys FS) CPU(layout CgroupLayout, in Instance) (time.Duration, error) {
	cg, err := layout.At("cpuacct", in.CgroupPath)
	if err != nil {
		return 0, err
	}
	usage, err := cg.CPUUsage()
	if err != nil {
		return 0, err
	}
	total := usage.Usage
	for _, shim := range in.Shims {
		if shim.InCgroup {
			continue
		}
		st, err := fsys.ReadStat(shim.PID)
		if err != nil {
			return 0, err
		}
		if st.StartAfterBoot != shim.Started {
			return 0, fmt.Errorf("the shim (pid %d) exited", shim.PID)
		}
		total += st.CPU() + st.ReapedChildrenCPU
	}
	return total, nil
}

// CPUSource names where CPU's figure comes from.
func (in Instance) CPUSource(layout CgroupLayout) string {
	cg, err := layout.At("cpuacct", in.CgroupPath)
	if err != nil {
		return ""
	}
	src := fmt.Sprintf("pod cgroup %s (v%d cpu usage)", in.CgroupPath, cg.Version)
	outside := 0
	for _, shim := range in.Shims {
		if !shim.InCgroup {
			outside++
		}
	}
	if outside > 0 {
		src += fmt.Sprintf(" + %d shim(s) outside it, /proc/PID/stat utime+stime+cutime+cstime", outside)
	}
	return src
}

// Memory is an instance's memory as read once: the PSS of its processes
// and its pod cgroup's memory. A nil figure was not read (Missing says
// why); readers show "not measured", never 0.
type Memory struct {
	PSSBytes          *int64          `json:"pss_bytes,omitempty"`
	PSSAnonShmemBytes *int64          `json:"pss_anon_shmem_bytes,omitempty"`
	Processes         []ProcessMemory `json:"processes,omitempty"`
	// CgroupUsageBytes and CgroupWorkingSetBytes are the pod cgroup's (the
	// shims are outside it).
	CgroupUsageBytes      *int64 `json:"cgroup_usage_bytes,omitempty"`
	CgroupWorkingSetBytes *int64 `json:"cgroup_working_set_bytes,omitempty"`
	// Sources names the file each figure came from, by the results'
	// Footprint.Sources keys ("pss", "cgroup_memory", "cgroup_working_set").
	Sources map[string]string `json:"sources,omitempty"`
	Missing []string          `json:"missing,omitempty"`
}

// ProcessMemory is one of the processes Memory's PSS sums.
type ProcessMemory struct {
	Comm     string `json:"comm"`
	PID      int    `json:"pid"`
	PSSBytes int64  `json:"pss_bytes"`
}

// ReadMemory reads the PSS of the instance's processes (its shims, their
// descendants as tree has them, and whatever else is in its pod cgroup)
// and its pod cgroup's memory.
func (fsys FS) ReadMemory(layout CgroupLayout, in Instance, tree ProcessTree) Memory {
	m := Memory{Sources: map[string]string{}}
	var pids []int
	for _, shim := range in.Shims {
		if st, err := fsys.ReadStat(shim.PID); err != nil || st.StartAfterBoot != shim.Started {
			m.Missing = append(m.Missing, fmt.Sprintf("pss: the shim (pid %d) exited", shim.PID))
			continue
		}
		pids = append(append(pids, shim.PID), tree.Descendants(shim.PID)...)
	}
	mem, err := layout.At("memory", in.CgroupPath)
	if err == nil {
		var cm CgroupMemory
		if cm, err = mem.Memory(); err == nil {
			usage := cm.UsageBytes
			m.CgroupUsageBytes = &usage
			m.CgroupWorkingSetBytes = cm.WorkingSetBytes
			m.Sources["cgroup_memory"] = cm.Source + " of " + in.CgroupPath
			if cm.WorkingSetBytes != nil {
				m.Sources["cgroup_working_set"] = cm.WorkingSetSource
			}
		}
		if procs, perr := mem.SubtreeProcs(); perr == nil {
			pids = append(pids, procs...) // anything in its cgroup not under its shim
		}
	}
	if err != nil {
		m.Missing = append(m.Missing, "cgroup memory: "+err.Error())
	}
	sample, err := fsys.SampleProcesses(pids)
	switch {
	case err != nil:
		m.Missing = append(m.Missing, "pss: "+err.Error())
	case sample.PSSBytes == nil:
		m.Missing = append(m.Missing, "pss: every process of the instance had exited")
	default:
		m.PSSBytes, m.PSSAnonShmemBytes = sample.PSSBytes, sample.PSSAnonShmemBytes
		m.Sources["pss"] = sample.MemorySource + " of the shims, their descendants and the pod cgroup's processes"
		for _, p := range sample.Processes {
			m.Processes = append(m.Processes, ProcessMemory{Comm: p.Comm, PID: p.PID, PSSBytes: p.PSSBytes})
		}
	}
	return m
}
