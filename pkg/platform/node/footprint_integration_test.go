package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/results"
)

// Every answered instance of real runc, crun and gVisor cold starts gets a
// whole footprint from this node's /proc and cgroups: its shim and
// function among the processes summed, PSS at least the pod cgroup's anon
// memory would suggest is plausible, CPU to the first byte and idle, and
// the node's MemAvailable drop with the instances it is over.
func TestFootprintRealRuntimes(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	p, err := node.New(ep, bench.DefaultPort, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	exp := experiment(ep, "runc", "crun", "runsc")
	exp.Spec.Footprint = &bench.FootprintSpec{Settle: bench.Duration{Duration: time.Second}}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	id := bench.NewExperimentID(time.Now())
	sess := open(t, p, exp, id)
	var cgroups []string // the instances' pod cgroups
	for _, rt := range exp.Spec.Runtimes {
		const n = 2
		batch := sess.ColdStart(ctx, bench.Cell{ExperimentID: id, Runtime: rt, Scale: n,
			RequestTimeout: 30 * time.Second, ProbeInterval: 2 * time.Millisecond})
		for i, a := range batch {
			if !a.OK {
				t.Fatalf("%s #%d failed: %s: %s", rt.Name, i, a.ErrorClass, a.Error)
			}
			f := a.Footprint
			if f == nil {
				t.Fatalf("%s #%d: no footprint", rt.Name, i)
			}
			t.Logf("%s #%d: pss %s, cgroup %s, working set %s, cpu to first byte %s, idle cpu %s over %v, node drop %s over %d; processes %v",
				rt.Name, i, mib(f.PSSBytes), mib(f.CgroupUsageBytes), mib(f.CgroupWorkingSetBytes), ms(f.CPUToFirstByteNS), ms(f.IdleCPUNS),
				time.Duration(f.IdleWindowNS), mib(f.NodeMemAvailableDropBytes), f.NodeInstances, f.Processes)
			if f.Missing != "" {
				t.Errorf("%s #%d: missing %s", rt.Name, i, f.Missing)
			}
			if f.Source != results.FootprintFromNode || f.SettleNS < time.Second.Nanoseconds() || f.NodeInstances != n {
				t.Errorf("%s #%d: source %q settle %v over %d instances", rt.Name, i, f.Source, time.Duration(f.SettleNS), f.NodeInstances)
			}
			// An instance is at least a shim and a process of its own, and
			// costs at least a MiB (a shim alone has a few).
			for what, v := range map[string]*int64{"pss": f.PSSBytes, "cgroup usage": f.CgroupUsageBytes, "cpu to first byte": f.CPUToFirstByteNS} {
				if v == nil || *v <= 0 {
					t.Errorf("%s #%d: %s %v", rt.Name, i, what, v)
				}
			}
			if f.PSSBytes != nil && *f.PSSBytes < 1<<20 {
				t.Errorf("%s #%d: PSS %d bytes: less than a shim", rt.Name, i, *f.PSSBytes)
			}
			if f.IdleCPUNS == nil || f.IdleWindowNS <= 0 || f.NodeMemAvailableDropBytes == nil {
				t.Errorf("%s #%d: idle %v over %d, node drop %v", rt.Name, i, f.IdleCPUNS, f.IdleWindowNS, f.NodeMemAvailableDropBytes)
			}
			if src := f.Sources["cgroup_memory"]; src != "" {
				cgroups = append(cgroups, src[strings.LastIndex(src, " of ")+len(" of "):])
			}
			var comms []string
			for _, p := range f.Processes {
				comms = append(comms, p.Comm)
			}
			if len(comms) < 2 || !slices.ContainsFunc(comms, func(c string) bool { return len(c) >= 9 && (c[:9] == "container" || c[:9] == "coldbench") }) {
				t.Errorf("%s #%d: processes %v: no shim among them", rt.Name, i, comms)
			}
		}
	}
	// The teardown removes each pod cgroup too, in every hierarchy (the
	// runtimes make it from the cgroup parent and leave it).
	if len(cgroups) != 6 {
		t.Errorf("%d pod cgroups read, want 6: %v", len(cgroups), cgroups)
	}
	for _, path := range cgroups {
		if dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + path); len(dirs) > 0 {
			t.Errorf("pod cgroup %s left after the teardown: %v", path, dirs)
		}
	}
}

func mib(v *int64) string {
	if v == nil {
		return "not measured"
	}
	return fmt.Sprintf("%.1f MiB", float64(*v)/(1<<20))
}

func ms(v *int64) string {
	if v == nil {
		return "not measured"
	}
	return time.Duration(*v).String()
}
