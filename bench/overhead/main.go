// Command overhead measures, in one run and interleaved, three cold-start
// paths of the same function binary with the same OCI runtime:
//
//	(a) coldbench's node backend (pkg/platform/node, as `coldbench run` uses it)
//	(b) the harness-free floor: the same CRI calls and a bare polling loop, nothing else
//	(c) the raw runtime: `runc run -d` of an equivalent bundle + the same polling loop
//
// and prints the medians and the ratios a/b (coldbench's own overhead) and
// b/c (what containerd and CRI add). Run as root on a host prepared by
// scripts/node-up.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/stats"
)

func main() {
	// The one platform this harness runs (the CLI registers all).
	bench.Register(node.Backend())
	iterations := flag.Int("iterations", 15, "samples per path")
	endpoint := flag.String("endpoint", node.DefaultEndpoint, "containerd CRI socket")
	handler := flag.String("handler", "runc", "CRI handler; (c) runs its binary directly")
	runtimeBin := flag.String("runtime-binary", "/usr/bin/runc", "OCI runtime binary for (c)")
	image := flag.String("image", bench.DefaultImage, "function image for (a) and (b)")
	binary := flag.String("function-binary", "", "the same function as a static binary for (c) (default: built from functions/go-static)")
	interval := flag.Duration("probe-interval", 2*time.Millisecond, "polling interval, all paths")
	flag.Parse()
	if err := run(*iterations, *endpoint, *handler, *runtimeBin, *image, *binary, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(1)
	}
}

func run(iterations int, endpoint, handler, runtimeBin, image, binary string, interval time.Duration) error {
	ctx := context.Background()
	plat, err := node.New(endpoint, bench.DefaultPort, slog.Default())
	if err != nil {
		return err
	}
	defer plat.Close()
	exp := bench.Default()
	exp.Spec.Runtimes = []bench.Runtime{{Name: handler, Handler: handler, Image: image}}
	exp.Spec.SetSection(node.Name, &node.Spec{Endpoint: endpoint})
	if err := exp.CompleteAndValidate(false); err != nil {
		return err
	}
	if err := bench.Failed(plat.Checks(ctx, exp)); err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+node.SocketPath(endpoint), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	cri := runtimeapi.NewRuntimeServiceClient(conn)

	work, err := os.MkdirTemp("", "coldbench-overhead-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if binary == "" {
		binary = filepath.Join(work, "fn-go")
		build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binary, "./functions/go-static")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("building the function (run from the repository root): %v\n%s", err, out)
		}
	}
	bundle, err := makeBundle(work, binary, runtimeBin)
	if err != nil {
		return err
	}

	id := bench.NewExperimentID(time.Now())
	sess, err := plat.Open(ctx, exp, id, nil)
	if err != nil {
		return err
	}
	defer sess.Close()
	cell := bench.Cell{ExperimentID: id, Runtime: exp.Spec.Runtimes[0], Scale: 1, RequestTimeout: 30 * time.Second, ProbeInterval: interval}
	paths := []func(i int) (time.Duration, error){
		func(int) (time.Duration, error) {
			at := sess.ColdStart(ctx, cell)[0]
			if !at.OK {
				return 0, fmt.Errorf("(a) failed: %s: %s", at.ErrorClass, at.Error)
			}
			return time.Duration(at.TTFBNS), nil
		},
		func(i int) (time.Duration, error) { return floor(ctx, cri, handler, image, interval, i) },
		func(i int) (time.Duration, error) { return raw(runtimeBin, bundle, interval, i) },
	}
	samples := make([][]float64, len(paths))
	// One warm-up of each path, then samples; the order of the paths rotates
	// every iteration so none always runs right after another's teardown.
	for i := -1; i < iterations; i++ {
		got := make([]time.Duration, len(paths))
		for k := range paths {
			p := (k + i + 1) % len(paths)
			d, err := paths[p](i)
			if err != nil {
				return fmt.Errorf("path %c: %w", 'a'+p, err)
			}
			got[p] = d
		}
		if i < 0 {
			continue
		}
		for p, d := range got {
			samples[p] = append(samples[p], float64(d))
		}
		fmt.Fprintf(os.Stderr, "sample %2d: a=%v b=%v c=%v\n", i, got[0].Round(time.Microsecond), got[1].Round(time.Microsecond), got[2].Round(time.Microsecond))
	}
	a, b, c := samples[0], samples[1], samples[2]
	ma, mb, mc := median(a), median(b), median(c)
	fmt.Printf("handler %s, %d samples per path, probe interval %v\n", handler, iterations, interval)
	fmt.Printf("(a) coldbench node backend  median %8.2f ms\n", ma/1e6)
	fmt.Printf("(b) harness-free CRI floor  median %8.2f ms\n", mb/1e6)
	fmt.Printf("(c) raw %s run            median %8.2f ms\n", filepath.Base(runtimeBin), mc/1e6)
	fmt.Printf("a/b (coldbench overhead)        %.3f\n", ma/mb)
	fmt.Printf("b/c (containerd + CRI cost)     %.3f\n", mb/mc)
	return nil
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	return stats.Median(s)
}

// poll is the bare loop all paths share in spirit: GET until a reply.
func poll(url string, interval time.Duration, deadline time.Time) error {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		time.Sleep(interval)
	}
	return fmt.Errorf("no reply from %s", url)
}

// floor makes exactly the CRI calls the node backend makes, and polls.
func floor(ctx context.Context, cri runtimeapi.RuntimeServiceClient, handler, image string, interval time.Duration, i int) (time.Duration, error) {
	uid := fmt.Sprintf("floor%d%d", time.Now().UnixNano(), i)
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "floor", Uid: uid, Namespace: node.Namespace},
		Labels:   map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: "overhead-floor"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/coldbench/pod" + uid},
	}
	ctrCfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "function"},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Envs:     []*runtimeapi.KeyValue{{Key: "PORT", Value: []byte(strconv.Itoa(bench.DefaultPort))}},
	}
	t0 := time.Now()
	sb, err := cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg, RuntimeHandler: handler})
	if err != nil {
		return 0, err
	}
	defer func() {
		cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	}()
	cr, err := cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, Config: ctrCfg, SandboxConfig: sbCfg})
	if err != nil {
		return 0, err
	}
	if _, err := cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		return 0, err
	}
	st, err := cri.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.PodSandboxId})
	if err != nil {
		return 0, err
	}
	url := "http://" + net.JoinHostPort(st.Status.Network.Ip, strconv.Itoa(bench.DefaultPort)) + "/"
	if err := poll(url, interval, t0.Add(30*time.Second)); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	cri.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cr.ContainerId})
	cri.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cr.ContainerId})
	return d, nil
}

// makeBundle writes an OCI bundle around the function binary, starting from
// the runtime's own default spec; it shares the host network (the pod
// network is containerd's part, measured in b).
func makeBundle(work, binary, runtimeBin string) (string, error) {
	bundle := filepath.Join(work, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "fn"), 0o755); err != nil {
		return "", err
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(rootfs, "fn", "fn"), data, 0o755); err != nil {
		return "", err
	}
	if out, err := exec.Command(runtimeBin, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s spec: %v: %s", runtimeBin, err, out)
	}
	path := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		return "", err
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/fn/fn"}
	proc["env"] = []string{"PATH=/usr/bin:/bin", "PORT=" + strconv.Itoa(rawPort)}
	linux := spec["linux"].(map[string]any)
	var nss []any
	for _, ns := range linux["namespaces"].([]any) {
		if ns.(map[string]any)["type"] != "network" {
			nss = append(nss, ns)
		}
	}
	linux["namespaces"] = nss
	out, _ := json.MarshalIndent(spec, "", "  ")
	return bundle, os.WriteFile(path, out, 0o644)
}

const rawPort = 18080

// raw runs the bundle with the runtime binary directly and polls loopback.
func raw(runtimeBin, bundle string, interval time.Duration, i int) (time.Duration, error) {
	id := fmt.Sprintf("coldbench-raw-%d-%d", time.Now().UnixNano(), i)
	url := "http://127.0.0.1:" + strconv.Itoa(rawPort) + "/"
	t0 := time.Now()
	// stdio stays /dev/null: a detached container inherits it, and a pipe
	// would keep the caller waiting for EOF.
	cmd := exec.Command(runtimeBin, "run", "-d", "--bundle", bundle, id)
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s run -d --bundle %s: %v", runtimeBin, bundle, err)
	}
	err := poll(url, interval, t0.Add(30*time.Second))
	d := time.Since(t0)
	exec.Command(runtimeBin, "delete", "-f", id).Run()
	return d, err
}
