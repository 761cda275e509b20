package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/footprint"
	"github.com/coldbench/coldbench/pkg/results"
)

// fakeNode is a /proc and cgroup v1 tree (hybrid, as these machines) in a
// temporary directory, with the files the footprint measurement reads.
type fakeNode struct {
	t    *testing.T
	root string
}

func newFakeNode(t *testing.T) *fakeNode {
	n := &fakeNode{t: t, root: t.TempDir()}
	cg := filepath.Join(n.root, "sys/fs/cgroup")
	for _, h := range []string{"memory", "cpu,cpuacct", "unified"} {
		n.write(filepath.Join(cg, h, "cgroup.procs"), "1\n")
	}
	n.write(filepath.Join(cg, "unified/cgroup.controllers"), "")
	if err := os.Symlink("cpu,cpuacct", filepath.Join(cg, "cpuacct")); err != nil {
		t.Fatal(err)
	}
	n.memAvailable(20 << 30)
	return n
}

func (n *fakeNode) write(path, data string) {
	n.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n *fakeNode) memAvailable(bytes int64) {
	n.write(filepath.Join(n.root, "proc/meminfo"), fmt.Sprintf("MemTotal: 25000000 kB\nMemFree: 1000 kB\nMemAvailable: %d kB\n", bytes/1024))
}

// process writes pid's stat (CPU in clock ticks of 10 ms) and
// smaps_rollup.
func (n *fakeNode) process(pid, ppid int, comm string, utime, stime, cutime, cstime int, pssKB int) {
	dir := filepath.Join(n.root, "proc", fmt.Sprint(pid))
	n.write(filepath.Join(dir, "stat"), fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 0 0 0 0 %d %d %d %d 20 0 1 0 %d 1000 10 18446744073709551615\n",
		pid, comm, ppid, pid, pid, utime, stime, cutime, cstime, 1000+pid))
	n.write(filepath.Join(dir, "smaps_rollup"), fmt.Sprintf("00400000-7fff [rollup]\nRss: %d kB\nPss: %d kB\n", 2*pssKB, pssKB))
}

// pod writes a pod cgroup (path) in both hierarchies, with one child
// cgroup per container holding its processes.
func (n *fakeNode) pod(path string, cpuNS int64, usage, inactiveFile int64, containers map[string][]int) {
	for _, h := range []string{"memory", "cpu,cpuacct"} {
		dir := filepath.Join(n.root, "sys/fs/cgroup", h, path)
		n.write(filepath.Join(dir, "cgroup.procs"), "")
		for id, pids := range containers {
			var b strings.Builder
			for _, p := range pids {
				fmt.Fprintln(&b, p)
			}
			n.write(filepath.Join(dir, id, "cgroup.procs"), b.String())
		}
	}
	n.podCPU(path, cpuNS)
	n.write(filepath.Join(n.root, "sys/fs/cgroup/memory", path, "memory.usage_in_bytes"), fmt.Sprint(usage))
	n.write(filepath.Join(n.root, "sys/fs/cgroup/memory", path, "memory.stat"),
		fmt.Sprintf("cache 0\nrss 0\ntotal_cache 4096\ntotal_rss %d\ntotal_inactive_file %d\ntotal_active_file 0\n", usage-4096, inactiveFile))
}

func (n *fakeNode) podCPU(path string, ns int64) {
	n.write(filepath.Join(n.root, "sys/fs/cgroup/cpu,cpuacct", path, "cpuacct.usage"), fmt.Sprint(ns))
}

// fakeClock advances only when the measurement sleeps; each sleep runs
// onSleep first (the node changing meanwhile).
type fakeClock struct {
	now     time.Time
	slept   []time.Duration
	onSleep func(k int)
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.onSleep != nil {
		c.onSleep(len(c.slept))
	}
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

func testInstance(i int, cgroupParent string) *instance {
	return &instance{index: i, sandbox: &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: cgroupParent}}}
}

func newTestFootprint(n *fakeNode, clock *fakeClock) *footprintMeasurement {
	return &footprintMeasurement{fs: footprint.NewFS(n.root), settle: 2 * time.Second,
		now: func() time.Time { return clock.now }, sleep: clock.sleep}
}

// measureOne measures one answered instance in /coldbench/poda of n, the
// cell a warm-up or not, with ctx for the settle; it returns the
// attempt's footprint and the clock.
func measureOne(ctx context.Context, n *fakeNode, warmup bool) (*results.Footprint, *fakeClock) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	m := newTestFootprint(n, clock)
	cell := bench.Cell{Scale: 1, Warmup: warmup}
	_ = m.Start(context.Background(), cell, nil)
	attempts := []results.Attempt{{Instance: 0, OK: true, Warmup: warmup, Cold: results.Cold{SandboxID: "sb"}}}
	m.afterReply(testInstance(0, "/coldbench/poda"), &attempts[0])
	m.Gather(ctx, cell, attempts)
	return attempts[0].Footprint, clock
}

// A runc-like instance: the shim (outside the pod cgroup) with pause and
// the function under it.
func TestFootprintOfAnInstance(t *testing.T) {
	n := newFakeNode(t)
	n.process(100, 1, "containerd-shim", 3, 2, 4, 1, 7000) // 50 ms own + 50 ms reaped (runc create/start)
	n.process(101, 100, "pause", 0, 0, 0, 0, 50)
	n.process(102, 100, "fn", 1, 1, 0, 0, 3000)
	n.process(200, 1, "containerd-shim", 9, 9, 0, 0, 7000) // another instance's: not counted
	n.pod("/coldbench/poda", 30_000_000, 5<<20, 1<<20, map[string][]int{"sb": {101}, "fn": {102}})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	m := newTestFootprint(n, clock)
	cell := bench.Cell{Scale: 2}
	if err := m.Start(context.Background(), cell, nil); err != nil {
		t.Fatal(err)
	}
	attempts := []results.Attempt{
		{Instance: 0, OK: true, Cold: results.Cold{SandboxID: "sb"}},
		{Instance: 1, ErrorClass: results.ErrTimeout, Cold: results.Cold{SandboxID: "sb2"}},
	}
	m.afterReply(testInstance(0, "/coldbench/poda"), &attempts[0])
	m.afterReply(testInstance(1, "/coldbench/podb"), &attempts[1]) // failed: not read
	clock.onSleep = func(k int) {
		if k == 1 { // during the idle half: 4 ms in the cgroup, 10 ms in the shim
			n.podCPU("/coldbench/poda", 34_000_000)
			n.process(100, 1, "containerd-shim", 4, 2, 4, 1, 7000)
			n.memAvailable(20<<30 - 30<<20)
		}
	}
	m.Gather(context.Background(), cell, attempts)

	if attempts[1].Footprint != nil {
		t.Errorf("a failed attempt has a footprint: %+v", attempts[1].Footprint)
	}
	f := attempts[0].Footprint
	if f == nil {
		t.Fatal("no footprint")
	}
	if f.Missing != "" {
		t.Errorf("missing: %s", f.Missing)
	}
	if f.Source != results.FootprintFromNode || f.SettleNS != (2*time.Second).Nanoseconds() || f.IdleWindowNS != time.Second.Nanoseconds() {
		t.Errorf("source %q settle %d idle window %d", f.Source, f.SettleNS, f.IdleWindowNS)
	}
	if len(clock.slept) != 2 || clock.slept[0] != time.Second || clock.slept[1] != time.Second {
		t.Errorf("slept %v, want the settle in two halves", clock.slept)
	}
	wantNS(t, "cpu to first byte", f.CPUToFirstByteNS, 30_000_000+100_000_000)
	wantNS(t, "idle cpu", f.IdleCPUNS, 4_000_000+10_000_000)
	wantNS(t, "pss", f.PSSBytes, (7000+50+3000)*1024)
	wantNS(t, "cgroup usage", f.CgroupUsageBytes, 5<<20)
	wantNS(t, "working set", f.CgroupWorkingSetBytes, 4<<20)
	wantNS(t, "MemAvailable drop", f.NodeMemAvailableDropBytes, 30<<20)
	if f.NodeInstances != 2 || f.NodeInstancesAnswered != 1 {
		t.Errorf("node instances %d (%d answered), want 2 (both sandboxes run), 1", f.NodeInstances, f.NodeInstancesAnswered)
	}
	if len(f.Processes) != 3 || f.Processes[0].Comm != "containerd-shim" || f.Processes[2].Comm != "fn" {
		t.Errorf("processes %+v", f.Processes)
	}
	for _, k := range []string{"pss", "cpu", "cgroup_memory", "cgroup_working_set", "node_mem_available"} {
		if f.Sources[k] == "" {
			t.Errorf("no source for %s: %v", k, f.Sources)
		}
	}
}

// A pod cgroup with a process whose parent outside it is not a shim: the
// record says so instead of counting that parent.
func TestFootprintShimNotTold(t *testing.T) {
	n := newFakeNode(t)
	n.process(100, 1, "containerd-shim", 3, 2, 0, 0, 7000)
	n.process(101, 100, "pause", 0, 0, 0, 0, 50)
	n.process(300, 7, "stray", 0, 0, 0, 0, 50)
	n.process(7, 1, "init", 0, 0, 0, 0, 50)
	n.pod("/coldbench/poda", 1, 1<<20, 0, map[string][]int{"sb": {101}, "x": {300}})
	f, _ := measureOne(context.Background(), n, false)
	if f == nil || f.PSSBytes != nil || f.CPUToFirstByteNS != nil ||
		!strings.Contains(f.Missing, "cannot tell the shims of cgroup /coldbench/poda: stray (pid 300) in it has the parent init (pid 7), not a containerd-shim*") {
		t.Errorf("footprint %+v", f)
	}
	if f != nil && f.NodeMemAvailableDropBytes == nil {
		t.Error("the node's figure is lost with the instance's")
	}
}

// The shim in the pod cgroup (Kata's sandbox_cgroup_only): its CPU is in
// the cgroup's, not added again.
func TestFootprintShimInTheCgroup(t *testing.T) {
	n := newFakeNode(t)
	n.process(100, 1, "containerd-shim", 3, 2, 0, 0, 7000)
	n.process(101, 100, "qemu", 50, 50, 0, 0, 90000)
	n.pod("/coldbench/poda", 2_000_000_000, 1<<20, 0, map[string][]int{"sb": {100, 101}})
	f, _ := measureOne(context.Background(), n, false)
	wantNS(t, "cpu to first byte", f.CPUToFirstByteNS, 2_000_000_000)
	wantNS(t, "pss", f.PSSBytes, (7000+90000)*1024)
	if strings.Contains(f.Sources["cpu"], "shim") {
		t.Errorf("cpu source %q adds the shim", f.Sources["cpu"])
	}
}

// A run that ends during the settle records why the footprint is missing.
func TestFootprintInterruptedSettle(t *testing.T) {
	n := newFakeNode(t)
	n.process(100, 1, "containerd-shim", 3, 2, 0, 0, 7000)
	n.process(101, 100, "pause", 0, 0, 0, 0, 50)
	n.pod("/coldbench/poda", 1, 1<<20, 0, map[string][]int{"sb": {101}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, _ := measureOne(ctx, n, false)
	if f == nil || f.PSSBytes != nil || !strings.Contains(f.Missing, "memory and idle cpu: the run ended during the settle") {
		t.Errorf("footprint %+v", f)
	}
	if f != nil && f.CPUToFirstByteNS == nil {
		t.Error("the CPU read at the reply is lost with the settle")
	}
}

func wantNS(t *testing.T, what string, got *int64, want int64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: not measured, want %d", what, want)
	} else if *got != want {
		t.Errorf("%s: %d, want %d", what, *got, want)
	}
}

// A warm-up cell is not measured: its teardown does not wait the settle.
func TestFootprintSkipsWarmups(t *testing.T) {
	n := newFakeNode(t)
	n.process(100, 1, "containerd-shim", 3, 2, 0, 0, 7000)
	n.process(101, 100, "pause", 0, 0, 0, 0, 50)
	n.pod("/coldbench/poda", 1, 1<<20, 0, map[string][]int{"sb": {101}})
	f, clock := measureOne(context.Background(), n, true)
	if f != nil || len(clock.slept) != 0 {
		t.Errorf("warm-up measured: %+v, slept %v", f, clock.slept)
	}
}

// An interleaved A/B measures odd iterations only; the even ones, its
// control, are not measured but idle the settle all the same, so that
// every cell starts as long after the one before.
func TestFootprintInterleaved(t *testing.T) {
	n := newFakeNode(t)
	n.process(100, 1, "containerd-shim", 3, 2, 0, 0, 7000)
	n.process(101, 100, "pause", 0, 0, 0, 0, 50)
	n.pod("/coldbench/poda", 1, 1<<20, 0, map[string][]int{"sb": {101}})
	for it, want := range []bool{false, true, false, true} {
		clock := &fakeClock{now: time.Unix(1000, 0)}
		m := newTestFootprint(n, clock)
		m.interleave = true
		cell := bench.Cell{Scale: 1, Iteration: it}
		_ = m.Start(context.Background(), cell, nil)
		attempts := []results.Attempt{{Instance: 0, OK: true, Iteration: it, Cold: results.Cold{SandboxID: "sb"}}}
		m.afterReply(testInstance(0, "/coldbench/poda"), &attempts[0])
		m.Gather(context.Background(), cell, attempts)
		var slept time.Duration
		for _, d := range clock.slept {
			slept += d
		}
		if got := attempts[0].Footprint != nil; got != want || slept != 2*time.Second {
			t.Errorf("iteration %d: measured %v (slept %v), want %v after the 2 s settle", it, got, clock.slept, want)
		}
	}
}

// gVisor's shim without grouping: one shim per container, both counted.
func TestFootprintTwoShims(t *testing.T) {
	n := newFakeNode(t)
	n.process(100, 1, "containerd-shim", 3, 2, 1, 0, 20000)
	n.process(101, 100, "exe", 0, 0, 0, 0, 30000)   // runsc-gofer of the sandbox
	n.process(102, 100, "exe", 10, 10, 0, 0, 40000) // runsc-sandbox
	n.process(103, 102, "exe", 1, 1, 0, 0, 1000)
	n.process(104, 100, "runsc", 0, 0, 0, 0, 9000) // runsc wait, outside the cgroup
	n.process(200, 1, "containerd-shim", 1, 1, 2, 0, 19000)
	n.process(201, 200, "exe", 0, 0, 0, 0, 25000) // the function container's gofer
	n.pod("/coldbench/poda", 500_000_000, 60<<20, 0, map[string][]int{"": {101, 102, 103, 201}})
	f, _ := measureOne(context.Background(), n, false)
	if f.Missing != "" {
		t.Fatal(f.Missing)
	}
	wantNS(t, "cpu to first byte", f.CPUToFirstByteNS, 500_000_000+60_000_000+40_000_000)
	wantNS(t, "pss", f.PSSBytes, (20000+30000+40000+1000+9000+19000+25000)*1024)
	if len(f.Processes) != 7 || !strings.Contains(f.Sources["cpu"], "2 shim(s)") {
		t.Errorf("processes %+v, cpu source %q", f.Processes, f.Sources["cpu"])
	}
}
