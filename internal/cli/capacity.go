package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/capacity"
)

// searchFlags are capacity's own flags: spec.search's fields.
type searchFlags struct {
	startN, maxN, iterations int
	share, resolution        float64
}

func (sf *searchFlags) register(fl *pflag.FlagSet) {
	fl.IntVar(&sf.startN, "start-n", capacity.DefaultStartN, "first N probed; N doubles from there until a probe fails")
	fl.IntVar(&sf.maxN, "max-n", bench.MaxScale, "largest N probed (above "+fmt.Sprint(bench.MaxScale)+" with --force)")
	fl.Float64Var(&sf.share, "share", capacity.DefaultShare, "share of the N instances that must answer within --timeout for a probe to pass (1 = all)")
	fl.Float64Var(&sf.resolution, "resolution", 0, "stop bisecting when the smallest failing N is within this fraction of the largest passing N (0 = exact N; 0.1 = within 10%)")
	fl.IntVar(&sf.iterations, "iterations", capacity.DefaultIterations, "iterations per probe; a probe passes when every iteration passes")
}

// apply sets spec.search from the flags (all of them without a file, those
// given with one). Without a file the sweep's default N go: a search
// chooses N itself (a file's spec.scales are refused by validation).
func (sf *searchFlags) apply(s *bench.Spec, changed func(string) bool, fromFile bool) error {
	// 0 in the spec means "the default" (Complete); given as a flag it is
	// a mistake, not a request for the default.
	for _, z := range []struct {
		flag string
		zero bool
	}{{"start-n", sf.startN == 0}, {"max-n", sf.maxN == 0}, {"share", sf.share == 0}, {"iterations", sf.iterations == 0}} {
		if changed(z.flag) && z.zero {
			return fmt.Errorf("--%s 0: must be positive; leave the flag out for its default", z.flag)
		}
	}
	if !fromFile {
		s.Scales = nil
	}
	if s.Search == nil {
		s.Search = &capacity.Search{}
	}
	setInt := func(name string, dst *int, v int) {
		if !fromFile || changed(name) {
			*dst = v
		}
	}
	setFloat := func(name string, dst *float64, v float64) {
		if !fromFile || changed(name) {
			*dst = v
		}
	}
	setInt("start-n", &s.Search.StartN, sf.startN)
	setInt("max-n", &s.Search.MaxN, sf.maxN)
	setInt("iterations", &s.Search.Iterations, sf.iterations)
	setFloat("share", &s.Search.Share, sf.share)
	setFloat("resolution", &s.Search.Resolution, sf.resolution)
	return nil
}

// notCapacityFlags are run's flags capacity does not have: the search
// chooses N, and its iterations are per probe (capacity's --iterations),
// no A/B to interleave.
var notCapacityFlags = []string{"scales", "iterations", "footprint-interleave"}

func newCapacityCmd(lg *logs) *cobra.Command {
	f := &runFlags{}
	sf := &searchFlags{}
	cmd := &cobra.Command{
		Use:   "capacity",
		Short: "Find, per runtime, the largest N at which all (or --share) of N cold starts answer within --timeout",
		Long: `capacity runs a capacity search: per runtime, it cold-starts N instances at
once from --start-n, doubling N until a probe fails (or --max-n passes), then
bisects between the largest N that passed and the smallest that failed until
they are within --resolution. A probe passes when at least --share of its N
instances answer within --timeout in each of its --iterations; it stops at
its first failing iteration. Warm-ups (--warmups) run once per runtime at
--start-n. Runtimes take turns probe by probe; each runtime's search is its own.

Every probe is an ordinary cell, recorded like a run's (report, plot and
compare read the file as any other); the experiment, spec.search included,
is in the header. The summary at the end (and coldbench report on the file)
adds, per runtime, the largest passing N, the smallest failing N and the
probes in order. The search's decisions depend only on the recorded
outcomes: --resume FILE (here or on run) replays them and continues.
A file's spec.search (-f) makes run do the same.

Exit status: 0 every runtime's search ended (whatever capacity it found);
4 the deadline stopped it (continue with --resume), or no attempt answered
at all (a broken set-up, not a capacity of 0); 2 bad input; 1 any other
failure, the clean-up leaving objects included (listed, with the clean
command); 130 SIGINT, 143 SIGTERM (--resume continues).`,
		Example: `  coldbench capacity --platform knative --runtimes runc,gvisor --max-n 500 --timeout 60s
  coldbench capacity --runtimes runc,crun --share 0.95 --resolution 0.1 -o results/capacity.jsonl
  coldbench capacity --resume results/capacity.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.resume != "" {
				res, err := f.resumption(cmd)
				if err != nil {
					return usageError(err)
				}
				if res.Exp.Spec.Search == nil {
					return usageError(fmt.Errorf("--resume %s: the file records a sweep of fixed N, not a capacity search; continue it with: coldbench run --resume %s", f.resume, f.resume))
				}
				return runExperiment(cmd.Context(), cmd, lg, res.Exp, f, res)
			}
			f.edit = sf.apply
			exp, err := f.experiment(cmd)
			if err != nil {
				return usageError(err)
			}
			return runExperiment(cmd.Context(), cmd, lg, exp, f, nil)
		},
	}
	f.registerOn(cmd, capacityRunFlags()...)
	sf.register(cmd.Flags())
	cmd.Flags().StringVar(&f.resume, "resume", "", "continue the interrupted capacity search recorded in this file: replay its probes, measure the rest")
	cmd.Flags().BoolVar(&f.printRecords, "print-records", false, "after the summary, copy the records file (JSONL) to standard output: a run in a pod keeps them in its log")
	return cmd
}

// capacityRunFlags are run's flags that capacity has too: all but
// notCapacityFlags.
func capacityRunFlags() []string { return verbRunFlags(notCapacityFlags) }
