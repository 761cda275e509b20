package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/results"
)

// importImage builds coldbench's image name (a function or an extra, see
// `coldbench image list`) with coldbench's own builder and imports it into the
// lab's containerd, the way lab/up.sh imports the function images, and
// checks ref was imported.
func (l *knativeLab) importImage(t *testing.T, name, ref string) {
	t.Helper()
	if _, err := os.Stat(l.lab.Ctr); err != nil {
		testenv.MissingLab(t, "ctr of the lab's containerd ("+l.lab.Ctr+")")
	}
	if _, err := os.Stat(l.lab.CRISocket); err != nil {
		testenv.MissingLab(t, "the lab containerd's socket "+l.lab.CRISocket)
	}
	tar := filepath.Join(t.TempDir(), name+".tar")
	t0 := time.Now()
	if o, err := exec.Command(l.bin, "image", "build", name, "--functions-dir", filepath.Join(testenv.RepoRoot(), "functions"), "-o", tar).CombinedOutput(); err != nil {
		t.Fatalf("coldbench image build %s: %v\n%s", name, err, o)
	}
	if o, err := exec.Command(l.lab.Ctr, "--address", l.lab.CRISocket, "-n", "k8s.io", "images", "import", tar).CombinedOutput(); err != nil {
		t.Fatalf("ctr images import %s: %v\n%s", tar, err, o)
	}
	if o, err := exec.Command(l.lab.Ctr, "--address", l.lab.CRISocket, "-n", "k8s.io", "images", "ls", "-q").Output(); err != nil || !slices.Contains(strings.Fields(string(o)), ref) {
		t.Fatalf("%s not in the lab containerd after the import: %v\n%s", ref, err, o)
	}
	t.Logf("image %s built and imported into the lab containerd in %v", ref, time.Since(t0).Round(time.Second))
}

// labctl runs lab/ctl.sh op daemon [args] (stop, start, restart), failing t
// on an error. A daemon it stops or restarts is started again when t ends,
// whatever happens.
func (l *knativeLab) labctl(t *testing.T, op, daemon string, args ...string) time.Duration {
	t.Helper()
	t0 := time.Now()
	if err := l.labctlErr(t, op, daemon, args...); err != nil {
		t.Fatal(err)
	}
	return time.Since(t0)
}

// labctlErr is labctl returning the error (for use off the test goroutine).
func (l *knativeLab) labctlErr(t *testing.T, op, daemon string, args ...string) error {
	if _, err := os.Stat(l.lab.Ctl); err != nil {
		return err
	}
	if op != "start" {
		t.Cleanup(func() {
			if o, err := exec.Command(l.lab.Ctl, "start", daemon).CombinedOutput(); err != nil {
				t.Errorf("starting %s again: %v\n%s", daemon, err, o)
			}
		})
	}
	if o, err := exec.Command(l.lab.Ctl, append([]string{op, daemon}, args...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("lab/ctl.sh %s %s: %v\n%s", op, daemon, err, o)
	}
	return nil
}

// namespace creates a namespace of the test's own, deleted at its end.
func (l *knativeLab) namespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := prefix + suffix()
	ctx := context.Background()
	if _, err := l.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return ns
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
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

// process is a coldbench started in the background.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error // after done
}

func (l *knativeLab) start(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(l.bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process's end, failing t after timeout.
func (p *process) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("coldbench still running after %v\n%s", timeout, p.stderr.String())
		return nil
	}
}

// recorded returns the attempts in the results file at path so far.
func recorded(path string) []results.Attempt {
	set, err := results.ReadFile(path)
	if err != nil {
		return nil
	}
	return set.Attempts
}

// waitForAttempt waits until an attempt satisfying ok is recorded in path,
// or the process ends, or timeout passes; it says whether one was.
func waitForAttempt(path string, p *process, timeout time.Duration, ok func(results.Attempt) bool) bool {
	return waitForRecords(path, p, timeout, func(as []results.Attempt) bool { return slices.ContainsFunc(as, ok) })
}

// waitForRecords waits until the attempts recorded in path satisfy ok, or
// the process ends, or timeout passes; it says whether they did.
func waitForRecords(path string, p *process, timeout time.Duration, ok func([]results.Attempt) bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok(recorded(path)) {
			return true
		}
		select {
		case <-p.done:
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return false
}

// gone reports whether err is a NotFound.
func gone(err error) bool { return apierrors.IsNotFound(err) }

// execColdbench runs coldbench to its end and returns its combined output.
func execColdbench(bin string, args ...string) (string, error) {
	return execColdbenchCtx(context.Background(), bin, args...)
}

func execColdbenchCtx(ctx context.Context, bin string, args ...string) (string, error) {
	o, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(o), err
}
