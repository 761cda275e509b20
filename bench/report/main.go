// Command report measures how fast, and in how much memory, `coldbench
// report` (and the other readers of records: --html, --attempts-csv, plot,
// compare) reads a large results file. It writes a synthetic but realistic
// records file (headers with an experiment and testbed, attempts with 8
// phases, cold-start evidence, load averages, ~2 % failures with messages)
// of about -size MB into a temp dir, then runs the real CLI code path in a
// child process (this binary re-executed), so the peak RSS it reports
// (VmHWM) is the reader's own and not the generator's.
//
//	go run ./bench/report                          # report, 200 MB
//	go run ./bench/report -size 50 -- --attempts-csv /tmp/a.csv
//	go run ./bench/report -verb plot -- -o /tmp/figs --format svg
//	go run ./bench/report -interrupt 500ms      # Ctrl-C mid-read: time to stop
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/coldbench/coldbench/internal/cli"
	"github.com/coldbench/coldbench/internal/synth"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		os.Exit(child(os.Args[2:]))
	}
	size := flag.Int("size", 200, "approximate size of the records file (MB)")
	verb := flag.String("verb", "report", "coldbench verb to run on the file: report, plot or compare")
	keep := flag.String("file", "", "use (or create, if missing) this records file instead of a temp one")
	cpuprofile := flag.String("cpuprofile", "", "write the child's CPU profile to this file")
	interrupt := flag.Duration("interrupt", 0, "send the child SIGINT (Ctrl-C) this long after its start and measure how long it takes to stop")
	flag.Parse()

	path := *keep
	if path == "" {
		dir, err := os.MkdirTemp("", "coldbench-bench-report-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "records.jsonl")
	}
	if _, err := os.Stat(path); err != nil {
		if err := synth.WriteFile(path, int64(*size)<<20); err != nil {
			fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		fatal(err)
	}
	lines, err := countLines(path)
	if err != nil {
		fatal(err)
	}
	args := append([]string{*verb}, flag.Args()...)
	args = append(args, path)
	if *verb == "compare" {
		args = append(args, path)
	}
	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	cmd := exec.Command(self, append([]string{"-child"}, args...)...)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "COLDBENCH_BENCH_CPUPROFILE="+*cpuprofile)
	if *interrupt > 0 {
		measureInterrupt(cmd, *interrupt)
		return
	}
	out, err := cmd.Output()
	if err != nil {
		fatal(fmt.Errorf("child %v: %w", args, err))
	}
	var m struct {
		Seconds float64 `json:"seconds"`
		HWMKiB  int64   `json:"vmhwm_kib"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		fatal(fmt.Errorf("child output %q: %w", out, err))
	}
	// compare of a file with itself reads it once.
	records := float64(lines)
	// CPU time (user + system, all threads) as well as wall time: on a
	// machine shared with other work the wall-clock rate measures the load
	// as much as the reader; per CPU-second it measures the reader. The
	// CPU time includes the child's start (under 0.1 s).
	cpu := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	fmt.Printf("coldbench %s: file %.1f MB, %d records; %.2f s, %.0f records/s, %.2f CPU-s, %.0f records per CPU-s, peak RSS %.1f MB\n",
		strings.Join(args[:len(args)-1], " "), float64(fi.Size())/1e6, lines, m.Seconds, records/m.Seconds, cpu, records/cpu, float64(m.HWMKiB)/1024)
}

// measureInterrupt starts the child, interrupts it after d (as Ctrl-C
// would: SIGINT, which the child turns into a cancelled context like
// cli.Main) and prints how long it took to exit after the signal.
func measureInterrupt(cmd *exec.Cmd, d time.Duration) {
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		fatal(fmt.Errorf("the child finished (%v) before the interrupt at %v: interrupt earlier", err, d))
	case <-time.After(d):
	}
	t0 := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		fatal(err)
	}
	err := <-done
	fmt.Printf("SIGINT %v after the start: the child exited %.1f ms later (%v)\n", d, float64(time.Since(t0).Microseconds())/1000, err)
}

// child runs the CLI as `coldbench ARGS` with its output discarded and
// prints its wall time and peak RSS as JSON. SIGINT cancels its context,
// as in cli.Main.
func child(args []string) int {
	if p := os.Getenv("COLDBENCH_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	root := cli.NewRoot()
	root.SetArgs(args)
	root.SetOut(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "coldbench:", err)
		return 1
	}
	secs := time.Since(start).Seconds()
	hwm, err := vmHWM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(map[string]any{"seconds": secs, "vmhwm_kib": hwm})
	fmt.Println(string(b))
	return 0
}

// vmHWM is the process's peak resident set size (KiB).
func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	n := 0
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/report:", err)
	os.Exit(1)
}
