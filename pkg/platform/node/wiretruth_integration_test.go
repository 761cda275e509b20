package node_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/internal/wiretruth"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/results"
)

// The wire-truth check of issue 17 on the node backend: runc and crun
// cold starts at N = 1 and 3 while a CPU hog keeps every core busy and
// tcpdump records the pods' bridge; every answered attempt's first byte
// (the kernel's receive stamp) must lie within 0.2 ms of the first reply
// segment the capture saw on its connection. The user-space stamps
// (user_first_byte) are printed beside them for contrast, not judged.
func TestWireTruthUnderACPUHog(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.EndpointAlone(t)
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatalf("tcpdump: %v (scripts/node-up.sh installs it)", err)
	}
	p, err := node.New(ep, bench.DefaultPort, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	exp := experiment(ep, "runc", "crun")
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	id := bench.NewExperimentID(time.Now())
	sess := open(t, p, exp, id)
	cell := func(rt bench.Runtime, n, it int) bench.Cell {
		return bench.Cell{ExperimentID: id, Runtime: rt, Scale: n, Iteration: it,
			RequestTimeout: 30 * time.Second, ProbeInterval: 2 * time.Millisecond}
	}
	// A first start creates the CNI bridge tcpdump listens on.
	if a := sess.ColdStart(ctx, cell(exp.Spec.Runtimes[0], 1, 0)); !a[0].OK {
		t.Fatalf("warm-up: %s: %s", a[0].ErrorClass, a[0].Error)
	}

	pcap := filepath.Join(t.TempDir(), "node.pcap")
	capture := exec.Command(tcpdump, "-i", "coldbench0", "-n", "-U", "-s", "256", "--time-stamp-precision=nano", "-w", pcap, "tcp")
	stderr, err := capture.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var said []string
		for sc.Scan() {
			said = append(said, sc.Text())
			if strings.Contains(sc.Text(), "listening on") {
				listening <- ""
			}
		}
		listening <- strings.Join(said, "\n")
	}()
	t.Cleanup(func() { capture.Process.Kill() }) // on a failure before its end below
	select {
	case msg := <-listening:
		if msg != "" {
			t.Fatalf("tcpdump did not start: %s", msg)
		}
	case <-time.After(time.Minute): // it says so at once; a minute is for a starved machine
		t.Fatal("tcpdump did not say it was listening within a minute")
	}

	var hogs []*exec.Cmd
	for range runtime.NumCPU() {
		h := exec.Command("sh", "-c", "while :; do :; done")
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
		hogs = append(hogs, h)
	}
	stopHogs := func() {
		for _, h := range hogs {
			h.Process.Kill()
			h.Wait()
		}
		hogs = nil
	}
	defer stopHogs()

	var all []results.Attempt
	for _, rt := range exp.Spec.Runtimes {
		for _, n := range []int{1, 3} {
			for it := 1; it <= 4; it++ {
				for _, a := range sess.ColdStart(ctx, cell(rt, n, it)) {
					a.Platform, a.Runtime, a.Scale, a.Iteration = node.Name, rt.Name, n, it // the runner's part
					all = append(all, a)
				}
			}
		}
	}
	stopHogs()
	// tcpdump, starved by the hogs, may still be reading the kernel's
	// buffer: stop it once its file (-U: written packet by packet) has not
	// grown for half a second.
	for last, i := int64(-1), 0; i < 40; i++ {
		st, err := os.Stat(pcap)
		if err == nil && st.Size() == last {
			break
		}
		if err == nil {
			last = st.Size()
		}
		time.Sleep(500 * time.Millisecond)
	}
	capture.Process.Signal(syscall.SIGINT) // tcpdump flushes its file and exits
	if err := capture.Wait(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}

	for _, a := range all {
		if !a.OK {
			t.Errorf("%s N=%d #%d: %s: %s", a.Runtime, a.Scale, a.Instance, a.ErrorClass, a.Error)
		}
	}
	pkts, err := wiretruth.ReadCapture(pcap)
	if err != nil {
		t.Fatal(err)
	}
	v := wiretruth.Compare(all, wiretruth.Connections(pkts), 200*time.Microsecond)
	var out strings.Builder
	v.Print(&out)
	t.Logf("under %d hogs:\n%s", runtime.NumCPU(), out.String())
	if !v.OK() {
		t.Error("an attempt's first byte is not the wire's (above)")
	}
}
