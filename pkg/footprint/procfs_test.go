package footprint

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fixture roots (testdata/README.md says which files were captured on
// this machine and which were written from the kernel's documentation).
const (
	hybridRoot    = "testdata/hybrid"    // captured: a Knative activator pod on the v1/hybrid lab node
	edgeRoot      = "testdata/edge"      // captured: odd comm, zombie, kernel thread
	oldKernelRoot = "testdata/oldkernel" // captured smaps of a process, without smaps_rollup
	v2Root        = "testdata/v2"        // written: a pod on a cgroup v2 node
)

// The captured pod: containerd-shim-runc-v2 (comm truncated to 15 bytes),
// its pause and the activator.
const (
	shimPID      = 1628003
	pausePID     = 1628111
	activatorPID = 1628192
)

func wantBytes(t *testing.T, name string, got *int64, want int64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: not measured, want %d", name, want)
	} else if *got != want {
		t.Errorf("%s = %d, want %d", name, *got, want)
	}
}

func wantNil(t *testing.T, name string, got *int64) {
	t.Helper()
	if got != nil {
		t.Errorf("%s = %d, want not measured (nil)", name, *got)
	}
}

func TestReadSmapsRollup(t *testing.T) {
	s, err := NewFS(hybridRoot).ReadSmaps(shimPID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != SourceSmapsRollup {
		t.Errorf("source %q", s.Source)
	}
	if s.RssBytes != 17476*1024 || s.PssBytes != 7461*1024 {
		t.Errorf("rss %d pss %d", s.RssBytes, s.PssBytes)
	}
	wantBytes(t, "Pss_Anon", s.PssAnonBytes, 4932*1024)
	wantBytes(t, "Pss_File", s.PssFileBytes, 2529*1024)
	wantBytes(t, "Pss_Shmem", s.PssShmemBytes, 0) // measured, and zero: not nil
	wantBytes(t, "Shared_Clean", s.SharedCleanBytes, 12544*1024)
	wantBytes(t, "Shared_Dirty", s.SharedDirtyBytes, 0)
	wantBytes(t, "Private_Clean", s.PrivateCleanBytes, 0)
	wantBytes(t, "Private_Dirty", s.PrivateDirtyBytes, 4932*1024)
	wantBytes(t, "Swap", s.SwapBytes, 0)
	wantBytes(t, "SwapPss", s.SwapPssBytes, 0)
}

// An old kernel (< 4.14) has smaps but no smaps_rollup: the mappings are
// summed, and the rollup-only fields are not measured.
func TestReadSmapsWithoutRollup(t *testing.T) {
	const pid = 1699049
	s, err := NewFS(oldKernelRoot).ReadSmaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != SourceSmapsSum {
		t.Errorf("source %q", s.Source)
	}
	// Sums of the captured smaps (awk over its "Pss:" and "Rss:" lines).
	if s.RssBytes != 1784*1024 || s.PssBytes != 240*1024 {
		t.Errorf("rss %d pss %d", s.RssBytes, s.PssBytes)
	}
	wantBytes(t, "Private_Dirty", s.PrivateDirtyBytes, 108*1024)
	wantBytes(t, "Shared_Clean", s.SharedCleanBytes, 1676*1024)
	wantNil(t, "Pss_Anon", s.PssAnonBytes)
	wantNil(t, "Pss_File", s.PssFileBytes)
	wantNil(t, "Pss_Shmem", s.PssShmemBytes)

	// The rollup read right after the smaps: the same figures within a few
	// kB (per-mapping rounding, and the two reads are not atomic).
	data, err := os.ReadFile(filepath.Join(oldKernelRoot, "smaps_rollup.same-moment"))
	if err != nil {
		t.Fatal(err)
	}
	rollup, err := parseSmaps("smaps_rollup.same-moment", data, SourceSmapsRollup)
	if err != nil {
		t.Fatal(err)
	}
	if diff := s.PssBytes - rollup.PssBytes; diff < -8*1024 || diff > 8*1024 || s.RssBytes != rollup.RssBytes {
		t.Errorf("summed smaps pss %d rss %d, rollup pss %d rss %d", s.PssBytes, s.RssBytes, rollup.PssBytes, rollup.RssBytes)
	}
}

func TestReadSmapsGoneAndMissing(t *testing.T) {
	edge := NewFS(edgeRoot)
	// A zombie: its smaps is empty (captured), as good as gone.
	if _, err := edge.ReadSmaps(1700073); !IsGone(err) || !errors.Is(err, syscall.ESRCH) {
		t.Errorf("zombie: %v, want ESRCH", err)
	}
	// No /proc/PID at all: exited.
	if _, err := edge.ReadSmaps(424242); !IsGone(err) {
		t.Errorf("vanished: %v, want gone", err)
	}
	// /proc/PID exists but neither file does: not measurable, and not gone.
	_, err := edge.ReadSmaps(1698274)
	if !errors.Is(err, ErrNoSmaps) || IsGone(err) {
		t.Errorf("no smaps files: %v, want ErrNoSmaps", err)
	}
}

func TestParseSmapsErrors(t *testing.T) {
	if _, err := parseSmaps("x", []byte("Rss: 4 kB\n"), SourceSmapsRollup); err == nil || !strings.Contains(err.Error(), "no Rss or Pss") {
		t.Errorf("without Pss: %v", err)
	}
	if _, err := parseSmaps("x", []byte("Rss: 4 kB\nPss: four kB\n"), SourceSmapsRollup); err == nil || !strings.Contains(err.Error(), "parsing x") {
		t.Errorf("bad number: %v", err)
	}
}

func TestReadStat(t *testing.T) {
	for _, tc := range []struct {
		root string
		want Stat
	}{
		{hybridRoot, Stat{PID: shimPID, PPID: 1, Comm: "containerd-shim", State: 'S',
			UserCPU: 1550 * time.Millisecond, SystemCPU: 1370 * time.Millisecond,
			ReapedChildrenCPU: 260 * time.Millisecond, // cutime 11 + cstime 15 ticks: the runc commands it waited for
			StartAfterBoot:    68598640 * time.Millisecond}},
		// A binary named "a b) (c": spaces and parentheses in comm.
		{edgeRoot, Stat{PID: 1698274, PPID: 1698272, Comm: "a b) (c", State: 'S', StartAfterBoot: 69755220 * time.Millisecond}},
		{edgeRoot, Stat{PID: 1700073, PPID: 1700023, Comm: "sleep", State: 'Z', StartAfterBoot: 69795570 * time.Millisecond}},
		{edgeRoot, Stat{PID: 2, PPID: 0, Comm: "kthreadd", State: 'S', KernelThread: true, SystemCPU: 60 * time.Millisecond, StartAfterBoot: 190 * time.Millisecond}},
	} {
		got, err := NewFS(tc.root).ReadStat(tc.want.PID)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("pid %d:\n got %+v\nwant %+v", tc.want.PID, got, tc.want)
		}
	}
}

func TestParseStatComm(t *testing.T) {
	// The kernel writes comm raw: it may even hold ") 1 2 (" to fool a
	// parser that splits at the first ')'.
	st, err := parseStat([]byte("77 (x) 1 2 (y) R 5 77 77 0 -1 4194304 1 0 0 0 250 50 0 0 20 0 1 0 1000 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Comm != "x) 1 2 (y" || st.PPID != 5 || st.State != 'R' || st.CPU() != 3*time.Second || st.StartAfterBoot != 10*time.Second {
		t.Errorf("%+v", st)
	}
	for _, bad := range []string{"", "77 x R 1", "77 (x) R 1 2 3", "seven (x) R 5 77 77 0 -1 0 1 0 0 0 250 50 0 0 20 0 1 0 1000"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestReadStatus(t *testing.T) {
	s, err := NewFS(hybridRoot).ReadStatus(activatorPID)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "VmRSS", s.VmRSSBytes, 104388*1024)
	wantBytes(t, "VmHWM", s.VmHWMBytes, 140336*1024)
	// A zombie's status has no Vm* lines: not measured, not 0.
	z, err := NewFS(edgeRoot).ReadStatus(1700073)
	if err != nil {
		t.Fatal(err)
	}
	wantNil(t, "zombie VmRSS", z.VmRSSBytes)
	wantNil(t, "zombie VmHWM", z.VmHWMBytes)
}

func TestDiscovery(t *testing.T) {
	hybrid := NewFS(hybridRoot)
	pids, err := hybrid.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{shimPID, pausePID, activatorPID}; !slices.Equal(pids, want) {
		t.Errorf("pids %v, want %v", pids, want)
	}
	children, err := hybrid.Children(shimPID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{pausePID, activatorPID}; !slices.Equal(children, want) {
		t.Errorf("children %v, want %v", children, want)
	}
	// From init: the shim, then its children.
	descendants, err := hybrid.Descendants(1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{shimPID, pausePID, activatorPID}; !slices.Equal(descendants, want) {
		t.Errorf("descendants %v, want %v", descendants, want)
	}
	none, err := hybrid.Descendants(pausePID)
	if err != nil || len(none) != 0 {
		t.Errorf("pause's descendants %v %v", none, err)
	}
	tree, err := hybrid.ReadProcessTree()
	if err != nil {
		t.Fatal(err)
	}
	if got := tree.Descendants(shimPID); !slices.Equal(got, []int{pausePID, activatorPID}) {
		t.Errorf("the tree's descendants of the shim %v", got)
	}
	if _, err := NewFS(t.TempDir()).PIDs(); err == nil || !strings.Contains(err.Error(), "proc") {
		t.Errorf("no /proc: %v", err)
	}
}

// TestReadsThisMachine reads the real /proc through the root "/", the path
// production takes. Elsewhere than Linux it fails, saying why, rather than
// skipping.
func TestReadsThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("footprint reads Linux's /proc; this is %s", runtime.GOOS)
	}
	host := NewFS("/")
	self := os.Getpid()
	st, err := host.ReadStat(self)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != self || st.PPID != os.Getppid() || !strings.HasPrefix("footprint.test", st.Comm) || st.StartAfterBoot <= 0 {
		t.Errorf("stat %+v (pid %d, ppid %d)", st, self, os.Getppid())
	}
	smaps, err := host.ReadSmaps(self)
	if err != nil {
		t.Fatal(err)
	}
	if smaps.PssBytes <= 0 || smaps.RssBytes < smaps.PssBytes {
		t.Errorf("smaps %+v", smaps)
	}
	status, err := host.ReadStatus(self)
	if err != nil || status.VmRSSBytes == nil || *status.VmRSSBytes <= 0 {
		t.Errorf("status %+v %v", status, err)
	}
	mem, err := host.ReadMemInfo()
	if err != nil || mem.MemTotalBytes == nil || mem.MemAvailableBytes == nil || *mem.MemAvailableBytes > *mem.MemTotalBytes {
		t.Errorf("meminfo %+v %v", mem, err)
	}
	memberships, err := host.ReadProcCgroups(self)
	if err != nil || len(memberships) == 0 {
		t.Errorf("cgroups %v %v", memberships, err)
	}
	parentChildren, err := host.Children(os.Getppid())
	if err != nil || !slices.Contains(parentChildren, self) {
		t.Errorf("the parent's children %v (%v) lack this process %d", parentChildren, err, self)
	}
	sample, err := host.SampleProcesses([]int{self})
	if err != nil || len(sample.Processes) != 1 || sample.PSSBytes == nil || *sample.PSSBytes <= 0 {
		t.Errorf("sample %+v %v", sample, err)
	}
	// The cgroup layout is the machine's business, not this test's: shown, not asserted.
	layout, err := host.DetectCgroups()
	t.Logf("this machine: pss %d B via %s, cgroup mode %q (%v)", smaps.PssBytes, smaps.Source, layout.Mode, err)
}
