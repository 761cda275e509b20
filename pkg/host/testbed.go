package host

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/coldbench/coldbench/pkg/kstamp"
	"github.com/coldbench/coldbench/pkg/results"
)

// Collect describes the host a measurement runs on, for the header record
// (numbers without their machine are not comparable): it reads what the host
// exposes. Anything unreadable is left empty and
// explained in Notes.
func Collect() results.Testbed {
	tb := results.Testbed{Cores: runtime.NumCPU()}
	tb.Hostname, _ = os.Hostname()
	tb.CPUModel = cpuModel()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		tb.Kernel = strings.TrimSpace(string(b))
	}
	tb.CgroupMode = CgroupMode()
	tb.MemoryBytes = memTotal()
	tb.CPUGovernor, tb.CPUBoost = CPUFreqState()
	tb.Timestamps = results.TimestampsKernel
	if err := kstamp.Check(); err != nil {
		tb.Timestamps = results.TimestampsUser
		tb.Notes = append(tb.Notes, "timestamps: user-space stamps only: "+err.Error())
	}
	if tb.Hostname == "" {
		tb.Notes = append(tb.Notes, "hostname: not available")
	}
	if tb.CPUModel == "" {
		tb.Notes = append(tb.Notes, "cpu model: /proc/cpuinfo has no \"model name\" line (or is unreadable)")
	}
	if tb.Kernel == "" {
		tb.Notes = append(tb.Notes, "kernel: /proc/sys/kernel/osrelease is unreadable")
	}
	if tb.CgroupMode == "" {
		tb.Notes = append(tb.Notes, "cgroup mode: no cgroup filesystem found at /sys/fs/cgroup")
	}
	if tb.MemoryBytes == 0 {
		tb.Notes = append(tb.Notes, "memory: no MemTotal in /proc/meminfo")
	}
	if tb.CPUGovernor == "" {
		tb.Notes = append(tb.Notes, "cpu governor: the host exposes no cpufreq (typical in VMs); nothing to report")
	}
	if tb.CPUBoost == "" {
		tb.Notes = append(tb.Notes, "cpu boost: the host exposes no boost/no_turbo switch")
	}
	return tb
}

// LoadAvg returns the 1, 5 and 15 minute load averages (zeros if unreadable).
func LoadAvg() [3]float64 {
	var la [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return la
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		la[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return la
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// CgroupMode is "v2" (unified), "hybrid" (v1 controllers plus a cgroup2 mount
// at /sys/fs/cgroup/unified) or "v1", and "" when no cgroup filesystem is
// mounted there (never a guess).
func CgroupMode() string {
	const root = "/sys/fs/cgroup"
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return ""
	}
	switch st.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		return "v2"
	case unix.CGROUP_SUPER_MAGIC: // a single v1 hierarchy mounted on the root
		return "v1"
	}
	if err := unix.Statfs(root+"/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "hybrid"
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() {
			if err := unix.Statfs(root+"/"+e.Name(), &st); err == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
				return "v1"
			}
		}
	}
	return ""
}

// Summary is a one-line summary of a testbed for logs.
func Summary(tb results.Testbed) string {
	return fmt.Sprintf("%s, %d cores, kernel %s, cgroup %s", tb.CPUModel, tb.Cores, tb.Kernel, tb.CgroupMode)
}
