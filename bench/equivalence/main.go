// Command equivalence checks, on a real Knative cluster (the lab), that a
// fast cold protocol gives the same distribution as the study's classic one
// in a fraction of the time. It runs experiment 1 (N = 1) for one runtime
// twice with the coldbench binary built from this checkout:
//
//	fast:    --protocol pool (default: sets of ksvcs activated once, used in
//	         turn, each sample waiting until its set's pod is gone) or
//	         --protocol fresh (-fast fresh: a new ksvc per sample, born with
//	         initial-scale 0)
//	classic: --protocol classic (the same ksvc; each sample waits until its pod
//	         is gone, detected by a watch, plus --classic-interval), after one
//	         warm-up so that every sample is a re-activation like the pool's
//
// and prints both wall times, the speed-up, both medians with their 95 %
// confidence intervals, the Hodges–Lehmann change with its interval and the
// Mann–Whitney p-value.
//
// The study paced the classic protocol with a fixed 90 s sleep before every
// sample. Running that for real costs 45 min for 30 samples, so by default
// the classic run here waits for zero by watching (with the lab's short
// stable-window and scale-to-zero-grace-period) and the script also prints
// the wall time the same samples would have taken with the study's fixed
// interval: samples × 90 s + the time the samples themselves took (a lower
// bound: kperf's own set-up is not counted). Both are labelled; use
// -classic-interval 90s to pay for the real thing.
//
//	go run ./bench/equivalence                          # lab defaults, pool vs classic, 30 + 30 samples
//	go run ./bench/equivalence -fast fresh              # fresh vs classic
//	go run ./bench/equivalence -fast-file F -classic C  # only analyse two existing files
//	go run ./bench/equivalence -classic C -classic-wall 20m  # run the fast protocol again, reuse a classic run
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/coldbench/coldbench/pkg/compare"
	"github.com/coldbench/coldbench/pkg/platform/knative"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

type config struct {
	kubeconfig, namespace, runtime, ingress, window, outDir, order string
	fast                                                           string // protocol compared with classic
	samples, poolSize, classicWarmups                              int
	classicInterval, studyInterval, timeout                        time.Duration
	fastFile, classicFile                                          string
	fastWall, classicWall                                          time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.kubeconfig, "kubeconfig", "/var/lib/coldbench/lab/kubeconfig", "cluster (the lab by default)")
	flag.StringVar(&c.namespace, "n", "cb-perf", "namespace for the services (created if absent; cleaned at the end)")
	flag.StringVar(&c.runtime, "runtime", "runc", "RuntimeClass measured")
	flag.StringVar(&c.ingress, "ingress", "127.0.0.1:31080", "ingress HOST:PORT (empty: coldbench detects it)")
	flag.StringVar(&c.window, "window", "6s", "autoscaling.knative.dev/window on every revision, both protocols (shortest Knative allows)")
	flag.IntVar(&c.samples, "samples", 30, "samples per protocol (experiment 1: N = 1)")
	flag.StringVar(&c.fast, "fast", knative.ProtocolPool, "fast protocol compared with classic: pool or fresh")
	flag.IntVar(&c.poolSize, "pool-size", 0, "pool: service sets (0: coldbench's default)")
	flag.IntVar(&c.classicWarmups, "classic-warmups", 1, "classic: warm-ups before the samples (1: every sample is a re-activation, like the pool's; 0: the first is a first activation, like the study's)")
	flag.DurationVar(&c.classicInterval, "classic-interval", 0, "classic: fixed wait after the pods are gone, before each sample (the study: 90s)")
	flag.DurationVar(&c.studyInterval, "study-interval", 90*time.Second, "the study's fixed interval, for the equivalent wall time")
	flag.DurationVar(&c.timeout, "timeout", 100*time.Second, "client timeout per request")
	flag.StringVar(&c.outDir, "o", "", "directory for the two records files (default results/equivalence-<time>)")
	flag.StringVar(&c.order, "order", "fast-first", "fast-first or classic-first")
	flag.StringVar(&c.fastFile, "fast-file", "", "use this existing records file of the fast protocol instead of running it")
	flag.StringVar(&c.classicFile, "classic", "", "use this existing classic-protocol records file instead of running the classic protocol")
	flag.DurationVar(&c.fastWall, "fast-wall", 0, "with -fast-file: the wall time measured when that file was made (default: from its records)")
	flag.DurationVar(&c.classicWall, "classic-wall", 0, "with -classic: the wall time measured when that file was made (default: from its records)")
	flag.Parse()
	if c.fast != knative.ProtocolPool && c.fast != knative.ProtocolFresh {
		fmt.Fprintf(os.Stderr, "equivalence: -fast %q: use pool or fresh\n", c.fast)
		os.Exit(2)
	}
	if c.order != "fast-first" && c.order != "classic-first" {
		fmt.Fprintf(os.Stderr, "equivalence: -order %q: use fast-first or classic-first\n", c.order)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "equivalence:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	fastWall, classicWall := c.fastWall, c.classicWall
	var protocols []string
	if c.fastFile == "" {
		protocols = append(protocols, c.fast)
	}
	if c.classicFile == "" {
		protocols = append(protocols, knative.ProtocolClassic)
	}
	if c.order == "classic-first" {
		slices.Reverse(protocols)
	}
	if len(protocols) > 0 {
		if c.outDir == "" {
			c.outDir = filepath.Join("results", "equivalence-"+time.Now().UTC().Format("20060102t150405"))
		}
		if err := os.MkdirAll(c.outDir, 0o755); err != nil {
			return err
		}
		bin := filepath.Join(c.outDir, "coldbench")
		fmt.Fprintln(os.Stderr, "building coldbench from this checkout …")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/coldbench").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/coldbench (run from the repository root): %v\n%s", err, out)
		}
		for _, p := range protocols {
			if p != knative.ProtocolClassic {
				c.fastFile = filepath.Join(c.outDir, p+".jsonl")
			} else {
				c.classicFile = filepath.Join(c.outDir, "classic.jsonl")
			}
			wall, err := runProtocol(ctx, c, bin, p)
			if err != nil {
				return err
			}
			if p != knative.ProtocolClassic {
				fastWall = wall
			} else {
				classicWall = wall
			}
		}
	}
	return analyse(c, fastWall, classicWall)
}

// runProtocol runs one protocol's samples and returns the command's whole
// wall time: set-up, readiness waits, scale-to-zero waits, cleanup.
func runProtocol(ctx context.Context, c config, bin, protocol string) (time.Duration, error) {
	out, warmups := c.fastFile, 0
	if protocol == knative.ProtocolClassic {
		out, warmups = c.classicFile, c.classicWarmups
	}
	args := []string{"run", "--platform", "knative", "--kubeconfig", c.kubeconfig, "-n", c.namespace,
		"--runtimes", c.runtime, "--scales", "1", "--iterations", fmt.Sprint(c.samples), "--warmups", fmt.Sprint(warmups),
		"--protocol", protocol, "--timeout", c.timeout.String(), "--deadline", "3h", "-o", out}
	if protocol == knative.ProtocolClassic {
		args = append(args, "--time-interval", c.classicInterval.String())
	}
	if protocol == knative.ProtocolPool && c.poolSize > 0 {
		args = append(args, "--pool-size", fmt.Sprint(c.poolSize))
	}
	if c.window != "" {
		args = append(args, "--window", c.window)
	}
	if c.ingress != "" {
		args = append(args, "--ingress", c.ingress)
	}
	fmt.Fprintf(os.Stderr, "\n== %s protocol: %s %v\n", protocol, bin, args)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // coldbench cleans up on SIGINT
	cmd.WaitDelay = 5 * time.Minute
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return wall, fmt.Errorf("%s protocol: %v (records so far: %s)", protocol, err, out)
	}
	fmt.Fprintf(os.Stderr, "== %s protocol: %d samples in %v\n", protocol, c.samples, wall.Round(time.Second))
	return wall, nil
}

type side struct {
	name     string
	file     string
	wall     time.Duration // 0: not run by this invocation
	set      *results.Set
	ttfb     []float64 // ns, successful measured attempts
	attempts int
	notCold  int
	warmups  int  // warm-up attempts (in the wall time, not in the samples)
	reactive int  // OK samples of a revision that had pods before (prior_pods ≥ 1): re-activations
	warmOK   int  // OK, yet the function's process started before the request
	measured bool // wall is the whole command's, measured by this script
	first    time.Time
	last     time.Time
	sumTotal time.Duration // request start → body read, all measured attempts
}

func load(name, file string, wall time.Duration, runtime string) (*side, error) {
	set, err := results.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s := &side{name: name, file: file, wall: wall, set: set, measured: wall > 0}
	if len(set.Headers) > 0 && set.Headers[0].Testbed.PlatformVersion["protocol"] != "" {
		s.name = set.Headers[0].Testbed.PlatformVersion["protocol"]
	}
	for _, a := range set.Attempts {
		if a.Scale != 1 || a.Runtime != runtime {
			continue
		}
		if a.Warmup {
			s.warmups++
			continue
		}
		s.attempts++
		if a.OK {
			s.ttfb = append(s.ttfb, float64(a.TTFBNS))
			if a.Cold.PriorPods > 0 {
				s.reactive++
			}
			if off, ok := a.PhaseOffset(results.PhaseFunctionStart); ok && off < 0 {
				s.warmOK++
			}
		}
		if a.ErrorClass == results.ErrNotCold {
			s.notCold++
		}
		d := time.Duration(a.TotalNS)
		if d == 0 {
			d = time.Duration(a.TTFBNS)
		}
		s.sumTotal += d
		if s.first.IsZero() || a.Start.Before(s.first) {
			s.first = a.Start
		}
		if end := a.Start.Add(d); end.After(s.last) {
			s.last = end
		}
	}
	if s.attempts == 0 {
		return nil, fmt.Errorf("%s: no measured N = 1 attempts of runtime %q", file, runtime)
	}
	if s.wall == 0 { // an existing file: first start → last reply
		s.wall = s.last.Sub(s.first)
		s.name += "*"
	}
	sort.Float64s(s.ttfb)
	return s, nil
}

func ms(ns float64) string { return fmt.Sprintf("%.1f ms", ns/1e6) }

func analyse(c config, fastWall, classicWall time.Duration) error {
	fast, err := load(c.fast, c.fastFile, fastWall, c.runtime)
	if err != nil {
		return err
	}
	classic, err := load("classic", c.classicFile, classicWall, c.runtime)
	if err != nil {
		return err
	}
	wallHow := "whole `coldbench run`, set-up and cleanup included"
	if fastWall == 0 || classicWall == 0 {
		wallHow = "whole `coldbench run` where measured; otherwise (*) from the records, first request start → last reply (set-up and cleanup not included)"
	}
	fmt.Printf("equivalence of the %s and classic cold protocols: runtime %s, experiment 1 (N = 1)\n", fast.name, c.runtime)
	fmt.Printf("records: %s %s, classic %s\n", fast.name, fast.file, classic.file)
	fmt.Printf("wall time: %s\n", wallHow)
	fmt.Printf("RE-ACT: OK samples of a revision that had pods before (prior_pods ≥ 1 in the record): re-activations after scale to zero\n\n")
	fmt.Printf("%-8s %8s %5s %7s %9s %8s %12s %12s %27s\n", "PROTOCOL", "SAMPLES", "OK", "RE-ACT", "NOT-COLD", "WARM-OK", "WALL", "PER SAMPLE", "MEDIAN TTFB [95% CI]")
	for _, s := range []*side{fast, classic} {
		sum := stats.Summarize(s.ttfb)
		ci := "n/a (n < 6)"
		if sum.CIOK {
			ci = fmt.Sprintf("[%.1f, %.1f]", sum.MedianCILo/1e6, sum.MedianCIHi/1e6)
		}
		fmt.Printf("%-8s %8d %5d %7d %9d %8d %12v %12v %10s %16s\n", s.name, s.attempts, len(s.ttfb), s.reactive, s.notCold, s.warmOK,
			s.wall.Round(time.Second), (s.wall / time.Duration(s.attempts+s.warmups)).Round(100*time.Millisecond), ms(sum.P50), ci)
	}
	for _, s := range []*side{fast, classic} {
		if s.warmups > 0 {
			fmt.Printf("%s: its wall time includes %d warm-up attempt(s); PER SAMPLE divides by samples + warm-ups\n", s.name, s.warmups)
		}
	}
	// The study's classic protocol: a fixed sleep before every sample, then
	// the sample. Its wall time is at least samples × interval + the time the
	// samples took.
	study := time.Duration(classic.attempts)*c.studyInterval + classic.sumTotal
	if fast.warmOK+classic.warmOK > 0 {
		fmt.Println("WARM-OK: counted OK, yet the function that answered started before the request (function_start < 0): warm, whatever the record says")
	}
	how := func(s *side) string {
		if s.measured {
			return "measured"
		}
		return "from the records"
	}
	fmt.Println()
	fmt.Printf("classic, as run (watch-detected scale to zero + %v interval): %v  (%s)\n", c.classicInterval, classic.wall.Round(time.Second), how(classic))
	fmt.Printf("classic with the study's fixed %v interval: ≥ %v  (computed: %d × %v + %v of requests; not run)\n",
		c.studyInterval, study.Round(time.Second), classic.attempts, c.studyInterval, classic.sumTotal.Round(time.Second))
	fmt.Printf("speed-up of %s over classic as run:            %.1f×  (%s / %s)\n", fast.name, classic.wall.Seconds()/fast.wall.Seconds(), how(classic), how(fast))
	fmt.Printf("speed-up of %s over classic with fixed %v:    %.1f×  (computed / %s; goal ≥ 10×)\n", fast.name, c.studyInterval, study.Seconds()/fast.wall.Seconds(), how(fast))

	res, err := compare.Compare(classic.set, fast.set, compare.Options{Pairs: []compare.Pair{{A: c.runtime, B: c.runtime}}})
	if err != nil {
		return err
	}
	for _, r := range res.Rows {
		if r.Scale != 1 || !r.Tested {
			continue
		}
		verdict := "no significant difference"
		if r.Significant {
			verdict = "SIGNIFICANT difference"
		}
		fmt.Printf("\n%s vs classic (Hodges–Lehmann change of %s/classic − 1, 95%% CI, Moses): %+.1f%% [%+.1f%%, %+.1f%%]\n",
			fast.name, fast.name, 100*r.Change, 100*r.ChangeLo, 100*r.ChangeHi)
		exact := "normal approximation"
		if r.Test.Exact {
			exact = "exact"
		}
		fmt.Printf("Mann–Whitney U = %.1f, two-sided p = %.3f (%s): %s at α = %.2f\n", r.Test.U, r.Test.P, exact, verdict, res.Options.Alpha)
	}
	return nil
}
