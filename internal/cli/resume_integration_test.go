package cli

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
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

func experimentSandboxes(t *testing.T, ep, id string) int {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+node.SocketPath(ep), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{bench.LabelExperiment: id}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Items)
}

// Kill test: a run killed at random moments with SIGKILL and SIGINT, ten
// times each, then resumed until done, ends with every planned attempt
// recorded exactly once and nothing of it left in containerd.
func TestKillAndResume(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	bin := testenv.BuildColdbench(t)
	out := filepath.Join(t.TempDir(), "killed.jsonl")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	start := []string{"run", "--endpoint", ep, "--runtimes", "runc,crun", "--scales", "1,2", "--iterations", "6", "--warmups", "0", "-o", out}
	resume := []string{"run", "--endpoint", ep, "--resume", out}
	const planned = (1 + 2) * 6 * 2

	kills := 0
	finished := false
	for i := 0; i < 20 && !finished; i++ {
		sig := syscall.SIGKILL
		if i%2 == 1 {
			sig = syscall.SIGINT
		}
		// A session killed before its header was written leaves no file
		// (creating it and writing the header are one step): there is
		// nothing to resume, the run starts over, as a user would.
		args := resume
		if _, err := os.Stat(out); err != nil {
			args = start
		}
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		delay := time.Duration(200+rng.IntN(1500)) * time.Millisecond
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("session %d ended on its own with %v\n%s", i, err, stderr.String())
			}
			finished = true
		case <-time.After(delay):
			cmd.Process.Signal(sig)
			err := <-done
			kills++
			t.Logf("session %d: %v after %v: %v", i, sig, delay, err)
		}
	}
	// Finish the experiment.
	cmd := exec.Command(bin, resume...)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final resume: %v\n%s", err, o)
	}
	if kills < 10 {
		t.Logf("only %d kills landed before the run finished", kills)
	}

	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) != 0 {
		t.Errorf("warnings after the final resume: %v", set.Warnings)
	}
	seen := map[string]int{}
	for _, a := range set.Attempts {
		seen[fmt.Sprintf("%s/%d/%d/%d", a.Runtime, a.Scale, a.Iteration, a.Instance)]++
		if !a.OK {
			t.Errorf("attempt failed: %s %s", a.ErrorClass, a.Error)
		}
	}
	if len(seen) != planned || len(set.Attempts) != planned {
		t.Fatalf("%d distinct attempts, %d records; want %d of each (nothing lost, nothing duplicated)", len(seen), len(set.Attempts), planned)
	}
	id := set.Headers[0].ExperimentID
	for _, h := range set.Headers {
		if h.ExperimentID != id {
			t.Errorf("header of another experiment: %s", h.ExperimentID)
		}
	}
	if n := experimentSandboxes(t, ep, id); n != 0 {
		t.Fatalf("%d sandboxes of %s left after the final resume", n, id)
	}
	t.Logf("kills: %d, sessions: %d, records lost: 0, duplicated: 0, sandboxes leaked: 0", kills, len(set.Headers))
	// Resuming a finished experiment measures nothing more.
	if o, err := exec.Command(bin, resume...).CombinedOutput(); err != nil || !strings.Contains(string(o), "this session: 0 attempts") {
		t.Errorf("resume of a finished run: %v\n%s", err, o)
	}
	if b, _ := os.ReadFile(out); strings.Count(string(b), `"type":"attempt"`) != planned {
		t.Errorf("resume of a finished run appended attempts")
	}
}
