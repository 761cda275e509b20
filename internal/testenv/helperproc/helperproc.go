// Package helperproc runs the test binary itself as a helper process (an
// ingress, a server) for tests and benchmarks that must not share their
// process, and so their Go scheduler, with what they measure.
package helperproc

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"testing"
)

// Start starts this test binary with env=1, which the package's TestMain
// turns into a helper (an ingress, a server), and returns its stdin (closing
// it ends the helper) and its stdout's lines. The helper is killed and
// waited for at the test's end.
func Start(tb testing.TB, env string) (io.WriteCloser, *bufio.Scanner) {
	tb.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("helper process %s: stdin: %v", env, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("helper process %s: stdout: %v", env, err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("helper process %s: starting %s: %v", env, os.Args[0], err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return stdin, bufio.NewScanner(out)
}
