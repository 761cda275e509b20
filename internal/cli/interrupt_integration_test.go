package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/results"
)

// Ctrl-C in the middle of a run: exit status 130, every record written so
// far intact and readable, and no sandbox of the run left in containerd.
func TestInterruptLeavesNothing(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	bin := testenv.BuildColdbench(t)
	dir := t.TempDir()
	for _, delay := range []int{2, 5} { // at least one attempt written, then mid-cell
		out := filepath.Join(dir, "int.jsonl")
		os.Remove(out)
		cmd := exec.Command(bin, "run", "--endpoint", ep, "--runtimes", "runc,crun", "--scales", "4", "--iterations", "100", "--warmups", "0", "-o", out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for `delay` attempt records, then interrupt.
		testenv.WaitForAttempts(t, out, delay, 60*time.Second)
		time.Sleep(time.Duration(delay) * 30 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 130 {
			t.Fatalf("exit: %v, want status 130\n%s", err, stderr.String())
		}
		set, err := results.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Warnings) != 0 || len(set.Headers) != 1 || len(set.Attempts) < delay || len(set.Attempts)%4 != 0 {
			t.Fatalf("after interrupt: %d headers, %d attempts (whole cells of 4 expected), warnings %v", len(set.Headers), len(set.Attempts), set.Warnings)
		}
		id := set.Headers[0].ExperimentID
		conn, err := grpc.NewClient("unix://"+node.SocketPath(ep), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := runtimeapi.NewRuntimeServiceClient(conn).ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{
			Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{bench.LabelExperiment: id}}})
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Items) != 0 {
			t.Fatalf("%d sandboxes of interrupted run %s left", len(resp.Items), id)
		}
		if !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("stderr does not say the run was interrupted:\n%s", stderr.String())
		}
	}
}
