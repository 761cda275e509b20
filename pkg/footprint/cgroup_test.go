package footprint

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The captured pod's cgroup path (the same in every hierarchy) and its
// containers' (pause first).
const (
	hybridPod       = "/coldbench-lab/kubepods/burstable/pod845e04c4-140b-4404-9725-2151214a4405"
	hybridPause     = hybridPod + "/e12ddd70f08617f71c437fbdb49db2fd05b5ac3590460b828b46477116981d6a"
	v2Pod           = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3f6c1e2a_8b1d_4c55_9f0e_2a7d41c9b6e1.slice"
	v2FunctionScope = v2Pod + "/cri-containerd-9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b.scope"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDetectCgroups(t *testing.T) {
	hybrid, err := NewFS(hybridRoot).DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(hybridRoot, "sys/fs/cgroup")
	if hybrid.Mode != CgroupHybrid || hybrid.UnifiedMount != filepath.Join(base, "unified") ||
		hybrid.V1Mounts["memory"] != filepath.Join(base, "memory") || hybrid.V1Mounts["cpuacct"] != filepath.Join(base, "cpuacct") {
		t.Errorf("hybrid: %+v", hybrid)
	}

	v2, err := NewFS(v2Root).DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	if v2.Mode != CgroupV2 || v2.UnifiedMount != filepath.Join(v2Root, "sys/fs/cgroup") || len(v2.V1Mounts) != 0 {
		t.Errorf("v2: %+v", v2)
	}

	// Pure v1 with cpu and cpuacct co-mounted, linked under both names as
	// distributions do.
	root := t.TempDir()
	v1base := filepath.Join(root, "sys/fs/cgroup")
	writeFile(t, filepath.Join(v1base, "cpu,cpuacct/cgroup.procs"), "1\n")
	writeFile(t, filepath.Join(v1base, "memory/cgroup.procs"), "1\n")
	for _, link := range []string{"cpu", "cpuacct"} {
		if err := os.Symlink("cpu,cpuacct", filepath.Join(v1base, link)); err != nil {
			t.Fatal(err)
		}
	}
	v1, err := NewFS(root).DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	if v1.Mode != CgroupV1 || v1.UnifiedMount != "" || v1.V1Mounts["memory"] != filepath.Join(v1base, "memory") {
		t.Errorf("v1: %+v", v1)
	}
	for _, controller := range []string{"cpu", "cpuacct"} {
		if !fileExists(filepath.Join(v1.V1Mounts[controller], "cgroup.procs")) {
			t.Errorf("v1 %s mount %q", controller, v1.V1Mounts[controller])
		}
	}

	if _, err := NewFS(t.TempDir()).DetectCgroups(); err == nil {
		t.Error("no cgroup filesystem: no error")
	}
	empty := t.TempDir()
	writeFile(t, filepath.Join(empty, "sys/fs/cgroup/README"), "a tmpfs with nothing mounted\n")
	if _, err := NewFS(empty).DetectCgroups(); err == nil || !strings.Contains(err.Error(), "no cgroup hierarchy") {
		t.Errorf("nothing mounted: %v", err)
	}
}

func TestReadProcCgroups(t *testing.T) {
	// Hybrid (captured): v1 lines and a "0::" line. The shim sits in a
	// memory cgroup of its own, outside the pod's.
	shim, err := NewFS(hybridRoot).ReadProcCgroups(shimPID)
	if err != nil {
		t.Fatal(err)
	}
	if len(shim) != 11 {
		t.Errorf("%d lines, want 11", len(shim))
	}
	if p, ok := shim.V1Path("memory"); !ok || p != "/process_api/987ce4945bc7578d3b3ff6b4bb32acb4" {
		t.Errorf("shim memory path %q %v", p, ok)
	}
	if p, ok := shim.V1Path("name=systemd"); !ok || p != "/" {
		t.Errorf("named hierarchy %q %v", p, ok)
	}
	if p, ok := shim.V2Path(); !ok || p != "/" {
		t.Errorf("shim v2 path %q %v", p, ok)
	}
	pause, err := NewFS(hybridRoot).ReadProcCgroups(pausePID)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := pause.V1Path("cpuacct"); p != hybridPause {
		t.Errorf("pause cpuacct path %q", p)
	}

	// v2 (written): one line, no controllers.
	fn, err := NewFS(v2Root).ReadProcCgroups(4188)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := fn.V2Path(); !ok || p != v2FunctionScope || len(fn) != 1 {
		t.Errorf("v2: %+v", fn)
	}
	if _, ok := fn.V1Path("memory"); ok {
		t.Error("v2 process has a v1 memory path")
	}

	// v1 only, co-mounted controllers, and a ':' inside the path.
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "proc/9/cgroup"), "3:memory:/a:b\n2:cpu,cpuacct:/x\n")
	v1, err := NewFS(root).ReadProcCgroups(9)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := v1.V1Path("memory"); p != "/a:b" {
		t.Errorf("path with ':' %q", p)
	}
	if p, _ := v1.V1Path("cpuacct"); p != "/x" {
		t.Errorf("co-mounted %q", p)
	}
	if _, ok := v1.V2Path(); ok {
		t.Error("v1-only process has a v2 path")
	}
	writeFile(t, filepath.Join(root, "proc/10/cgroup"), "memory:/x\n")
	if _, err := NewFS(root).ReadProcCgroups(10); err == nil || !strings.Contains(err.Error(), "proc/10/cgroup") {
		t.Errorf("malformed: %v", err)
	}
}

func TestLocateAndProcs(t *testing.T) {
	fsys := NewFS(hybridRoot)
	layout, err := fsys.DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	memberships, err := fsys.ReadProcCgroups(pausePID)
	if err != nil {
		t.Fatal(err)
	}
	// Hybrid: memory from the v1 hierarchy, not the controller-less unified one.
	cg, err := layout.Locate("memory", memberships)
	if err != nil {
		t.Fatal(err)
	}
	if cg.Version != 1 || cg.Path != hybridPause || cg.Dir != filepath.Join(hybridRoot, "sys/fs/cgroup/memory", hybridPause) {
		t.Errorf("located %+v", cg)
	}
	procs, err := cg.Procs()
	if err != nil || !slices.Equal(procs, []int{pausePID}) {
		t.Errorf("pause cgroup procs %v %v", procs, err)
	}
	// The pod cgroup holds no process itself; its containers do.
	pod, err := layout.V1("memory", hybridPod)
	if err != nil {
		t.Fatal(err)
	}
	if own, err := pod.Procs(); err != nil || len(own) != 0 {
		t.Errorf("pod's own procs %v %v", own, err)
	}
	all, err := pod.SubtreeProcs()
	if err != nil || !slices.Equal(all, []int{pausePID, activatorPID}) {
		t.Errorf("pod subtree procs %v %v", all, err)
	}
	if _, err := layout.V1("rdma", "/"); err == nil {
		t.Error("unmounted controller: no error")
	}

	// v2: a container scope lists a PID twice (cgroup.procs may), kept once.
	v2 := NewFS(v2Root)
	v2layout, err := v2.DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	fn, err := v2.ReadProcCgroups(4188)
	if err != nil {
		t.Fatal(err)
	}
	scope, err := v2layout.Locate("memory", fn)
	if err != nil || scope.Version != 2 || scope.Path != v2FunctionScope {
		t.Fatalf("v2 located %+v %v", scope, err)
	}
	if procs, err := scope.Procs(); err != nil || !slices.Equal(procs, []int{4188, 4200}) {
		t.Errorf("scope procs %v %v", procs, err)
	}
	v2pod, _ := v2layout.V2(v2Pod)
	if all, err := v2pod.SubtreeProcs(); err != nil || !slices.Equal(all, []int{4121, 4188, 4200}) {
		t.Errorf("v2 pod subtree procs %v %v", all, err)
	}
	if _, err := (Cgroup{Version: 2, Dir: filepath.Join(v2Root, "gone")}).SubtreeProcs(); err == nil {
		t.Error("removed cgroup: no error")
	}
}

func TestCgroupMemoryV1(t *testing.T) {
	layout, err := NewFS(hybridRoot).DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := layout.V1("memory", hybridPod)
	m, err := pod.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if m.UsageBytes != 75026432 || m.Source != "cgroup v1 memory.usage_in_bytes" {
		t.Errorf("usage %d from %q", m.UsageBytes, m.Source)
	}
	wantBytes(t, "anon", m.AnonBytes, 71471104)
	wantBytes(t, "file", m.FileBytes, 2551808)
	wantBytes(t, "inactive_file", m.InactiveFileBytes, 167936)
	wantBytes(t, "active_file", m.ActiveFileBytes, 2387968)
	wantBytes(t, "working set", m.WorkingSetBytes, 75026432-167936)
	if m.WorkingSetFloored || !strings.Contains(m.WorkingSetSource, "total_inactive_file") || m.Stat["total_pgfault"] != 33053 {
		t.Errorf("%+v", m)
	}

	// A v1 memory.stat without total_inactive_file: no working set, rather
	// than the usage under the working set's name.
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "memory.usage_in_bytes"), "8192\n")
	writeFile(t, filepath.Join(root, "memory.stat"), "cache 0\nrss 8192\ntotal_rss 8192\n")
	bare, err := (Cgroup{Version: 1, Dir: root}).Memory()
	if err != nil {
		t.Fatal(err)
	}
	wantNil(t, "working set without inactive_file", bare.WorkingSetBytes)
	wantNil(t, "file without total_cache", bare.FileBytes)
	wantBytes(t, "anon", bare.AnonBytes, 8192)

	writeFile(t, filepath.Join(root, "memory.stat"), "total_rss -1\n")
	if _, err := (Cgroup{Version: 1, Dir: root}).Memory(); err == nil || !strings.Contains(err.Error(), "memory.stat") {
		t.Errorf("malformed memory.stat: %v", err)
	}
	if _, err := (Cgroup{Version: 1, Dir: filepath.Join(root, "none")}).Memory(); err == nil || !strings.Contains(err.Error(), "reading ") {
		t.Errorf("no cgroup: %v", err)
	}
}

func TestCgroupMemoryV2(t *testing.T) {
	layout, err := NewFS(v2Root).DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := layout.V2(v2Pod)
	m, err := pod.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if m.UsageBytes != 10354688 || m.Source != "cgroup v2 memory.current" {
		t.Errorf("usage %d from %q", m.UsageBytes, m.Source)
	}
	wantBytes(t, "anon", m.AnonBytes, 6291456)
	wantBytes(t, "file", m.FileBytes, 2883584)
	wantBytes(t, "inactive_file", m.InactiveFileBytes, 1646592)
	wantBytes(t, "working set", m.WorkingSetBytes, 10354688-1646592)

	// inactive_file above memory.current (the two are not read at once):
	// the working set is 0, and says it was floored.
	floor, _ := layout.V2("/floor.slice")
	f, err := floor.Memory()
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "floored working set", f.WorkingSetBytes, 0)
	if !f.WorkingSetFloored {
		t.Error("not marked floored")
	}
}

func TestCgroupCPU(t *testing.T) {
	hybrid, err := NewFS(hybridRoot).DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := hybrid.V1("cpuacct", hybridPod)
	cpu, err := v1.CPUUsage()
	if err != nil || cpu.Usage != 36080058352*time.Nanosecond || cpu.Source != "cgroup v1 cpuacct.usage" {
		t.Errorf("v1: %+v %v", cpu, err)
	}
	// The hybrid node's unified mount has no controllers but every cgroup
	// still has cpu.stat: the same pod, the same CPU time (read 7 ms later).
	unified, _ := hybrid.V2(hybridPod)
	cpu2, err := unified.CPUUsage()
	if err != nil || cpu2.Usage != 36087201*time.Microsecond || cpu2.Source != "cgroup v2 cpu.stat usage_usec" {
		t.Errorf("hybrid unified: %+v %v", cpu2, err)
	}

	v2, err := NewFS(v2Root).DetectCgroups()
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := v2.V2(v2Pod)
	if cpu, err := pod.CPUUsage(); err != nil || cpu.Usage != 183042*time.Microsecond {
		t.Errorf("v2: %+v %v", cpu, err)
	}
	// The memory hierarchy has no cpuacct.usage: an error naming the file.
	mem, _ := hybrid.V1("memory", hybridPod)
	if _, err := mem.CPUUsage(); err == nil || !strings.Contains(err.Error(), "cpuacct.usage") {
		t.Errorf("wrong hierarchy: %v", err)
	}
}

func TestReadMemInfo(t *testing.T) {
	m, err := NewFS(hybridRoot).ReadMemInfo()
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "MemTotal", m.MemTotalBytes, 24683748*1024)
	wantBytes(t, "MemFree", m.MemFreeBytes, 10259412*1024)
	wantBytes(t, "MemAvailable", m.MemAvailableBytes, 17141452*1024)

	// Before Linux 3.14 there is no MemAvailable: not measured, not 0.
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "proc/meminfo"), "MemTotal:        2048000 kB\nMemFree:          512000 kB\nBuffers:           1000 kB\n")
	old, err := NewFS(root).ReadMemInfo()
	if err != nil {
		t.Fatal(err)
	}
	wantNil(t, "MemAvailable", old.MemAvailableBytes)
	wantBytes(t, "MemTotal", old.MemTotalBytes, 2048000*1024)

	writeFile(t, filepath.Join(root, "proc/meminfo"), "MemTotal: 2048000\n")
	if _, err := NewFS(root).ReadMemInfo(); err == nil || !strings.Contains(err.Error(), "meminfo") {
		t.Errorf("no unit: %v", err)
	}
}
