package agent

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
)

// The agent's label is coldbench's (pkg/bench's, which the agent does
// not import to stay small).
func TestLabelIsBenchs(t *testing.T) {
	if LabelManagedBy != bench.LabelManagedBy || LabelManagedByVal != bench.LabelManagedByVal {
		t.Errorf("agent %s=%s, bench %s=%s", LabelManagedBy, LabelManagedByVal, bench.LabelManagedBy, bench.LabelManagedByVal)
	}
}

// The agent is a small program beside a kubelet: neither Kubernetes'
// client (it talks only to containerd) nor the rest of coldbench but the
// events' and footprints' readers it shares with the node backend.
func TestSmallDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go command not in PATH: the dependency check cannot run")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps .: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") ||
			(strings.HasPrefix(dep, "github.com/coldbench/coldbench/") && !strings.HasSuffix(dep, "/pkg/rtevents") && !strings.HasSuffix(dep, "/pkg/footprint") && !strings.HasSuffix(dep, "/pkg/agent")) {
			t.Errorf("%s is a dependency of pkg/agent", dep)
		}
	}
}

// syncBuffer is a log destination the test reads while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingAddr = regexp.MustCompile(`msg="coldbench-agent serving" addr=(\S+)`)

// startMain runs Main with args (and an address of its own on loopback)
// and returns its address, its log and its exit code's channel.
func startMain(t *testing.T, ctx context.Context, args ...string) (string, *syncBuffer, chan int) {
	t.Helper()
	logs := &syncBuffer{}
	code := make(chan int, 1)
	go func() { code <- Main(ctx, append(args, "--ip=127.0.0.1", "--port=0"), logs) }()
	var addr string
	eventually(t, "the agent serving", func() bool {
		m := servingAddr.FindStringSubmatch(logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr, logs, code
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The command serves until SIGTERM, then stops gracefully: exit status 0.
// The test sends SIGTERM to its own process, which Main has claimed
// (signal.NotifyContext) before it logs that it serves.
func TestMainStopsOnSIGTERM(t *testing.T) {
	f := newFakeContainerd(t)
	addr, logs, code := startMain(t, context.Background(), "--containerd-socket="+f.socket)
	f.waitSubscribed(t)
	eventually(t, "healthy", func() bool { c, _ := httpGet(t, "http://"+addr+"/healthz"); return c == http.StatusOK })
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d after SIGTERM\n%s", c, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit within 10 s of SIGTERM\n%s", logs)
	}
	if !strings.Contains(logs.String(), `msg="coldbench-agent stopped"`) {
		t.Errorf("log:\n%s", logs)
	}
}

// No containerd at the socket: the agent serves anyway and says why it
// is not healthy (a DaemonSet's pod is not Ready rather than crashing);
// it keeps trying.
func TestMainWithoutContainerd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	socket := filepath.Join(t.TempDir(), "none.sock")
	addr, logs, code := startMain(t, ctx, "--containerd-socket="+socket, "-v")
	eventually(t, "unhealthy with the reason", func() bool {
		c, body := httpGet(t, "http://"+addr+"/healthz")
		return c == http.StatusServiceUnavailable && strings.Contains(body, "not subscribed to containerd's events: subscribing to containerd's events: ") &&
			strings.Contains(body, "no such file or directory")
	})
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit %d\n%s", c, logs)
	}
}

func TestMainFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-h"}, 0, "-containerd-socket"},
		{[]string{"--port=70000"}, 2, "not a TCP port"},
		{[]string{"--max-events=0"}, 2, "must be positive"},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
		{[]string{"extra"}, 2, "unexpected arguments"},
		{[]string{"--ip=256.0.0.1", "--containerd-socket=/nonexistent"}, 1, "listening on 256.0.0.1:8080"},
	} {
		var out bytes.Buffer
		if got := Main(context.Background(), c.args, &out); got != c.code || !strings.Contains(out.String(), c.out) {
			t.Errorf("%q: exit %d, want %d; output:\n%s", c.args, got, c.code, out.String())
		}
	}
}

// Serve returns once its context ends and leaves no goroutine behind:
// the HTTP server's, the subscription's and the back-off's all end.
func TestServeLeavesNoGoroutine(t *testing.T) {
	f := newFakeContainerd(t)
	conn, err := Dial(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	serveOnce := func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- Serve(ctx, conn, ln, Config{}) }()
		f.waitSubscribed(t)
		if c, body := httpGet(t, "http://"+ln.Addr().String()+"/v1/events"); c != http.StatusOK {
			t.Fatalf("%d %s", c, body)
		}
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
	}
	// The connection to containerd (the caller's, made lazily) is up
	// after the first Serve: its goroutines are no leak.
	serveOnce()
	// The fake's side of each stream ends a moment after the agent's:
	// counts are taken once steady (the same 100 ms apart).
	steady := func() int {
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				break
			}
			n = m
		}
		return n
	}
	before := steady()
	for range 3 {
		serveOnce()
	}
	if after := steady(); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after three Serves:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
