package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coldbench/coldbench/pkg/footprint"
)

// Shims containerd lets go. In a density run at 700 instances containerd
// lost its connection to one sandbox's shim ("shim disconnected … cleaning
// up dead shim"), then stopped and removed the sandbox and answered
// RemovePodSandbox with success, while the shim process ran on: in no
// container's or task's record, so nothing of containerd's would ever
// stop it. The platform remembers the sandboxes its teardowns removed, and
// a session's Close kills the shims still running for them (a sandbox's
// shim is started with -id SANDBOX_ID): they were made for sandboxes of
// coldbench's that are gone.

// removedSandboxes are the sandboxes removed since the last Close.
type removedSandboxes struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (r *removedSandboxes) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]bool{}
	}
	r.ids[id] = true
}

// take returns the ids and forgets them.
func (r *removedSandboxes) take() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.ids
	r.ids = nil
	return ids
}

// lingeringShim is a shim process of a removed sandbox.
type lingeringShim struct {
	pid     int
	sandbox string
}

// Seams for tests: how long a removed sandbox's shim may take to exit on
// its own, and how a process is killed.
var (
	shimExitGrace = 2 * time.Second
	killProcess   = func(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
)

// findShims lists the shim processes (containerd-shim*, by their first
// argument) whose -id is one of ids, from /proc under hostRoot.
func findShims(ids map[string]bool) ([]lingeringShim, error) {
	pids, err := footprint.NewFS(hostRoot).PIDs()
	if err != nil {
		return nil, err
	}
	var out []lingeringShim
	for _, pid := range pids {
		cmdline, err := os.ReadFile(filepath.Join(hostRoot, "proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue // exited meanwhile, or not ours to read
		}
		args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		if i := slices.Index(args, "-id"); i >= 0 && i+1 < len(args) && ids[args[i+1]] {
			out = append(out, lingeringShim{pid: pid, sandbox: args[i+1]})
		}
	}
	return out, nil
}

// killLingeringShims kills the shims of the sandboxes removed since the
// last call that are still running shimExitGrace after it was called (a
// shim exits on its own just after its sandbox's removal), and says what
// it did. The pids are this process's /proc's (hostRoot is "/" but in
// tests): coldbench runs on the node, in its PID namespace.
func (p *Platform) killLingeringShims() error {
	ids := p.removed.take()
	if len(ids) == 0 {
		return nil
	}
	deadline := time.Now().Add(shimExitGrace)
	found, err := findShims(ids)
	for err == nil && len(found) > 0 && time.Now().Before(deadline) {
		time.Sleep(min(200*time.Millisecond, time.Until(deadline)))
		found, err = findShims(ids)
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range found {
		p.log.Warn("the shim of a removed sandbox still runs (containerd lets go of a shim it lost its connection to, as under heavy load): killing it",
			"pid", s.pid, "sandbox", s.sandbox, "after", shimExitGrace)
		if err := killProcess(s.pid); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("killing the shim (pid %d) of removed sandbox %s: %w", s.pid, s.sandbox, err))
		}
	}
	return errors.Join(errs...)
}
