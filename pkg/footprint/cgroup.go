package footprint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CgroupMode is how the machine mounts cgroups (the same words as the
// header record's testbed cgroup mode).
type CgroupMode string

const (
	CgroupV1 CgroupMode = "v1" // only v1 hierarchies, one per controller (or co-mounted group)
	CgroupV2 CgroupMode = "v2" // the unified hierarchy alone, at /sys/fs/cgroup
	// CgroupHybrid: v1 controllers plus a cgroup2 mount (normally
	// /sys/fs/cgroup/unified) that holds no controllers but still has every
	// cgroup's cpu.stat.
	CgroupHybrid CgroupMode = "hybrid"
)

// CgroupLayout says where the cgroup hierarchies are mounted under an FS's
// root.
type CgroupLayout struct {
	Mode CgroupMode
	// V1Mounts maps a v1 controller ("memory", "cpuacct", ...) to its
	// hierarchy's directory; co-mounted controllers ("cpu,cpuacct") share
	// one. Empty in v2 mode.
	V1Mounts map[string]string
	// UnifiedMount is the cgroup2 hierarchy's directory, "" if none.
	UnifiedMount string
}

// DetectCgroups finds the cgroup hierarchies under ROOT/sys/fs/cgroup from
// the files only each kind has (statfs magic numbers would not work on a
// copied tree): cgroup.controllers exists only in cgroup2, a v1 hierarchy
// has cgroup.procs and no cgroup.controllers.
func (fsys FS) DetectCgroups() (CgroupLayout, error) {
	base := fsys.path("sys", "fs", "cgroup")
	if fileExists(filepath.Join(base, "cgroup.controllers")) {
		return CgroupLayout{Mode: CgroupV2, UnifiedMount: base, V1Mounts: map[string]string{}}, nil
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return CgroupLayout{}, fmt.Errorf("listing %s: %w", base, withoutPath(err))
	}
	layout := CgroupLayout{V1Mounts: map[string]string{}}
	for _, e := range entries { // sorted, so "cpu" (often a symlink) comes before "cpu,cpuacct"
		dir := filepath.Join(base, e.Name())
		if fileExists(filepath.Join(dir, "cgroup.controllers")) {
			layout.UnifiedMount = dir
			continue
		}
		if !fileExists(filepath.Join(dir, "cgroup.procs")) {
			continue
		}
		for _, controller := range strings.Split(e.Name(), ",") {
			if _, seen := layout.V1Mounts[controller]; !seen {
				layout.V1Mounts[controller] = dir
			}
		}
	}
	switch {
	case len(layout.V1Mounts) > 0 && layout.UnifiedMount != "":
		layout.Mode = CgroupHybrid
	case len(layout.V1Mounts) > 0:
		layout.Mode = CgroupV1
	case layout.UnifiedMount != "":
		layout.Mode = CgroupV2
	default:
		return CgroupLayout{}, fmt.Errorf("no cgroup hierarchy under %s (neither cgroup.controllers nor */cgroup.procs)", base)
	}
	return layout, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path) // follows symlinks: "cpuacct" -> "cpu,cpuacct"
	return err == nil
}

// Cgroup is one cgroup's directory in a hierarchy.
type Cgroup struct {
	Version int    // 1 or 2: which files it has
	Path    string // as in /proc/PID/cgroup, e.g. "/kubepods/burstable/pod..."
	Dir     string // its directory, the FS root included
}

// V1 is the cgroup at path in controller's v1 hierarchy.
func (l CgroupLayout) V1(controller, path string) (Cgroup, error) {
	mount, ok := l.V1Mounts[controller]
	if !ok {
		return Cgroup{}, fmt.Errorf("no cgroup v1 %s hierarchy is mounted (cgroup mode %q)", controller, l.Mode)
	}
	return Cgroup{Version: 1, Path: path, Dir: filepath.Join(mount, path)}, nil
}

// V2 is the cgroup at path in the unified hierarchy.
func (l CgroupLayout) V2(path string) (Cgroup, error) {
	if l.UnifiedMount == "" {
		return Cgroup{}, fmt.Errorf("no cgroup2 hierarchy is mounted (cgroup mode %q)", l.Mode)
	}
	return Cgroup{Version: 2, Path: path, Dir: filepath.Join(l.UnifiedMount, path)}, nil
}

// Locate is the process's cgroup that accounts for v1Controller ("memory",
// "cpuacct"): the v1 one where that controller is mounted as v1 (v1 and
// hybrid machines), else the unified one. In hybrid mode the unified
// hierarchy has cpu.stat but no memory files, so memory must come from v1.
func (l CgroupLayout) Locate(v1Controller string, memberships ProcCgroups) (Cgroup, error) {
	if _, mounted := l.V1Mounts[v1Controller]; mounted {
		path, ok := memberships.V1Path(v1Controller)
		if !ok {
			return Cgroup{}, fmt.Errorf("the process is in no cgroup v1 %s hierarchy", v1Controller)
		}
		return l.V1(v1Controller, path)
	}
	path, ok := memberships.V2Path()
	if !ok {
		return Cgroup{}, fmt.Errorf("the process has no cgroup v1 %s line and no v2 (0::) line", v1Controller)
	}
	return l.V2(path)
}

// At is the cgroup at path (as a CRI cgroup parent names it) that
// accounts for v1Controller: in its v1 hierarchy where that controller is
// mounted as v1, else in the unified one (as Locate chooses).
func (l CgroupLayout) At(v1Controller, path string) (Cgroup, error) {
	if _, mounted := l.V1Mounts[v1Controller]; mounted {
		return l.V1(v1Controller, path)
	}
	return l.V2(path)
}

// CgroupMembership is one line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH",
// "0::PATH" for the unified hierarchy.
type CgroupMembership struct {
	HierarchyID int
	Controllers []string // "memory", "cpu", "name=systemd"...; none for v2
	Path        string
}

// ProcCgroups is a process's cgroups: v1 lines, the v2 line, or both on a
// hybrid machine.
type ProcCgroups []CgroupMembership

// ReadProcCgroups reads /proc/PID/cgroup. The paths are relative to the
// reader's cgroup namespace: read it from the host's namespace (as a node
// agent with the host's cgroupns) to get paths under the mounts.
func (fsys FS) ReadProcCgroups(pid int) (ProcCgroups, error) {
	path := fsys.procPath(pid, "cgroup")
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var memberships ProcCgroups
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		fields := strings.SplitN(line, ":", 3) // the path may hold ':'
		if len(fields) != 3 {
			return nil, fmt.Errorf("parsing %s: line %q: want ID:CONTROLLERS:PATH", path, line)
		}
		id, err := strconv.Atoi(fields[0])
		if err != nil {
			return nil, fmt.Errorf("parsing %s: line %q: %w", path, line, err)
		}
		m := CgroupMembership{HierarchyID: id, Path: fields[2]}
		if fields[1] != "" {
			m.Controllers = strings.Split(fields[1], ",")
		}
		memberships = append(memberships, m)
	}
	return memberships, nil
}

// V1Path is the process's cgroup path in the v1 hierarchy of controller.
func (p ProcCgroups) V1Path(controller string) (string, bool) {
	for _, m := range p {
		if m.HierarchyID != 0 && slices.Contains(m.Controllers, controller) {
			return m.Path, true
		}
	}
	return "", false
}

// V2Path is the process's cgroup path in the unified hierarchy ("0::").
func (p ProcCgroups) V2Path() (string, bool) {
	for _, m := range p {
		if m.HierarchyID == 0 && len(m.Controllers) == 0 {
			return m.Path, true
		}
	}
	return "", false
}

// Procs lists the processes in this cgroup itself (cgroup.procs, the same
// format in v1 and v2), in increasing order. A pod's or v2 parent's own
// list is usually empty: see SubtreeProcs.
func (c Cgroup) Procs() ([]int, error) {
	pids, err := readProcs(filepath.Join(c.Dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// SubtreeProcs lists the processes of this cgroup and of every cgroup
// below it (a pod's containers), in increasing order. A child cgroup
// removed during the walk is skipped.
func (c Cgroup) SubtreeProcs() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(c.Dir, func(dir string, d fs.DirEntry, err error) error {
		if err != nil {
			if dir != c.Dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("listing %s: %w", dir, withoutPath(err))
		}
		if !d.IsDir() {
			return nil
		}
		found, err := readProcs(filepath.Join(dir, "cgroup.procs"))
		if err != nil && (dir == c.Dir || !errors.Is(err, fs.ErrNotExist)) {
			return err
		}
		pids = append(pids, found...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// readProcs parses cgroup.procs: one PID a line, unordered, and a PID may
// appear twice (cgroup-v2.rst) — the callers sort and compact.
func readProcs(path string) ([]int, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, field := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(field)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %q: %w", path, field, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// CgroupMemory is a cgroup's memory, its descendants' included, in bytes.
type CgroupMemory struct {
	// UsageBytes is v1 memory.usage_in_bytes (which the kernel documents
	// as approximate: per-CPU charge batches) or v2 memory.current.
	UsageBytes int64
	Source     string
	// From memory.stat (v1: the hierarchical total_* keys); nil where
	// this kernel's file lacks the key.
	AnonBytes         *int64 // v1 total_rss, v2 anon
	FileBytes         *int64 // v1 total_cache, v2 file (page cache, tmpfs and shmem included)
	InactiveFileBytes *int64 // v1 total_inactive_file, v2 inactive_file
	ActiveFileBytes   *int64 // v1 total_active_file, v2 active_file
	// WorkingSetBytes is usage minus inactive file pages, floored at 0, as
	// the kubelet (cAdvisor) computes a pod's working set. nil without
	// inactive_file: cAdvisor would then report the whole usage, which is
	// a different figure under the same name.
	WorkingSetBytes  *int64
	WorkingSetSource string
	// WorkingSetFloored: inactive_file exceeded usage (they are not read
	// atomically, and v1 usage is batched), so the working set is 0.
	WorkingSetFloored bool
	// Stat is the whole memory.stat (amounts in bytes, events in counts).
	Stat map[string]uint64
}

// Memory reads the cgroup's memory: v1 memory.usage_in_bytes and
// memory.stat from the memory hierarchy, v2 memory.current and
// memory.stat (which exist only in non-root cgroups).
func (c Cgroup) Memory() (CgroupMemory, error) {
	var usageFile, anonKey, fileKey, inactiveFileKey, activeFileKey string
	switch c.Version {
	case 1:
		usageFile, anonKey, fileKey = "memory.usage_in_bytes", "total_rss", "total_cache"
		inactiveFileKey, activeFileKey = "total_inactive_file", "total_active_file"
	case 2:
		usageFile, anonKey, fileKey = "memory.current", "anon", "file"
		inactiveFileKey, activeFileKey = "inactive_file", "active_file"
	default:
		return CgroupMemory{}, fmt.Errorf("cgroup %s: version %d, want 1 or 2", c.Dir, c.Version)
	}
	usage, err := readUint(filepath.Join(c.Dir, usageFile))
	if err != nil {
		return CgroupMemory{}, err
	}
	stat, err := readFlatKeyed(filepath.Join(c.Dir, "memory.stat"))
	if err != nil {
		return CgroupMemory{}, err
	}
	source := fmt.Sprintf("cgroup v%d %s", c.Version, usageFile)
	m := CgroupMemory{
		UsageBytes:        int64(usage),
		Source:            source,
		AnonBytes:         statBytes(stat, anonKey),
		FileBytes:         statBytes(stat, fileKey),
		InactiveFileBytes: statBytes(stat, inactiveFileKey),
		ActiveFileBytes:   statBytes(stat, activeFileKey),
		Stat:              stat,
	}
	if m.InactiveFileBytes != nil {
		workingSet := m.UsageBytes - *m.InactiveFileBytes
		if workingSet < 0 {
			workingSet, m.WorkingSetFloored = 0, true
		}
		m.WorkingSetBytes = &workingSet
		m.WorkingSetSource = fmt.Sprintf("%s - memory.stat %s (floored at 0, as the kubelet)", source, inactiveFileKey)
	}
	return m, nil
}

func statBytes(stat map[string]uint64, key string) *int64 {
	if v, ok := stat[key]; ok {
		n := int64(v)
		return &n
	}
	return nil
}

// CgroupCPU is the CPU time a cgroup's processes (descendants included)
// have used since the cgroup was created.
type CgroupCPU struct {
	Usage  time.Duration
	Source string
}

// CPUUsage reads v1 cpuacct.usage (ns; the cgroup must be in the cpuacct
// hierarchy) or v2 cpu.stat usage_usec (present even where the cpu
// controller is not enabled, hence on a hybrid machine's unified mount).
func (c Cgroup) CPUUsage() (CgroupCPU, error) {
	switch c.Version {
	case 1:
		ns, err := readUint(filepath.Join(c.Dir, "cpuacct.usage"))
		if err != nil {
			return CgroupCPU{}, err
		}
		return CgroupCPU{Usage: time.Duration(ns), Source: "cgroup v1 cpuacct.usage"}, nil
	case 2:
		path := filepath.Join(c.Dir, "cpu.stat")
		stat, err := readFlatKeyed(path)
		if err != nil {
			return CgroupCPU{}, err
		}
		usec, ok := stat["usage_usec"]
		if !ok {
			return CgroupCPU{}, fmt.Errorf("parsing %s: no usage_usec", path)
		}
		return CgroupCPU{Usage: time.Duration(usec) * time.Microsecond, Source: "cgroup v2 cpu.stat usage_usec"}, nil
	}
	return CgroupCPU{}, fmt.Errorf("cgroup %s: version %d, want 1 or 2", c.Dir, c.Version)
}

// readUint reads a single-value file (memory.current, cpuacct.usage...).
func readUint(path string) (uint64, error) {
	data, err := readFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", path, err)
	}
	return n, nil
}

// readFlatKeyed reads a "key value" file (memory.stat, cpu.stat). Keys are
// looked up by name: the kernel adds new ones in the middle.
func readFlatKeyed(path string) (map[string]uint64, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	values := map[string]uint64{}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("parsing %s: line %q: want \"key value\"", path, strings.TrimSpace(line))
		}
		n, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: line %q: %w", path, strings.TrimSpace(line), err)
		}
		values[fields[0]] = n
	}
	return values, nil
}
