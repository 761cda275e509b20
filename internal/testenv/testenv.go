// Package testenv decides what integration tests do when a prerequisite is
// missing: skip on a developer's machine, fail in CI (CI=true), so a missing
// containerd can never turn into a green run.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coldbench/coldbench/internal/testenv/tools"
	"github.com/coldbench/coldbench/pkg/image"
	"github.com/coldbench/coldbench/pkg/platform/node"
)

// InCI reports whether missing prerequisites must fail tests.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips or fails t for a missing prerequisite.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing in CI: %s (scripts/node-up.sh sets it up)", what)
	}
	t.Skipf("prerequisite missing: %s (run scripts/node-up.sh)", what)
}

// Integration skips under -short, the only place integration tests skip.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped under -short")
	}
}

// Endpoint returns the CRI endpoint of coldbench's containerd (override with
// COLDBENCH_ENDPOINT), checking that its socket exists. The test holds a
// shared lock on that containerd until it ends, so a test that counts every
// sandbox (EndpointAlone) never sees another package's test at work:
// `go test ./...` runs packages in parallel.
func Endpoint(t testing.TB) string {
	t.Helper()
	return endpoint(t, syscall.LOCK_SH)
}

// EndpointAlone is Endpoint with the containerd to itself: it waits until no
// other test (in any package) uses it, and keeps others out until t ends.
func EndpointAlone(t testing.TB) string {
	t.Helper()
	return endpoint(t, syscall.LOCK_EX)
}

func endpoint(t testing.TB, how int) string {
	t.Helper()
	ep := os.Getenv("COLDBENCH_ENDPOINT")
	if ep == "" {
		ep = node.DefaultEndpoint
	}
	sock := node.SocketPath(ep)
	if _, err := os.Stat(sock); err != nil {
		Missing(t, "containerd socket "+sock)
	}
	lockPath := filepath.Join(filepath.Dir(sock), "coldbench-tests.lock")
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("opening the test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("locking %s: %v", lockPath, err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
	return ep
}

// Binary checks a program is on PATH. Only for what a fresh machine has or
// the scripts install from Debian (go, cc, chromium): programs the scripts
// build (containerd, ctr, runsc) are found by ContainerdBin, never on PATH.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" on PATH")
	}
	return p
}

// ContainerdBin is the directory where scripts/build-runtimes.sh builds
// containerd, ctr and containerd-shim-runc-v2 (config/versions.env), with
// those three checked present.
func ContainerdBin(t testing.TB) string {
	t.Helper()
	dir, err := tools.ContainerdBin(RepoRoot())
	if err != nil {
		t.Fatalf("locating the containerd build: %v", err)
	}
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			Missing(t, "containerd build "+filepath.Join(dir, b)+" (scripts/build-runtimes.sh builds it)")
		}
	}
	return dir
}

// Lab describes the running lab (lab/up.sh): where its kubeconfig and
// ingress are, and the domain of its Knative Services.
type Lab struct {
	Kubeconfig string // admin kubeconfig
	Ingress    string // base URL of Traefik's web entrypoint, e.g. http://127.0.0.1:31080
	Domain     string // Knative's domain: <ksvc>.<namespace>.<Domain>
	CRISocket  string // the lab containerd's socket (images are imported there)
	Ctr        string // ctr of the lab's containerd release
	Ctl        string // lab/ctl.sh: stop, start, restart one lab daemon
}

// Lab defaults, overridable with COLDBENCH_LAB_KUBECONFIG, COLDBENCH_LAB_INGRESS,
// COLDBENCH_LAB_DOMAIN, COLDBENCH_LAB_CRI_SOCKET and COLDBENCH_CTR (they must
// match lab/lib.sh and scripts/lib.sh). The lab's ctr is the one of the
// containerd build in config/versions.env.
const (
	DefaultLabKubeconfig = "/var/lib/coldbench/lab/kubeconfig"
	DefaultLabIngress    = "http://127.0.0.1:31080"
	DefaultLabDomain     = "lab.coldbench.local"
	DefaultLabCRISocket  = "/run/coldbench/lab/containerd/containerd.sock"
)

// RepoRoot is the checkout's root directory (tests run in their package's
// directory; the root holds go.mod).
func RepoRoot() string { return tools.RepoRoot() }

// LabEnv returns the lab's coordinates, skipping t (failing it in CI) when
// the lab's kubeconfig is missing. Whether the cluster answers is the
// caller's first check (it needs a client).
func LabEnv(t testing.TB) Lab {
	t.Helper()
	l := Lab{
		Kubeconfig: envOr("COLDBENCH_LAB_KUBECONFIG", DefaultLabKubeconfig),
		Ingress:    envOr("COLDBENCH_LAB_INGRESS", DefaultLabIngress),
		Domain:     envOr("COLDBENCH_LAB_DOMAIN", DefaultLabDomain),
		CRISocket:  envOr("COLDBENCH_LAB_CRI_SOCKET", DefaultLabCRISocket),
		Ctr:        os.Getenv("COLDBENCH_CTR"),
		Ctl:        filepath.Join(RepoRoot(), "lab", "ctl.sh"),
	}
	if _, err := os.Stat(l.Kubeconfig); err != nil {
		MissingLab(t, "lab kubeconfig "+l.Kubeconfig)
	}
	if l.Ctr == "" {
		l.Ctr = filepath.Join(ContainerdBin(t), "ctr")
	}
	return l
}

// MissingLab is Missing for the lab: skip on a developer's machine, fail in CI.
func MissingLab(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing in CI: %s (make lab-up brings the lab up)", what)
	}
	t.Skipf("prerequisite missing: %s (run make lab-up)", what)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// BuildColdbench compiles the coldbench command into a temporary directory,
// for tests that run it as a process (signals, exit statuses). It is built
// exactly as coldbench's own image of it (`coldbench image build coldbench`:
// static, CGO_ENABLED=0, -trimpath), the way scripts/node-up.sh builds
// bin/coldbench too: one build, cached, serves all three.
func BuildColdbench(t testing.TB) string {
	t.Helper()
	Binary(t, "go")
	bin, err := image.BuildFunction(context.Background(), "coldbench", filepath.Join(RepoRoot(), "functions"), t.TempDir())
	if err != nil {
		t.Fatalf("building coldbench: %v", err)
	}
	return bin
}

// WaitForAttempts waits until the results file at path holds at least n
// attempt records (a running coldbench appends them), or fails t.
func WaitForAttempts(t testing.TB, path string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), `"type":"attempt"`) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d attempt records after %v", path, n, timeout)
}
