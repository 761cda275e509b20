package host

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func requireLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc and /sys")
	}
}

// mountTypes maps each mount point of this process to its filesystem type,
// read from /proc/self/mountinfo (the last mount on a point wins: it is the
// visible one).
func mountTypes(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			t.Fatalf("unexpected mountinfo line %q", line)
		}
		m[f[4]] = g[0]
	}
	return m
}

// wantCgroupMode decides the cgroup mode from mountinfo alone.
func wantCgroupMode(m map[string]string) string {
	switch {
	case m["/sys/fs/cgroup"] == "cgroup2":
		return "v2"
	case m["/sys/fs/cgroup/unified"] == "cgroup2":
		return "hybrid"
	case m["/sys/fs/cgroup"] == "cgroup":
		return "v1"
	}
	for mp, typ := range m {
		if typ == "cgroup" && strings.HasPrefix(mp, "/sys/fs/cgroup/") {
			return "v1"
		}
	}
	return ""
}

func hasNote(notes []string, word string) bool {
	for _, n := range notes {
		if strings.Contains(n, word) {
			return true
		}
	}
	return false
}

func TestCollect(t *testing.T) {
	requireLinux(t)
	tb := Collect()

	if tb.Cores != runtime.NumCPU() || tb.Cores <= 0 {
		t.Errorf("cores = %d, want runtime.NumCPU() = %d", tb.Cores, runtime.NumCPU())
	}
	if hn, err := os.Hostname(); err == nil && tb.Hostname != hn {
		t.Errorf("hostname = %q, want %q", tb.Hostname, hn)
	}

	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Kernel == "" || tb.Kernel != strings.TrimSpace(string(rel)) {
		t.Errorf("kernel = %q, want %q", tb.Kernel, strings.TrimSpace(string(rel)))
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil && unix.ByteSliceToString(uts.Release[:]) != tb.Kernel {
		t.Errorf("kernel = %q, uname says %q", tb.Kernel, unix.ByteSliceToString(uts.Release[:]))
	}

	want := wantCgroupMode(mountTypes(t))
	t.Logf("cgroup mode from mountinfo: %q", want)
	if tb.CgroupMode != want {
		t.Errorf("cgroup mode = %q, mountinfo says %q", tb.CgroupMode, want)
	}
	if want != "" {
		switch tb.CgroupMode {
		case "v1", "hybrid", "v2":
		default:
			t.Errorf("cgroup mode %q is not one of v1/hybrid/v2", tb.CgroupMode)
		}
	}
	if CgroupMode() != tb.CgroupMode {
		t.Errorf("CgroupMode() = %q differs from Collect's %q", CgroupMode(), tb.CgroupMode)
	}

	if tb.MemoryBytes == 0 {
		t.Error("memory is 0")
	}
	// MemTotal and sysinfo(2) count the same pages.
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		if sys := uint64(si.Totalram) * uint64(si.Unit); sys != tb.MemoryBytes {
			t.Errorf("memory = %d bytes, sysinfo says %d", tb.MemoryBytes, sys)
		}
	}

	gov, boost := CPUFreqState()
	if gov != tb.CPUGovernor || boost != tb.CPUBoost {
		t.Errorf("CPUFreqState() = %q, %q; Collect has %q, %q", gov, boost, tb.CPUGovernor, tb.CPUBoost)
	}
	if b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"); err == nil {
		if tb.CPUGovernor != strings.TrimSpace(string(b)) {
			t.Errorf("governor = %q, sysfs says %q", tb.CPUGovernor, strings.TrimSpace(string(b)))
		}
	} else if tb.CPUGovernor != "" {
		t.Errorf("governor %q reported but sysfs has none", tb.CPUGovernor)
	}
	if tb.CPUBoost != "" && tb.CPUBoost != "on" && tb.CPUBoost != "off" {
		t.Errorf("boost = %q, want on/off/empty", tb.CPUBoost)
	}

	// Every empty field is explained.
	for _, c := range []struct {
		empty bool
		word  string
	}{
		{tb.CPUGovernor == "", "governor"},
		{tb.CPUBoost == "", "boost"},
		{tb.CPUModel == "", "cpu model"},
		{tb.Kernel == "", "kernel"},
		{tb.CgroupMode == "", "cgroup"},
		{tb.MemoryBytes == 0, "memory"},
		{tb.Hostname == "", "hostname"},
	} {
		if c.empty && !hasNote(tb.Notes, c.word) {
			t.Errorf("%s is empty but no note mentions it: %q", c.word, tb.Notes)
		}
		if !c.empty && hasNote(tb.Notes, c.word) {
			t.Errorf("%s is known but a note says otherwise: %q", c.word, tb.Notes)
		}
	}

	s := Summary(tb)
	if !strings.Contains(s, strconv.Itoa(tb.Cores)+" cores") || !strings.Contains(s, tb.Kernel) || !strings.Contains(s, "cgroup "+tb.CgroupMode) {
		t.Errorf("Summary() = %q", s)
	}
}

func readLoadAvg(t *testing.T) [3]float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		t.Fatalf("/proc/loadavg: %q", b)
	}
	var la [3]float64
	for i := range la {
		if la[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			t.Fatal(err)
		}
	}
	return la
}

func TestLoadAvg(t *testing.T) {
	requireLinux(t)
	var got, before, after [3]float64
	for try := 0; try < 2; try++ {
		before = readLoadAvg(t)
		got = LoadAvg()
		after = readLoadAvg(t)
		if got == before || got == after {
			break
		}
	}
	for i, v := range got {
		if v < 0 {
			t.Errorf("load[%d] = %v < 0", i, v)
		}
	}
	if got != before && got != after {
		t.Errorf("LoadAvg() = %v, /proc/loadavg says %v then %v", got, before, after)
	}
}
