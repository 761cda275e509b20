// Command crun-compat measures what crun-oci-compat (scripts/crun-oci-compat.c,
// the OCI-version adapter between containerd 2.x and Debian's crun 1.8.1)
// adds to every crun invocation that creates a container: it times the
// adapter exec'ing a no-op "crun" (/bin/true) against exec'ing /bin/true
// directly, interleaved, on a bundle whose config.json says 1.3.0 as
// containerd writes it. Every crun call pays it; a cold start's timed path
// has four (create and start, for the pod sandbox and the function container).
//
//	go run ./bench/crun-compat [-n 2000] [-adapter /var/lib/coldbench/bin/crun-oci-compat]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 2000, "invocations of each path")
	adapter := flag.String("adapter", "/var/lib/coldbench/bin/crun-oci-compat", "the adapter binary (built by scripts/node-up.sh)")
	flag.Parse()
	if _, err := os.Stat(*adapter); err != nil {
		fmt.Fprintf(os.Stderr, "crun-compat: %v (run scripts/node-up.sh, or pass -adapter)\n", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "crun-compat")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "config.json")
	// containerd's spec starts with ociVersion; the rest is padding of a
	// realistic size (a CRI container spec is ≈ 10 KiB).
	spec := `{"ociVersion":"1.3.0","process":{"args":["/fn"],"env":["` + strings.Repeat("x", 10<<10) + `"]}}`
	run := func(bin string, env []string) time.Duration {
		if err := os.WriteFile(cfg, []byte(spec), 0o644); err != nil {
			panic(err)
		}
		cmd := exec.Command(bin, "--root", dir, "create", "--bundle", dir, "id")
		cmd.Env = env
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			panic(fmt.Sprintf("%s: %v", bin, err))
		}
		return time.Since(t0)
	}
	var direct, adapted []time.Duration
	for i := 0; i < *n; i++ {
		direct = append(direct, run("/bin/true", nil))
		adapted = append(adapted, run(*adapter, []string{"CRUN=/bin/true"}))
		if i == 0 {
			b, _ := os.ReadFile(cfg)
			if !strings.HasPrefix(string(b), `{"ociVersion":"1.1.0"`) {
				fmt.Fprintf(os.Stderr, "crun-compat: the adapter did not lower ociVersion: %.40s\n", b)
				os.Exit(1)
			}
		}
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	md, ma := med(direct), med(adapted)
	fmt.Printf("invocations per path: %d (interleaved)\n", *n)
	fmt.Printf("exec /bin/true directly:           median %8.3f ms\n", float64(md)/1e6)
	fmt.Printf("through crun-oci-compat:           median %8.3f ms\n", float64(ma)/1e6)
	fmt.Printf("added per crun call:               %8.3f ms (a cold start's timed path has four: create + start, sandbox + container)\n", float64(ma-md)/1e6)
}
