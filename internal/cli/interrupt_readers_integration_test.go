package cli

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/coldbench/coldbench/internal/synth"
	"github.com/coldbench/coldbench/internal/testenv"
)

// Ctrl-C at a random moment while report, report --html, report
// --attempts-csv and plot read a 200 MB records file: the process exits 130
// within 1 s of the signal and leaves no new file (no output, no temporary
// file, no staging folder). The moment is drawn within the command's own
// duration, measured first on this machine, so that it falls during the
// work whatever the load.
func TestInterruptReadersOfALargeFile(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.BuildColdbench(t)
	dir := t.TempDir()
	records := filepath.Join(dir, "big.jsonl")
	if err := synth.WriteFile(records, 200<<20); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, c := range []struct {
		name string
		args []string
	}{
		{"report", []string{"report", records}},
		{"report-html", []string{"report", "--html", filepath.Join(out, "r.html"), records}},
		{"report-attempts-csv", []string{"report", "--attempts-csv", filepath.Join(out, "a.csv"), records}},
		{"plot", []string{"plot", "-o", out, "--all-scales", records}},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.RemoveAll(out)
			t0 := time.Now()
			if b, err := exec.Command(bin, c.args...).CombinedOutput(); err != nil {
				t.Fatalf("uninterrupted: %v\n%s", err, tail(b))
			}
			full := time.Since(t0)
			span := full * 9 / 10
			for try := 0; ; try++ {
				os.RemoveAll(out)
				cmd := exec.Command(bin, c.args...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// The moment is drawn once the process reads the records
				// (it set up its signal handling before): earlier, a SIGINT
				// would meet Go's default handler, not coldbench's.
				waitOpen(t, cmd.Process.Pid, records)
				at := time.Duration(rng.Int64N(int64(span)))
				time.Sleep(at)
				sent := time.Now()
				cmd.Process.Signal(syscall.SIGINT)
				err := cmd.Wait()
				took := time.Since(sent)
				_, statErr := os.Stat(out)
				if (err == nil || statErr == nil) && try < 8 {
					// Faster this time: it had finished (and written its
					// output) before the signal. Draw within less.
					t.Logf("finished before the signal at %v of %v (exit %v): drawing again", at, span, err)
					span /= 2
					continue
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 130 {
					t.Fatalf("SIGINT at %v: exit %v, want status 130", at, err)
				}
				if took > time.Second {
					t.Errorf("SIGINT at %v: exited %v after the signal, want within 1 s", at, took)
				}
				if statErr == nil {
					t.Errorf("SIGINT at %v: %s exists, want no output and no folder made for it", at, out)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Errorf("SIGINT at %v: %d entries next to the records, want none", at, len(ents)-1)
				}
				t.Logf("SIGINT %v into reading (uninterrupted: %v): exit 130 after %v, nothing left", at, full, took.Round(time.Millisecond))
				return
			}
		})
	}
}

// waitOpen waits until process pid has path open.
func waitOpen(t *testing.T, pid int, path string) {
	t.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		ents, _ := os.ReadDir(fds)
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && l == path {
				return
			}
		}
	}
	t.Fatalf("process %d did not open %s within a minute", pid, path)
}

// tail is the last 2 KiB of a command's output, for a failure message.
func tail(b []byte) []byte {
	if len(b) > 2048 {
		return b[len(b)-2048:]
	}
	return b
}
