package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/report"
	"github.com/coldbench/coldbench/pkg/results"
)

type runFlags struct {
	file          string
	platform      string
	runtimes      []string
	scales        []int
	iterations    int
	warmups       int
	timeout       time.Duration
	deadline      time.Duration
	probeInterval time.Duration
	footprint     bool
	settle        time.Duration
	interleave    bool
	output        string
	image         string
	force         bool
	format        string
	resume        string
	printRecords  bool
	platforms     platformFlags
	// edit, if set, changes the spec after the flags above and before
	// validation (capacity.go: the search's section).
	edit func(s *bench.Spec, changed func(string) bool, fromFile bool) error
}

func newRunCmd(lg *logs) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a cold-start experiment and append one record per attempt to a JSONL file",
		Long: `Run cold-starts N instances at once for every runtime and every N, for the
given iterations (after warm-ups), and records each attempt as it is measured.
Flags override the experiment file (-f) field by field.

Exit status: 0 every attempt answered; 3 some attempts failed; 4 every
attempt failed, or cells were not run (deadline: continue with --resume);
2 bad input; 1 any other failure, also a clean-up at the end that left
objects (they are listed, with the clean command); 130 SIGINT, 143 SIGTERM
(--resume continues).`,
		Example: `  coldbench run --runtimes runc,crun --scales 1,4 --iterations 10
  coldbench run -f experiment.yaml -o results/study.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.resume != "" {
				res, err := f.resumption(cmd)
				if err != nil {
					return usageError(err)
				}
				return runExperiment(cmd.Context(), cmd, lg, res.Exp, f, res)
			}
			exp, err := f.experiment(cmd)
			if err != nil {
				return usageError(err)
			}
			return runExperiment(cmd.Context(), cmd, lg, exp, f, nil)
		},
	}
	f.registerOn(cmd)
	cmd.Flags().StringVar(&f.resume, "resume", "", "continue the interrupted experiment recorded in this file: skip the cells it holds, append the rest")
	cmd.Flags().BoolVar(&f.printRecords, "print-records", false, "after the summary, copy the records file (JSONL) to standard output: a run in a pod keeps them in its log")
	return cmd
}

// register adds the experiment flags to fl: every one run has. Verbs that
// need fewer pick theirs with registerOn.
func (f *runFlags) register(fl *pflag.FlagSet) {
	def := bench.Default().Spec
	f.runtimes, f.scales = []string{"runc", "crun"}, slices.Clone(def.Scales)
	fl.StringVarP(&f.file, "file", "f", "", "experiment YAML (apiVersion "+bench.APIVersion+", kind "+bench.Kind+")")
	fl.StringVar(&f.platform, "platform", def.Platform, platformHelp())
	fl.Var(newNameList(&f.runtimes, "runtimes", "runc,crun", nil), "runtimes", "runtimes, comma-separated; each is its CRI handler / RuntimeClass, \"default\" = the platform's default")
	fl.Var(newIntList(&f.scales, "scales", "N values", "1,4,8"), "scales", "N values (instances cold-started at once), comma-separated")
	fl.IntVar(&f.iterations, "iterations", def.Iterations, "measured iterations per runtime and N")
	fl.IntVar(&f.warmups, "warmups", def.Warmups, "unrecorded-in-stats warm-up iterations per runtime and N (recorded with warmup=true)")
	fl.DurationVar(&f.timeout, "timeout", def.RequestTimeout.Duration, "per-attempt timeout: from the start of the cold start until the first reply")
	fl.DurationVar(&f.deadline, "deadline", def.Deadline.Duration, "overall deadline; cells not started by then are skipped")
	fl.DurationVar(&f.probeInterval, "probe-interval", def.ProbeInterval.Duration, "a new GET is started this often until the first reply")
	fl.BoolVar(&f.footprint, "footprint", true, "measure each instance's memory and CPU (node: after its first byte and a settle; knative: after a settle, through the node agent and the kubelet's Summary API; untimed); --footprint=false to compare latencies without it")
	fl.DurationVar(&f.settle, "footprint-settle", bench.DefaultFootprintSettle, "idle time after a cell's last reply before its instances' memory and idle CPU are read")
	fl.BoolVar(&f.interleave, "footprint-interleave", false, "measure the footprint of odd iterations only, the even ones being the control of an A/B of latency with and without it (bench/footprint-ab reads it)")
	fl.StringVarP(&f.output, "output", "o", "", "records file (JSONL, appended); default results/<experiment-id>.jsonl")
	fl.StringVar(&f.image, "image", "", imageHelp())
	fl.BoolVar(&f.force, "force", false, "allow N above the sane cap of "+fmt.Sprint(bench.MaxScale))
	fl.StringVar(&f.format, "format", "table", "summary format printed at the end: "+strings.Join(report.Formats(), ", "))
	f.platforms = platformFlags{}
	f.platforms.register(fl)
}

// registerOn adds to cmd the named experiment flags only (all of them
// without names), so that each verb's --help shows the flags it uses. The
// others keep their defaults, which experiment() reads.
func (f *runFlags) registerOn(cmd *cobra.Command, names ...string) {
	all := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	f.register(all)
	if len(names) == 0 {
		cmd.Flags().AddFlagSet(all)
		return
	}
	for _, n := range names {
		fl := all.Lookup(n)
		if fl == nil {
			panic("registerOn: no flag " + n) // a typo in this file
		}
		cmd.Flags().AddFlag(fl)
	}
}

// resumption loads --resume FILE. The experiment is the one recorded in the
// file; only where and how long to run may change.
func (f *runFlags) resumption(cmd *cobra.Command) (*bench.Resumption, error) {
	var fixed []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		// Only where and how long to run, and what to print, may change.
		if !slices.Contains([]string{"resume", "deadline", "format", "verbose", "print-records"}, fl.Name) &&
			!slices.Contains(resumeFlags(), fl.Name) {
			fixed = append(fixed, "--"+fl.Name)
		}
	})
	if len(fixed) > 0 {
		return nil, fmt.Errorf("--resume continues the experiment as recorded in %s; %s cannot change it (start a new run instead)", f.resume, strings.Join(fixed, ", "))
	}
	if _, err := summaryFormat(f.format); err != nil {
		return nil, err
	}
	// Where to run may change; it is applied before the recorded
	// experiment is validated (a kubeconfig recorded on another machine).
	res, err := bench.LoadResume(f.resume, func(exp *bench.Experiment) error {
		s := &exp.Spec
		if err := checkPlatformFlags(cmd.Flags().Changed, s.Platform); err != nil {
			return usageError(fmt.Errorf("%w (%s records a %s experiment)", err, f.resume, s.Platform))
		}
		f.platforms.applyResume(s, cmd.Flags().Changed)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s := &res.Exp.Spec
	if cmd.Flags().Changed("deadline") {
		if f.deadline <= 0 {
			return nil, fmt.Errorf("--deadline %v: must be positive", f.deadline)
		}
		s.Deadline.Duration = f.deadline
	}
	s.Output = f.resume
	return res, nil
}

// experiment resolves the file (if any) and the flags the user set.
func (f *runFlags) experiment(cmd *cobra.Command) (*bench.Experiment, error) {
	exp := bench.Default()
	if f.file != "" {
		var err error
		if exp, err = bench.LoadFile(f.file); err != nil {
			return nil, err
		}
	}
	s := &exp.Spec
	changed := cmd.Flags().Changed
	if f.file == "" || changed("platform") {
		s.Platform = f.platform
	}
	if f.file == "" || changed("runtimes") || changed("image") {
		if f.file == "" || changed("runtimes") {
			s.Runtimes = bench.RuntimesFromNames(f.runtimes, f.image)
		} else {
			for i := range s.Runtimes {
				s.Runtimes[i].Image = f.image
			}
		}
	}
	if f.file == "" || changed("scales") {
		s.Scales = f.scales
	}
	setInt := func(name string, dst *int, v int) {
		if f.file == "" || changed(name) {
			*dst = v
		}
	}
	setDur := func(name string, dst *bench.Duration, v time.Duration) {
		if f.file == "" || changed(name) {
			dst.Duration = v
		}
	}
	if f.edit == nil { // capacity: its own --iterations is per probe (spec.search), set by its edit
		setInt("iterations", &s.Iterations, f.iterations)
	}
	setInt("warmups", &s.Warmups, f.warmups)
	setDur("timeout", &s.RequestTimeout, f.timeout)
	setDur("deadline", &s.Deadline, f.deadline)
	setDur("probe-interval", &s.ProbeInterval, f.probeInterval)
	if f.file == "" || changed("footprint") || changed("footprint-settle") || changed("footprint-interleave") {
		if s.Footprint == nil {
			s.Footprint = &bench.FootprintSpec{Settle: bench.Duration{Duration: bench.DefaultFootprintSettle}}
		}
		if f.file == "" || changed("footprint") {
			s.Footprint.Off = !f.footprint
		}
		setDur("footprint-settle", &s.Footprint.Settle, f.settle)
		if f.file == "" || changed("footprint-interleave") {
			s.Footprint.Interleave = f.interleave
		}
	}
	if changed("output") {
		s.Output = f.output
	}
	if f.edit != nil {
		if err := f.edit(s, changed, f.file != ""); err != nil {
			return nil, err
		}
	}
	if err := checkPlatformFlags(changed, s.Platform); err != nil {
		return nil, err
	}
	f.platforms.apply(s, changed, f.file != "")
	if err := exp.CompleteAndValidate(f.force); err != nil {
		return nil, err
	}
	if _, err := summaryFormat(f.format); err != nil {
		return nil, err
	}
	return exp, nil
}

// openPlatform returns the backend the experiment names, logging through
// log (a variable: the tests put a scripted platform here).
var openPlatform = openNamedPlatform

// prepareResume removes what a killed session left behind (it carries the
// experiment's id, which no other run uses) and says what was repaired.
func prepareResume(ctx context.Context, log *slog.Logger, plat bench.Platform, res *bench.Resumption, file string) error {
	if n, err := plat.Clean(ctx, res.ID); err != nil {
		return fmt.Errorf("removing leftovers of %s before resuming: %w", res.ID, err)
	} else if n > 0 {
		log.Info("removed leftovers of the interrupted session", "sandboxes", n)
	}
	if res.Repair != "" {
		log.Warn("results file repaired before resuming", "file", file, "what", res.Repair)
	}
	for _, w := range res.Warnings {
		log.Warn(w)
	}
	return nil
}

func runExperiment(ctx context.Context, cmd *cobra.Command, lg *logs, exp *bench.Experiment, f *runFlags, res *bench.Resumption) (err error) {
	log := lg.log
	plat, err := openPlatform(exp, log)
	if err != nil {
		return err
	}
	defer plat.Close()
	checks := plat.Checks(ctx, exp)
	if err := bench.Failed(checks); err != nil {
		return fmt.Errorf("preflight failed, nothing was created:\n%w", err)
	}
	for _, c := range checks {
		if c.Warn { // the run goes on; its records say what is missing
			log.Warn("preflight: "+c.Name+": "+c.Detail, "fix", c.Fix)
		}
	}

	id := bench.NewExperimentID(time.Now())
	var done map[bench.CellKey]bool
	session := 0
	if res != nil {
		id, done, session = res.ID, res.Done, res.Session
		if err := prepareResume(ctx, log, plat, res, exp.Spec.Output); err != nil {
			return err
		}
	}
	out := exp.Spec.Output
	if out == "" {
		out = filepath.Join("results", id+".jsonl")
	}
	if dir := filepath.Dir(out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--output: creating directory %q: %w", dir, err)
		}
	}
	r := &bench.Runner{Exp: exp, ID: id, Platform: plat, Log: log, Done: done, Session: session}
	if res != nil {
		r.Answered = res.Answered // a capacity search replays them
	}
	if err := r.Open(ctx); err != nil {
		return err
	}
	// Closed after the summary is printed, as the platform was before: its
	// clean-up may wait for pods to go. Its failure is never silent.
	defer func() { err = closeRun(r, plat, id, cmd.ErrOrStderr(), err) }()
	h, err := r.Header(ctx)
	if err != nil {
		return err
	}
	// Creating the file and writing its header are one step: a full disk
	// leaves no header-less file behind (nor harms a resumed one).
	w, err := results.OpenWithHeader(out, h)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	defer w.Close()
	r.Out = w
	log.Info("running", "experiment", id, "session", session, "platform", exp.Spec.Platform, "attempts", exp.TotalAttempts(), "cells_already_recorded", len(done), "records", out)
	prog := newProgress(exp.TotalAttempts(), lg)
	r.OnAttempts = prog.onAttempts
	outcome, err := r.Run(ctx)
	prog.close()
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// The summary is computed from the file just written, exactly as
	// `coldbench report` would: every printed number traces to its records.
	// Also after an interrupt (the summary of what was measured), hence
	// without ctx's cancellation.
	if err := printReport(context.WithoutCancel(ctx), cmd.OutOrStdout(), cmd.ErrOrStderr(), f.format, []string{out}); err != nil {
		if rerr := runExit(ctx, outcome, out, exp); rerr != nil {
			log.Warn("no summary", "err", err) // e.g. interrupted before the first cell
			return rerr
		}
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "\nraw records: %s (this session: %d attempts, %d failed", out, outcome.Attempts, outcome.Failures)
	if outcome.ResumedFrom > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "; %d cells recorded by earlier sessions", outcome.ResumedFrom)
	}
	fmt.Fprintln(cmd.OutOrStdout(), ")")
	if f.printRecords {
		// Every session's records, as in the file: lines starting with
		// {"type": (kubectl logs JOB | grep '^{"type":' > study.jsonl).
		rf, err := os.Open(out)
		if err != nil {
			return err
		}
		_, err = io.Copy(cmd.OutOrStdout(), rf)
		rf.Close()
		if err != nil {
			return fmt.Errorf("--print-records: %w", err)
		}
	}
	return runExit(ctx, outcome, out, exp)
}

func newCleanCmd(log *slog.Logger) *cobra.Command {
	f := &runFlags{}
	var experiment string
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Remove leftovers of earlier runs (only objects carrying coldbench's labels)",
		Long: `clean deletes what coldbench created and an interrupted run left behind: on
node, sandboxes labelled app.kubernetes.io/managed-by=coldbench in coldbench's
CRI namespace; on knative, ksvcs with that label in the namespace (their
revisions and pods go with them; clean waits for the pods). Nothing without
coldbench's labels is touched. Do not run it while a run is in progress.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exp, err := f.experiment(cmd)
			if err != nil {
				return usageError(err)
			}
			plat, err := openPlatform(exp, log)
			if err != nil {
				return err
			}
			n, err := plat.Clean(cmd.Context(), experiment)
			plat.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d coldbench %s\n", n, cleaned(exp))
			return err
		},
	}
	f.registerOn(cmd, append([]string{"platform"}, platformVerbFlags("clean")...)...)
	cmd.Flags().StringVar(&experiment, "experiment", "", "only this experiment id (default: every coldbench object)")
	f.force = true // clean runs no matrix: the scales' cap is no concern
	return cmd
}
