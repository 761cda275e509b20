package cli

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/coldbench/coldbench/pkg/bench"
)

// densityFlags are density's own flags: spec.density's fields.
type densityFlags struct {
	step, max      int
	maxFailedShare float64
	maxLatency     time.Duration
	minMem         string
}

func (df *densityFlags) register(fl *pflag.FlagSet) {
	fl.IntVar(&df.step, "step", bench.DefaultDensityStep, "instances started at once per step; those that answer stay running")
	fl.IntVar(&df.max, "max", bench.MaxScale, "stop once this many instances of a runtime run (above "+fmt.Sprint(bench.MaxScale)+" with --force)")
	fl.Float64Var(&df.maxFailedShare, "max-failed-share", 0, "stop after a step in which more than this share of its instances failed (0 = any failure stops)")
	fl.DurationVar(&df.maxLatency, "max-latency", 0, "stop after a step whose median time to first byte is above this (0 = no bound)")
	fl.StringVar(&df.minMem, "min-mem-available", bench.DefaultMinMemAvailable, "stop when the node's MemAvailable is below this after a step, or would be after one more like it (0 = no floor)")
}

// apply sets spec.density from the flags (all of them without a file, those
// given with one). Without a file the sweep's default N go: a density run
// sets its own steps.
func (df *densityFlags) apply(s *bench.Spec, changed func(string) bool, fromFile bool) error {
	for _, z := range []struct {
		flag string
		zero bool
	}{{"step", df.step == 0}, {"max", df.max == 0}} {
		if changed(z.flag) && z.zero {
			return fmt.Errorf("--%s 0: must be positive; leave the flag out for its default", z.flag)
		}
	}
	if !fromFile {
		s.Scales = nil
		s.Iterations = 1 // each step is measured once
	}
	if s.Density == nil {
		s.Density = &bench.DensitySpec{}
	}
	set := func(name string, do func()) {
		if !fromFile || changed(name) {
			do()
		}
	}
	d := s.Density
	set("step", func() { d.Step = df.step })
	set("max", func() { d.Max = df.max })
	set("max-failed-share", func() { d.MaxFailedShare = df.maxFailedShare })
	set("max-latency", func() { d.MaxLatency.Duration = df.maxLatency })
	var err error
	set("min-mem-available", func() {
		q, perr := resource.ParseQuantity(df.minMem)
		if perr != nil {
			err = fmt.Errorf("--min-mem-available %q: not a size; write e.g. 2Gi, 512Mi, or 0 for no floor", df.minMem)
			return
		}
		d.MinMemAvailable = &q
	})
	return err
}

// notDensityFlags are run's flags density does not have: it sets its own
// steps, each measured once (no A/B of iterations to interleave).
var notDensityFlags = []string{"scales", "iterations", "footprint-interleave"}

func newDensityCmd(lg *logs) *cobra.Command {
	f := &runFlags{}
	df := &densityFlags{}
	cmd := &cobra.Command{
		Use:   "density",
		Short: "Keep instances running and start more, step by step, until the node is full: latency and memory at each density, and the capacity",
		Long: `density runs a density experiment: per runtime, it starts --step instances at
once, keeps those that answered running, and starts the next step among
them, until a stop condition holds: a step with more than --max-failed-share
of its instances failed, a step whose median time to first byte is above
--max-latency, the node's MemAvailable below --min-mem-available (or about to
fall below it with one more step like the last), or --max instances running.
Every attempt records the density it met (density.alive: the instances
already running when it started), so its latency and footprint are read
against it; the runtime's capacity is how many answered before the stop.
Then its instances are removed, and the next runtime starts on an empty
node. Warm-ups (--warmups, ordinary cells, torn down) come first.

Records are a run's (report, plot and compare read them); the report adds,
per runtime, its steps and the capacity with the reason it stopped. A density
run cannot be resumed: its instances are removed when it stops (also on
Ctrl-C or the deadline), and a continued run would start on an empty node
while its records say otherwise. On Knative (--platform knative), each step's
services are new (the fresh protocol) and those that answered keep their pod
(scale-to-zero-pod-retention-period, at most 1 h: the deadline is at most 50m);
MemAvailable comes from the node agent (the lowest of the nodes), and without
an agent the memory floor (2Gi by default) is refused: deploy the agent, or
pass --min-mem-available 0.

Exit status: 0 every runtime's run ended on a stop condition (failures are
findings then); 4 the deadline stopped it, or no attempt answered at all;
2 bad input; 1 any other failure, the clean-up leaving sandboxes included
(listed, with the clean command); 130 SIGINT, 143 SIGTERM.`,
		Example: `  coldbench density --runtimes runc,crun,runsc --step 25 --max 1000
  coldbench density --runtimes runsc --step 10 --max-failed-share 0.1 --min-mem-available 4Gi -o results/density.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.edit = df.apply
			exp, err := f.experiment(cmd)
			if err != nil {
				return usageError(err)
			}
			return runExperiment(cmd.Context(), cmd, lg, exp, f, nil)
		},
	}
	f.registerOn(cmd, verbRunFlags(notDensityFlags)...)
	df.register(cmd.Flags())
	return cmd
}

// verbRunFlags are run's flags but those named in not.
func verbRunFlags(not []string) []string {
	all := pflag.NewFlagSet("run", pflag.ContinueOnError)
	(&runFlags{}).register(all)
	var names []string
	all.VisitAll(func(fl *pflag.Flag) {
		if !slices.Contains(not, fl.Name) {
			names = append(names, fl.Name)
		}
	})
	return names
}
