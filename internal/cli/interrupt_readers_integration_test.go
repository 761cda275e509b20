package cli

import (
	"errors"
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
			for try := 0; ; try++ {
				os.RemoveAll(out)
				at := time.Duration(rng.Int64N(int64(full) * 9 / 10))
				cmd := exec.Command(bin, c.args...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(at)
				sent := time.Now()
				cmd.Process.Signal(syscall.SIGINT)
				err := cmd.Wait()
				took := time.Since(sent)
				var ee *exec.ExitError
				if err == nil && try < 3 {
					t.Logf("finished before the signal at %v (of %v): drawing again", at, full)
					continue
				}
				if !errors.As(err, &ee) || ee.ExitCode() != 130 {
					t.Fatalf("SIGINT at %v of %v: exit %v, want status 130", at, full, err)
				}
				if took > time.Second {
					t.Errorf("SIGINT at %v of %v: exited %v after the signal, want within 1 s", at, full, took)
				}
				if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
					t.Errorf("SIGINT at %v of %v: %s holds %d entries (first %s), want nothing new", at, full, out, len(ents), ents[0].Name())
				}
				if ents, _ := os.ReadDir(dir); len(ents) > 2 {
					t.Errorf("SIGINT at %v: %d entries next to the records, want at most the records and an empty output folder", at, len(ents))
				}
				t.Logf("SIGINT at %v of %v: exit 130 after %v, nothing left", at, full, took.Round(time.Millisecond))
				return
			}
		})
	}
}

// tail is the last 2 KiB of a command's output, for a failure message.
func tail(b []byte) []byte {
	if len(b) > 2048 {
		return b[len(b)-2048:]
	}
	return b
}
