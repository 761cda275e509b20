// Command coldbench-runsc-shim starts gVisor's containerd shim
// (containerd-shim-runsc-v1, unmodified) on hosts whose root lacks
// CAP_SYS_RESOURCE.
//
// containerd runs a shim binary twice: once as "<shim> ... start", which
// must spawn the long-lived shim daemon, hand it a listening socket and print
// the bootstrap JSON; then it talks ttrpc to that daemon. gVisor's "start"
// sets the daemon's oom_score_adj to -999, unconditionally, and fails when
// that write is refused. Without CAP_SYS_RESOURCE the kernel refuses any
// value below the oom_score_adj_min the process tree inherited (0 here), so
// gVisor's shim cannot start under any containerd on such a host.
//
// This program is configured as the runtime's runtime_path. For "start" it
// does what gVisor's start does (same socket address, same files in the
// bundle, same daemon command line, the listener on fd 3) but gives the
// daemon containerd's oom_score_adj + 1, as containerd's own runc shim does
// (shim.AdjustOOMScore): raising a score never needs a capability. Every
// other invocation (delete, -v, -info, the daemon itself) is an exec of the
// real shim with the same arguments. gVisor's shim grouping (grouping = true
// in its config.toml) is not implemented and is refused.
//
// The real shim is $COLDBENCH_RUNSC_SHIM, else containerd-shim-runsc-v1 next
// to this binary.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// socketRoot is containerd's defaults.DefaultStateDir + "/s": shims put their
// sockets there whatever the daemon's own state directory is.
const socketRoot = "/run/containerd/s"

// gVisor's shim reads its start-time options from the first of these.
var shimConfigPaths = []string{"/run/containerd/runsc/config.toml", "/etc/containerd/runsc/config.toml", "config.toml"}

func main() {
	real, err := realShim()
	if err != nil {
		fail(err)
	}
	fs := flag.NewFlagSet(os.Args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		namespace = fs.String("namespace", "", "")
		id        = fs.String("id", "", "")
		address   = fs.String("address", "", "")
		debug     = fs.Bool("debug", false, "")
	)
	// Flags the shim knows but start does not need.
	fs.String("publish-binary", "", "")
	fs.String("socket", "", "")
	fs.String("debug-socket", "", "")
	fs.String("bundle", "", "")
	fs.Bool("v", false, "")
	fs.Bool("info", false, "")
	if fs.Parse(os.Args[1:]) != nil || fs.Arg(0) != "start" {
		// delete, -v, -info, the daemon: the real shim, as it was asked.
		err := syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
		fail(fmt.Errorf("exec %s: %w", real, err))
	}
	if *namespace == "" || *id == "" || *address == "" {
		fail(errors.New("start needs -namespace, -id and -address"))
	}
	params, err := start(real, *namespace, *id, *address, *debug)
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(params)
	os.Stdout.Write(out)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "coldbench-runsc-shim: %v", err)
	os.Exit(1)
}

func realShim() (string, error) {
	if p := os.Getenv("COLDBENCH_RUNSC_SHIM"); p != "" {
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(self), "containerd-shim-runsc-v1"), nil
}

type bootstrap struct {
	Version  int    `json:"version"`
	Address  string `json:"address"`
	Protocol string `json:"protocol"`
}

func start(real, namespace, id, containerdAddress string, debug bool) (bootstrap, error) {
	if grouping() {
		return bootstrap{}, errors.New("gVisor shim grouping is enabled in its config.toml: not supported by this launcher")
	}
	// containerd's shim.SocketAddress.
	key := filepath.Join(containerdAddress, namespace, id)
	if debug {
		key = filepath.Join(key, "debug")
	}
	sockPath := fmt.Sprintf("%s/%x", socketRoot, sha256.Sum256([]byte(key)))
	address := "unix://" + sockPath
	params := bootstrap{Version: 2, Address: address, Protocol: "ttrpc"}

	l, err := listen(sockPath)
	if errors.Is(err, syscall.EADDRINUSE) {
		if c, derr := net.DialTimeout("unix", sockPath, 100*time.Millisecond); derr == nil {
			c.Close() // a shim already serves this task
			return params, os.WriteFile("address", []byte(address), 0o644)
		}
		os.Remove(sockPath)
		l, err = listen(sockPath)
	}
	if err != nil {
		return bootstrap{}, fmt.Errorf("create shim socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			l.Close() // unlinks the socket
		}
	}()
	if err := os.WriteFile("address", []byte(address), 0o644); err != nil {
		return bootstrap{}, err
	}
	f, err := l.File()
	if err != nil {
		return bootstrap{}, err
	}
	defer f.Close()

	cwd, err := os.Getwd()
	if err != nil {
		return bootstrap{}, err
	}
	// gVisor's newCommand.
	args := []string{"-namespace", namespace, "-address", containerdAddress, "-id", id}
	if debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(real, args...)
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.ExtraFiles = []*os.File{f} // fd 3: the daemon serves ttrpc on it
	if err := cmd.Start(); err != nil {
		return bootstrap{}, err
	}
	defer func() {
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	if err := writePidFile("shim.pid", cmd.Process.Pid); err != nil {
		return bootstrap{}, err
	}
	if err := adjustOOMScore(cmd.Process.Pid); err != nil {
		return bootstrap{}, err
	}
	ok = true
	l.SetUnlinkOnClose(false)
	return params, nil
}

// listen is containerd's shim.NewSocket for a path socket.
func listen(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l.(*net.UnixListener), nil
}

// writePidFile is containerd's shim.WritePidFile: atomic, via a hidden file.
func writePidFile(path string, pid int) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_SYNC, 0o666)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d", pid)
	f.Close()
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// adjustOOMScore is containerd's shim.AdjustOOMScore: the daemon gets its
// parent's (containerd's) oom_score_adj + 1, so the OOM killer picks the
// shim before containerd. Raising a score needs no capability.
func adjustOOMScore(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", os.Getppid()))
	if err != nil {
		return fmt.Errorf("get parent OOM score: %w", err)
	}
	score, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("get parent OOM score: %w", err)
	}
	score = min(score+1, 1000)
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(score)), 0); err != nil {
		return fmt.Errorf("set shim OOM score: %w", err)
	}
	return nil
}

var groupingRE = regexp.MustCompile(`^\s*grouping\s*=\s*true\b`)

// grouping reports whether gVisor's start-time config (the first of its
// config.toml paths that exists) enables shim grouping.
func grouping() bool {
	for _, p := range shimConfigPaths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			line := s.Text()
			if strings.HasPrefix(strings.TrimSpace(line), "[") {
				return false // grouping is a top-level key
			}
			if groupingRE.MatchString(line) {
				return true
			}
		}
		return false
	}
	return false
}
