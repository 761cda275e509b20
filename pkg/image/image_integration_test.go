package image

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/coldbench/coldbench/internal/testenv/tools"
)

// TestContainerdImport imports a WriteTarball archive into a private
// containerd, exactly as the benchmark host does with
// `ctr -n k8s.io images import`, and checks names, digests, unpacking and the
// unpacked root filesystem.
func TestContainerdImport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a containerd daemon")
	}
	if os.Geteuid() != 0 {
		missing(t, "containerd needs root")
	}
	cbin := containerdBin(t)
	bins := builtFunctions(t)

	imgs := map[string]v1.Image{}
	inImage := map[string]string{} // ref -> binary's path in the image
	hostBin := map[string]string{} // ref -> binary on the host
	for _, f := range Functions {
		spec := f.Spec(bins[f.Name])
		img, err := Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		imgs[f.DefaultRef] = img
		hostBin[f.DefaultRef] = bins[f.Name]
		inImage[f.DefaultRef] = "/fn/" + f.Name
		if f.InImagePath != "" {
			inImage[f.DefaultRef] = f.InImagePath
		}
	}
	// Docker-format import would rename this to docker.io/library/fn-short:v1.
	imgs["fn-short:v1"] = imgs["coldbench.local/fn-go:v1"]

	// Short: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "cbctrd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountUnder(t, dir)
		os.RemoveAll(dir)
	})
	tarPath := filepath.Join(dir, "images.tar")
	if err := WriteTarball(tarPath, imgs); err != nil {
		t.Fatal(err)
	}

	c := startContainerd(t, cbin, dir)
	snap := c.snapshotter(t)
	t.Logf("snapshotter %s", snap)

	out := c.ctr(t, "-n", "k8s.io", "images", "import", "--snapshotter", snap, tarPath)
	t.Logf("import:\n%s", out)

	// Names exactly as given, and the digests Build produced.
	got := map[string]string{}
	for _, row := range rows(c.ctr(t, "-n", "k8s.io", "images", "ls")) {
		got[row[0]] = row[2]
	}
	want := map[string]string{}
	for ref, img := range imgs {
		want[ref] = digestOf(t, img).String()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ctr images ls = %v\nwant %v", got, want)
	}

	// All content present and unpacked for the snapshotter.
	checked := 0
	for _, row := range rows(c.ctr(t, "-n", "k8s.io", "images", "check", "--snapshotter", snap)) {
		line := strings.Join(row, " ")
		if !strings.Contains(line, "complete") || row[len(row)-1] != "true" {
			t.Errorf("ctr images check: %s", line)
		}
		checked++
	}
	if checked != len(imgs) {
		t.Errorf("ctr images check listed %d images, want %d", checked, len(imgs))
	}

	// The unpacked rootfs holds the binary, executable and owned as built.
	refs := make([]string, 0, len(inImage))
	for ref := range inImage {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for i, ref := range refs {
		target := filepath.Join(dir, "mnt", strings.Repeat("m", i+1))
		if err := os.MkdirAll(target, 0o755); err != nil {
			t.Fatal(err)
		}
		c.ctr(t, "-n", "k8s.io", "images", "mount", "--snapshotter", snap, ref, target)
		checkFile(t, ref, filepath.Join(target, inImage[ref]), hostBin[ref], imgs[ref])
		c.ctr(t, "-n", "k8s.io", "images", "unmount", "--snapshotter", snap, "--rm", target)
	}
}

func checkFile(t *testing.T, ref, path, hostBin string, img v1.Image) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", ref, err)
		return
	}
	if st.Mode().Perm() != 0o755 || !st.Mode().IsRegular() {
		t.Errorf("%s: mode %v, want -rwxr-xr-x", ref, st.Mode())
	}
	cf, _ := img.ConfigFile()
	sys := st.Sys().(*syscall.Stat_t)
	if owner := fmt.Sprintf("%d:%d", sys.Uid, sys.Gid); owner != cf.Config.User {
		t.Errorf("%s: owner %s, want %s", ref, owner, cf.Config.User)
	}
	got, _ := os.ReadFile(path)
	want, _ := os.ReadFile(hostBin)
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %s differs from %s", ref, path, hostBin)
	}
}

type containerd struct {
	bin  string // the directory of containerd and ctr
	sock string
	log  string
}

// containerdBin is where scripts/build-runtimes.sh builds containerd and
// ctr (config/versions.env); never the PATH, which on a fresh machine has
// neither, and elsewhere may hold another containerd than the one measured.
func containerdBin(t *testing.T) string {
	t.Helper()
	dir, err := tools.ContainerdBin(tools.RepoRoot())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"containerd", "ctr"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			missing(t, "%s is not built (scripts/build-runtimes.sh builds it)", filepath.Join(dir, b))
		}
	}
	return dir
}

func startContainerd(t *testing.T, bin, dir string) *containerd {
	t.Helper()
	c := &containerd{bin: bin, sock: filepath.Join(dir, "c.sock"), log: filepath.Join(dir, "containerd.log")}
	cfg := filepath.Join(dir, "config.toml")
	// CRI would start networking/streaming servers; opt would write to /opt.
	const config = "version = 2\n" +
		"disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.internal.v1.opt\"]\n"
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "containerd"), "--config", cfg,
		"--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"),
		"--address", c.sock, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(c.log)
			t.Logf("containerd log:\n%s", b)
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(c.log)
			t.Fatalf("containerd exited: %v\n%s", err, b)
		default:
		}
		if exec.Command(filepath.Join(bin, "ctr"), "--address", c.sock, "version").Run() == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd not ready within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *containerd) ctr(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "ctr"), append([]string{"--address", c.sock}, args...)...)
	// Tables are on stdout; stderr carries warnings (containerd 2.x warns
	// of cgroup v1 on every call here) that would read as table rows.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// snapshotter prefers overlayfs, what the benchmark hosts use, and falls back
// to native where overlayfs is unusable (e.g. /tmp itself on overlayfs).
func (c *containerd) snapshotter(t *testing.T) string {
	for _, row := range rows(c.ctr(t, "plugins", "ls")) {
		if len(row) >= 4 && row[0] == "io.containerd.snapshotter.v1" && row[1] == "overlayfs" && row[3] == "ok" {
			return "overlayfs"
		}
	}
	return "native"
}

// rows splits ctr's table output into fields, dropping the header.
func rows(out string) [][]string {
	var res [][]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for first := true; sc.Scan(); first = false {
		if f := strings.Fields(sc.Text()); !first && len(f) > 0 {
			res = append(res, f)
		}
	}
	return res
}

// unmountUnder detaches anything a failed test left mounted below dir, so
// RemoveAll cannot reach into a snapshot through a mount.
func unmountUnder(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts))) // deepest first
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", m, err)
		}
	}
}
