// Package footprint reads, from Linux's procfs and cgroup files, what an
// instance (a container's processes and cgroup) costs the machine: memory
// (PSS, RSS, cgroup usage and working set), CPU time and the node's
// available memory.
//
//   - procfs.go: one process (/proc/PID/smaps_rollup, stat, status) and
//     process discovery (all PIDs, children and descendants by ppid);
//   - cgroup.go: the cgroup layout (v1, v2, hybrid), a process's cgroups,
//     a cgroup's processes, memory and CPU;
//   - meminfo.go: /proc/meminfo;
//   - sample.go: a set of processes summed, tolerating processes that exit
//     while they are read.
//
// Every reader works under an injected root (FS), so tests run on captured
// files and an agent in a container can read the host's. A figure the
// kernel did not provide is nil, never 0: reports must say "not measured".
package footprint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FS reads Linux's proc and cgroup files under a root directory: "/" on the
// machine itself, the host's / where it is mounted into a container, or a
// test's testdata tree.
type FS struct {
	root string
}

// NewFS reads under root ("" means "/").
func NewFS(root string) FS {
	if root == "" {
		root = "/"
	}
	return FS{root: filepath.Clean(root)}
}

// Root is the directory the files are read under.
func (fsys FS) Root() string { return fsys.root }

func (fsys FS) path(elem ...string) string {
	return filepath.Join(append([]string{fsys.root}, elem...)...)
}

func (fsys FS) procPath(pid int, file string) string {
	return fsys.path("proc", strconv.Itoa(pid), file)
}

// readFile wraps errors as "reading PATH: ERRNO" (the os.PathError's own
// "open PATH" would repeat the path); errors.Is still sees the errno.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, withoutPath(err))
	}
	return b, nil
}

// withoutPath strips an os.PathError down to its errno, for messages that
// name the path themselves.
func withoutPath(err error) error {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

// IsGone reports whether err means the process no longer exists: its /proc
// directory vanished (ENOENT) or the kernel answered ESRCH, which is also
// what a zombie's smaps_rollup answers (its memory is already freed).
// Between listing processes and reading them, some exit: that is expected.
func IsGone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// ErrNoSmaps: the process exists but has neither smaps_rollup nor smaps (a
// kernel built without CONFIG_PROC_PAGE_MONITOR): PSS cannot be measured.
var ErrNoSmaps = errors.New("neither smaps_rollup nor smaps exists for the process (kernel without CONFIG_PROC_PAGE_MONITOR?)")

// Where a process's memory figures came from (Smaps.Source).
const (
	SourceSmapsRollup = "/proc/PID/smaps_rollup"
	// Kernels before 4.14 have no smaps_rollup. The per-mapping PSS values
	// are each rounded down to a kB, so the sum can be a few kB under what
	// smaps_rollup would say; Pss_Anon/File/Shmem exist only in the rollup.
	SourceSmapsSum = "/proc/PID/smaps, summed (no smaps_rollup on this kernel)"
)

// Smaps is a process's memory from /proc/PID/smaps_rollup (or summed
// smaps). All figures are bytes; nil where this kernel does not report the
// field (Pss_Anon/File/Shmem came to smaps_rollup in Linux 5.3 and are
// never in the per-mapping smaps).
type Smaps struct {
	Source   string // SourceSmapsRollup or SourceSmapsSum
	RssBytes int64
	// PssBytes is the process's proportional share: each page divided by
	// the processes mapping it, so PSS sums over processes without counting
	// shared libraries twice.
	PssBytes          int64
	PssAnonBytes      *int64
	PssFileBytes      *int64
	PssShmemBytes     *int64
	SharedCleanBytes  *int64
	SharedDirtyBytes  *int64
	PrivateCleanBytes *int64
	PrivateDirtyBytes *int64
	SwapBytes         *int64
	SwapPssBytes      *int64
}

// ReadSmaps reads /proc/PID/smaps_rollup, or sums /proc/PID/smaps where the
// kernel has no rollup. A process that exited, or is a zombie or a kernel
// thread (no memory map), gives an error IsGone accepts.
func (fsys FS) ReadSmaps(pid int) (Smaps, error) {
	rollupPath := fsys.procPath(pid, "smaps_rollup")
	data, err := readFile(rollupPath)
	if err == nil {
		return parseSmaps(rollupPath, data, SourceSmapsRollup)
	}
	// ENOENT means the process is gone, or the kernel predates the rollup
	// (or has no smaps at all): its /proc directory tells which.
	processExists := func() bool {
		_, statErr := os.Stat(fsys.path("proc", strconv.Itoa(pid)))
		return statErr == nil
	}
	if !errors.Is(err, os.ErrNotExist) || !processExists() {
		return Smaps{}, err
	}
	smapsPath := fsys.procPath(pid, "smaps")
	data, err = readFile(smapsPath)
	if errors.Is(err, os.ErrNotExist) && processExists() {
		return Smaps{}, fmt.Errorf("reading %s: %w", smapsPath, ErrNoSmaps)
	}
	if err != nil {
		return Smaps{}, err
	}
	return parseSmaps(smapsPath, data, SourceSmapsSum)
}

// parseSmaps adds up every "Key: N kB" line, so it reads both the rollup
// (one block) and smaps (one block per mapping); mapping header lines and
// unitless lines (THPeligible, VmFlags) are skipped.
func parseSmaps(path string, data []byte, source string) (Smaps, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		// A zombie's or kernel thread's smaps is empty: no memory map, the
		// same as the rollup's ESRCH for them.
		return Smaps{}, fmt.Errorf("reading %s: empty, the process has no memory map (exited or kernel thread): %w", path, syscall.ESRCH)
	}
	kB := map[string]int64{}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) != 3 || fields[2] != "kB" || !strings.HasSuffix(fields[0], ":") {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return Smaps{}, fmt.Errorf("parsing %s: line %q: %w", path, strings.TrimSpace(line), err)
		}
		kB[strings.TrimSuffix(fields[0], ":")] += n
	}
	rss, hasRss := kB["Rss"]
	pss, hasPss := kB["Pss"]
	if !hasRss || !hasPss {
		return Smaps{}, fmt.Errorf("parsing %s: no Rss or Pss line", path)
	}
	bytesOf := func(key string) *int64 {
		if v, ok := kB[key]; ok {
			v *= 1024
			return &v
		}
		return nil
	}
	return Smaps{
		Source:            source,
		RssBytes:          rss * 1024,
		PssBytes:          pss * 1024,
		PssAnonBytes:      bytesOf("Pss_Anon"),
		PssFileBytes:      bytesOf("Pss_File"),
		PssShmemBytes:     bytesOf("Pss_Shmem"),
		SharedCleanBytes:  bytesOf("Shared_Clean"),
		SharedDirtyBytes:  bytesOf("Shared_Dirty"),
		PrivateCleanBytes: bytesOf("Private_Clean"),
		PrivateDirtyBytes: bytesOf("Private_Dirty"),
		SwapBytes:         bytesOf("Swap"),
		SwapPssBytes:      bytesOf("SwapPss"),
	}, nil
}

// clockTicksPerSecond is USER_HZ, the unit of /proc/PID/stat's times. It
// is 100 on every Linux architecture coldbench runs on (x86-64, arm64);
// sysconf(_SC_CLK_TCK) would say so too but needs cgo.
const clockTicksPerSecond = 100

func ticksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / clockTicksPerSecond)
}

// pfKthread is PF_KTHREAD in stat's flags field (include/linux/sched.h).
const pfKthread = 0x00200000

// Stat is what coldbench uses of /proc/PID/stat.
type Stat struct {
	PID  int
	PPID int
	// Comm is the executable's name, truncated to 15 bytes; it may hold
	// spaces and parentheses.
	Comm  string
	State byte // R, S, D, Z, ...
	// KernelThread: a kernel thread has no memory map (no PSS).
	KernelThread bool
	UserCPU      time.Duration // utime
	SystemCPU    time.Duration // stime
	// ReapedChildrenCPU is cutime + cstime: the CPU of the children it
	// waited for (a shim's runtime commands, which exit in seconds).
	ReapedChildrenCPU time.Duration
	// StartAfterBoot is when the process started; with the PID it tells a
	// process from a later one that reused the PID.
	StartAfterBoot time.Duration
}

// CPU is the process's CPU time so far: user plus system, all threads
// (not its reaped children's).
func (s Stat) CPU() time.Duration { return s.UserCPU + s.SystemCPU }

// ReadStat reads /proc/PID/stat.
func (fsys FS) ReadStat(pid int) (Stat, error) {
	path := fsys.procPath(pid, "stat")
	data, err := readFile(path)
	if err != nil {
		return Stat{}, err
	}
	st, err := parseStat(data)
	if err != nil {
		return Stat{}, fmt.Errorf("parsing %s: %w", path, err)
	}
	return st, nil
}

// parseStat parses "PID (COMM) STATE PPID ...". COMM is whatever the
// process named itself, ')' and spaces included, so it ends at the last
// ')' of the line; the fields after it have no spaces.
func parseStat(data []byte) (Stat, error) {
	line := string(bytes.TrimSpace(data))
	open := strings.IndexByte(line, '(')
	closing := strings.LastIndexByte(line, ')')
	if open < 0 || closing < open {
		return Stat{}, fmt.Errorf("no \"(comm)\" in %q", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return Stat{}, fmt.Errorf("pid: %w", err)
	}
	// Fields after comm, from field 3 (state) on; see proc_pid_stat(5).
	rest := strings.Fields(line[closing+1:])
	const (
		stateField     = 0  // field 3
		ppidField      = 1  // field 4
		flagsField     = 6  // field 9
		utimeField     = 11 // field 14
		stimeField     = 12 // field 15
		cutimeField    = 13 // field 16
		cstimeField    = 14 // field 17
		starttimeField = 19 // field 22
	)
	if len(rest) <= starttimeField {
		return Stat{}, fmt.Errorf("%d fields after comm, want at least %d", len(rest), starttimeField+1)
	}
	var parseErr error
	number := func(i int) uint64 {
		n, err := strconv.ParseUint(rest[i], 10, 64)
		if err != nil && parseErr == nil {
			parseErr = fmt.Errorf("field %d: %w", i+3, err)
		}
		return n
	}
	st := Stat{
		PID:               pid,
		PPID:              int(number(ppidField)),
		Comm:              line[open+1 : closing],
		State:             rest[stateField][0],
		KernelThread:      number(flagsField)&pfKthread != 0,
		UserCPU:           ticksToDuration(number(utimeField)),
		SystemCPU:         ticksToDuration(number(stimeField)),
		ReapedChildrenCPU: ticksToDuration(number(cutimeField)) + ticksToDuration(number(cstimeField)),
		StartAfterBoot:    ticksToDuration(number(starttimeField)),
	}
	if parseErr != nil {
		return Stat{}, parseErr
	}
	return st, nil
}

// Status holds the optional figures of /proc/PID/status, in bytes; nil
// where the file has no such line (kernel threads, zombies).
type Status struct {
	VmRSSBytes *int64 // resident now
	VmHWMBytes *int64 // peak resident ("high water mark")
}

// ReadStatus reads VmRSS and VmHWM from /proc/PID/status.
func (fsys FS) ReadStatus(pid int) (Status, error) {
	path := fsys.procPath(pid, "status")
	data, err := readFile(path)
	if err != nil {
		return Status{}, err
	}
	values, err := parseKBLines(data, "VmRSS", "VmHWM")
	if err != nil {
		return Status{}, fmt.Errorf("parsing %s: %w", path, err)
	}
	return Status{VmRSSBytes: values["VmRSS"], VmHWMBytes: values["VmHWM"]}, nil
}

// parseKBLines reads "Key:   N kB" lines (status, meminfo) for the wanted
// keys, in bytes; a key without a line is absent from the result.
func parseKBLines(data []byte, wanted ...string) (map[string]*int64, error) {
	values := map[string]*int64{}
	for line := range strings.Lines(string(data)) {
		key, value, ok := strings.Cut(line, ":")
		if !ok || !slices.Contains(wanted, key) {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return nil, fmt.Errorf("line %q: want \"%s: N kB\"", strings.TrimSpace(line), key)
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", strings.TrimSpace(line), err)
		}
		n *= 1024
		values[key] = &n
	}
	return values, nil
}

// PIDs lists the processes in /proc (thread-group leaders; threads are not
// listed), in increasing order.
func (fsys FS) PIDs() ([]int, error) {
	dir := fsys.path("proc")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, withoutPath(err))
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// childrenByParent maps each PPID to its children, from every process's
// stat. Processes that exit meanwhile are left out: /proc is not a
// snapshot.
func (fsys FS) childrenByParent() (map[int][]int, error) {
	pids, err := fsys.PIDs()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, pid := range pids {
		st, err := fsys.ReadStat(pid)
		if IsGone(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		children[st.PPID] = append(children[st.PPID], pid)
	}
	return children, nil
}

// ProcessTree is every process's children, read once: finding the
// descendants of many processes (a cell's shims) costs one pass over
// /proc, not one each.
type ProcessTree struct {
	children map[int][]int
}

// ReadProcessTree reads every process's parent.
func (fsys FS) ReadProcessTree() (ProcessTree, error) {
	children, err := fsys.childrenByParent()
	if err != nil {
		return ProcessTree{}, err
	}
	return ProcessTree{children: children}, nil
}

// Descendants lists pid's children, their children and so on (not pid),
// in increasing order, as the tree was read.
func (t ProcessTree) Descendants(pid int) []int {
	var found []int
	seen := map[int]bool{pid: true} // a PID reused mid-scan could make a loop
	queue := slices.Clone(t.children[pid])
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		if seen[next] {
			continue
		}
		seen[next] = true
		found = append(found, next)
		queue = append(queue, t.children[next]...)
	}
	slices.Sort(found)
	return found
}

// Children lists the processes whose parent is pid, in increasing order.
func (fsys FS) Children(pid int) ([]int, error) {
	children, err := fsys.childrenByParent()
	if err != nil {
		return nil, err
	}
	return children[pid], nil
}

// Descendants lists pid's children, their children and so on (not pid),
// in increasing order. A process whose parent exited is re-parented (to
// init or a subreaper) and is no longer found here.
func (fsys FS) Descendants(pid int) ([]int, error) {
	tree, err := fsys.ReadProcessTree()
	if err != nil {
		return nil, err
	}
	return tree.Descendants(pid), nil
}
