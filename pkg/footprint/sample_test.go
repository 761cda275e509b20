package footprint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The captured pod: its cgroup's processes plus the shim, outside it.
func TestSampleHybridPod(t *testing.T) {
	fsys := NewFS(hybridRoot)
	layout, err := fsys.DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := layout.V1("memory", hybridPod)
	pids, err := pod.SubtreeProcs()
	if err != nil {
		t.Fatal(err)
	}
	s, err := fsys.SampleProcesses(append(pids, shimPID))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Processes) != 3 || s.Gone != 0 || s.KernelThreads != 0 {
		t.Fatalf("%+v", s)
	}
	wantBytes(t, "PSS", s.PSSBytes, (7461+49+104380)*1024)
	wantBytes(t, "RSS", s.RSSBytes, (17476+680+104388)*1024)
	if s.CPU == nil || *s.CPU != (155+137+5+2+1565+2031)*10*time.Millisecond {
		t.Errorf("cpu %v", s.CPU)
	}
	if s.MemorySource != SourceSmapsRollup || s.CPUSource != SourceStatCPU {
		t.Errorf("sources %q %q", s.MemorySource, s.CPUSource)
	}
	first := s.Processes[0]
	if first.PID != shimPID || first.Comm != "containerd-shim" || first.PSSBytes != 7461*1024 || first.CPU != 2920*time.Millisecond {
		t.Errorf("shim %+v", first)
	}
}

// A PID listed in cgroup.procs whose process exited before it was read is
// counted, not an error.
func TestSampleVanishedProcess(t *testing.T) {
	fsys := NewFS(v2Root)
	layout, err := fsys.DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := layout.V2(v2Pod)
	pids, err := pod.SubtreeProcs() // 4121, 4188 and 4200, which has no /proc entry
	if err != nil {
		t.Fatal(err)
	}
	s, err := fsys.SampleProcesses(append(pids, 4100, 4188))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Processes) != 3 || s.Gone != 1 {
		t.Fatalf("%d processes, %d gone: %+v", len(s.Processes), s.Gone, s)
	}
	wantBytes(t, "PSS", s.PSSBytes, (1460+49+2310)*1024)
}

// Nothing measurable (a kernel thread, a zombie, an exited PID): the sums
// are "not measured", not 0.
func TestSampleNothingMeasured(t *testing.T) {
	s, err := NewFS(edgeRoot).SampleProcesses([]int{2, 1700073, 424242})
	if err != nil {
		t.Fatal(err)
	}
	if s.KernelThreads != 1 || s.Gone != 2 || len(s.Processes) != 0 {
		t.Errorf("%+v", s)
	}
	wantNil(t, "PSS", s.PSSBytes)
	wantNil(t, "RSS", s.RSSBytes)
	if s.CPU != nil || s.MemorySource != "" {
		t.Errorf("cpu %v source %q", s.CPU, s.MemorySource)
	}
}

// Errors other than a vanished process stop the sample and name the file.
func TestSampleErrors(t *testing.T) {
	// /proc/PID exists, no smaps files at all (captured stat only).
	if _, err := NewFS(edgeRoot).SampleProcesses([]int{1698274}); err == nil || !strings.Contains(err.Error(), "neither smaps_rollup nor smaps") {
		t.Errorf("no smaps: %v", err)
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "proc/5/stat"), "5 (x) S\n")
	if _, err := NewFS(root).SampleProcesses([]int{5}); err == nil || !strings.Contains(err.Error(), filepath.Join(root, "proc/5/stat")) {
		t.Errorf("truncated stat: %v", err)
	}
	// An unreadable smaps_rollup (here a directory: EISDIR, which unlike
	// EACCES also fails as root) is an error, not a vanished process.
	stat, err := os.ReadFile(filepath.Join(v2Root, "proc/4188/stat"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "proc/4188/stat"), string(stat))
	if err := os.MkdirAll(filepath.Join(root, "proc/4188/smaps_rollup"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFS(root).SampleProcesses([]int{4188}); err == nil || IsGone(err) || !strings.Contains(err.Error(), "smaps_rollup") {
		t.Errorf("unreadable: %v", err)
	}
}
