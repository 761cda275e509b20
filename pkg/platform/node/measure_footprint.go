package node

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/footprint"
	"github.com/coldbench/coldbench/pkg/results"
)

// The footprint of each instance (memory and CPU), read from this node's
// /proc and cgroup files, since the node backend runs on the node:
//   - just after an instance's first byte, the CPU its pod cgroup and its
//     shim have used (afterReply: a few small files, while the cell's
//     other instances may still be starting);
//   - after the cell's last reply and a settle period with every instance
//     idle: the PSS of the instance's processes (its shim and the shim's
//     descendants, plus whatever else is in its pod cgroup), the pod
//     cgroup's memory, the CPU used over the settle's second half (idle),
//     and the node's MemAvailable against its value before the cell.
//
// The pod cgroup is the one the session gives each sandbox as its cgroup
// parent (/coldbench/pod<uid>), which containerd's cgroupfs driver makes
// in every hierarchy. The shim runs outside it (containerd starts shims in
// its own cgroup), so the shim's CPU is read from its /proc stat, with the
// children it reaped (the runtime's create and start commands, which exit
// before anything could read them). An instance may have more than one
// shim: gVisor's shim without its grouping option (which coldbench's
// runsc set-up cannot use, see cmd/coldbench-runsc-shim) runs one per
// container, so a pod has two.

func init() { registerMeasurement(newFootprint) }

// footprintMeasurement measures one session's cells, one at a time.
type footprintMeasurement struct {
	fs     footprint.FS
	settle time.Duration
	// interleave: measure odd iterations only (spec.footprint.interleave).
	interleave bool
	now        func() time.Time
	// sleep waits d or until ctx ends (then its error).
	sleep func(ctx context.Context, d time.Duration) error

	layoutOnce sync.Once
	layout     footprint.CgroupLayout
	layoutErr  error

	// The cell being measured: Start resets it.
	mu sync.Mutex
	// skip: the cell is a warm-up, whose footprint no report reads, or an
	// even iteration of an interleaved A/B (spec.footprint.interleave); it
	// is not measured, so its teardown does not wait the settle.
	skip      bool
	control   bool // an even iteration of an interleaved A/B: idles the settle unmeasured
	memBefore *int64
	memErr    error
	replies   map[int]*instanceReading // by instance index
}

// instanceReading is what afterReply found of an instance.
type instanceReading struct {
	inst       footprint.Instance
	cpuAtReply *time.Duration
	missing    []string
}

func newFootprint(s *session) bench.Measurement {
	spec := s.exp.Spec.Footprint
	if spec == nil || spec.Off {
		return nil
	}
	return &footprintMeasurement{fs: footprint.NewFS("/"), settle: spec.Settle.Duration, interleave: spec.Interleave, now: time.Now, sleep: bench.Sleep}
}

func (m *footprintMeasurement) Name() string { return "footprint" }

// Start reads the node's MemAvailable before any of the cell's sandboxes
// exists (the node backend creates them in the timed part).
func (m *footprintMeasurement) Start(ctx context.Context, cell bench.Cell, instances []bench.Instance) error {
	m.layoutOnce.Do(func() { m.layout, m.layoutErr = m.fs.DetectCgroups() })
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replies = map[int]*instanceReading{}
	m.control = !cell.Warmup && m.interleave && cell.Iteration%2 == 0
	if m.skip = cell.Warmup || m.control; m.skip {
		return nil
	}
	m.memBefore, m.memErr = m.memAvailable()
	return nil
}

func (m *footprintMeasurement) memAvailable() (*int64, error) {
	mi, err := m.fs.ReadMemInfo()
	if err != nil {
		return nil, err
	}
	if mi.MemAvailableBytes == nil {
		return nil, errors.New("/proc/meminfo has no MemAvailable (a kernel before 3.14)")
	}
	return mi.MemAvailableBytes, nil
}

// afterReply reads the instance's CPU so far, just after its first byte.
func (m *footprintMeasurement) afterReply(in *instance, a *results.Attempt) {
	if !a.OK || m.skip {
		return
	}
	r := &instanceReading{}
	if m.layoutErr != nil {
		r.missing = append(r.missing, "cgroups: "+m.layoutErr.Error())
	} else if inst, err := m.fs.FindInstance(m.layout, in.sandbox.GetLinux().GetCgroupParent()); err != nil {
		r.missing = append(r.missing, "shim: "+err.Error())
	} else {
		r.inst = inst
		if cpu, err := m.fs.CPU(m.layout, inst); err != nil {
			r.missing = append(r.missing, "cpu at the first byte: "+err.Error())
		} else {
			r.cpuAtReply = &cpu
		}
	}
	m.mu.Lock()
	m.replies[in.index] = r
	m.mu.Unlock()
}

// Gather lets the instances settle, reads each answered instance's
// footprint and adds it to its attempt.
func (m *footprintMeasurement) Gather(ctx context.Context, cell bench.Cell, attempts []results.Attempt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.skip {
		if m.control {
			// The A/B's control idles as long as a measured cell, so that
			// the next cell starts as long after this one's replies
			// whichever it follows.
			_ = m.sleep(ctx, m.settle)
		}
		return
	}
	began := m.now()
	if err := m.sleep(ctx, m.settle/2); err != nil {
		m.record(attempts, "the run ended during the settle ("+err.Error()+")")
		return
	}
	// Idle CPU: each instance's two readings, taken in tight loops at the
	// start and the end of the settle's second half, before anything
	// slower (the process tree, PSS) is read; each has its own window.
	idleFrom := m.readCPUs()
	if err := m.sleep(ctx, m.settle-m.now().Sub(began)); err != nil {
		m.record(attempts, "the run ended during the settle ("+err.Error()+")")
		return
	}
	idleTo := m.readCPUs()
	settled := m.now().Sub(began)
	var tree *footprint.ProcessTree
	treeErr := errors.New("no instance to read")
	if len(m.replies) > 0 {
		t, err := m.fs.ReadProcessTree()
		tree, treeErr = &t, err
	}
	running, answered := 0, 0
	for i := range attempts {
		if attempts[i].Cold.SandboxID != "" {
			running++
			if attempts[i].OK {
				answered++
			}
		}
	}
	var drop *int64
	nodeMissing := ""
	if m.memErr != nil {
		nodeMissing = "node MemAvailable: " + m.memErr.Error()
	} else if after, err := m.memAvailable(); err != nil {
		nodeMissing = "node MemAvailable: " + err.Error()
	} else {
		d := *m.memBefore - *after
		drop = &d
	}
	for i := range attempts {
		r, ok := m.replies[attempts[i].Instance]
		if !ok {
			continue // failed before its first byte: nothing idle to measure
		}
		f := m.base(r, settled.Nanoseconds())
		f.NodeMemAvailableDropBytes, f.NodeInstances, f.NodeInstancesAnswered = drop, running, answered
		missing := slices.Clone(r.missing)
		if nodeMissing != "" {
			missing = append(missing, nodeMissing)
		} else {
			f.Sources["node_mem_available"] = "/proc/meminfo MemAvailable before the cell and after the settle"
		}
		from, okFrom := idleFrom[attempts[i].Instance]
		to, okTo := idleTo[attempts[i].Instance]
		switch {
		case r.cpuAtReply == nil:
		case from.err != nil || to.err != nil:
			missing = append(missing, "idle cpu: "+errors.Join(from.err, to.err).Error())
		case okFrom && okTo:
			f.IdleCPUNS, f.IdleWindowNS = ptr((to.cpu - from.cpu).Nanoseconds()), to.at.Sub(from.at).Nanoseconds()
			f.Sources["idle_cpu"] = f.Sources["cpu"] + ", over the settle's second half (a shim's CPU moves in 10 ms ticks)"
		}
		if len(r.inst.Shims) > 0 {
			if treeErr != nil {
				missing = append(missing, "pss: "+treeErr.Error())
			} else {
				missing = append(missing, addMemory(f, m.fs.ReadMemory(m.layout, r.inst, *tree))...)
			}
		}
		f.Missing = strings.Join(missing, "; ")
		attempts[i].Footprint = f
	}
}

// cpuReading is one instance's CPU so far, and when it was read.
type cpuReading struct {
	cpu time.Duration
	at  time.Time
	err error
}

// readCPUs reads the CPU of every instance read at its reply.
func (m *footprintMeasurement) readCPUs() map[int]cpuReading {
	out := map[int]cpuReading{}
	for i, r := range m.replies {
		if r.cpuAtReply == nil {
			continue
		}
		cpu, err := m.fs.CPU(m.layout, r.inst)
		out[i] = cpuReading{cpu: cpu, at: m.now(), err: err}
	}
	return out
}

// base is an instance's footprint with what its reply gave: the CPU to
// its first byte.
func (m *footprintMeasurement) base(r *instanceReading, settleNS int64) *results.Footprint {
	f := &results.Footprint{Source: results.FootprintFromNode, SettleNS: settleNS, Sources: map[string]string{}}
	if r.cpuAtReply != nil {
		f.CPUToFirstByteNS = ptr(r.cpuAtReply.Nanoseconds())
		f.Sources["cpu"] = r.inst.CPUSource(m.layout)
	}
	return f
}

// addMemory adds memory's figures to f and returns why some are missing.
func addMemory(f *results.Footprint, mem footprint.Memory) []string {
	f.PSSBytes, f.PSSAnonShmemBytes = mem.PSSBytes, mem.PSSAnonShmemBytes
	f.CgroupUsageBytes, f.CgroupWorkingSetBytes = mem.CgroupUsageBytes, mem.CgroupWorkingSetBytes
	for _, p := range mem.Processes {
		f.Processes = append(f.Processes, results.FootprintProcess{Comm: p.Comm, PID: p.PID, PSSBytes: p.PSSBytes})
	}
	maps.Copy(f.Sources, mem.Sources)
	return mem.Missing
}

// record gives every answered attempt what its reply gave (the CPU to
// its first byte), and why the rest is missing.
func (m *footprintMeasurement) record(attempts []results.Attempt, why string) {
	for i := range attempts {
		if r, ok := m.replies[attempts[i].Instance]; ok {
			f := m.base(r, 0)
			f.Missing = strings.Join(append(slices.Clone(r.missing), "memory and idle cpu: "+why), "; ")
			attempts[i].Footprint = f
		}
	}
}

func ptr[T any](v T) *T { return &v }
