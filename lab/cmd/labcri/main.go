// Command labcri removes what the lab's kubelet left in a containerd: every
// pod sandbox the kubelet made (it carries the io.kubernetes.pod.uid label),
// its containers, and the CNI state (host-local IP reservations, libcni result
// cache) of those sandboxes. Sandboxes of coldbench's node backend (and any
// other sandbox without the kubelet's label) are never touched.
//
//	labcri -endpoint unix:///run/coldbench/lab/containerd/containerd.sock clean
//	labcri -endpoint ... count      # prints how many kubelet sandboxes remain
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const kubeletPodUIDLabel = "io.kubernetes.pod.uid"

func main() {
	endpoint := flag.String("endpoint", "unix:///run/coldbench/containerd/containerd.sock", "CRI endpoint")
	ipamDir := flag.String("ipam-dir", "/run/coldbench/cni/ipam", "host-local IPAM data directory of the CNI network")
	cacheDir := flag.String("cni-cache-dir", "/var/lib/cni/results", "libcni result cache")
	timeout := flag.Duration("timeout", 2*time.Minute, "overall timeout")
	flag.Parse()
	if flag.NArg() != 1 || (flag.Arg(0) != "clean" && flag.Arg(0) != "count") {
		fmt.Fprintln(os.Stderr, "usage: labcri [-endpoint E] clean|count")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(*endpoint, "unix://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		fatal(fmt.Errorf("listing sandboxes on %s: %w", *endpoint, err))
	}
	var ours []*runtimeapi.PodSandbox
	for _, sb := range list.Items {
		if _, ok := sb.Labels[kubeletPodUIDLabel]; ok {
			ours = append(ours, sb)
		}
	}
	if flag.Arg(0) == "count" {
		fmt.Println(len(ours))
		return
	}
	failed := 0
	for _, sb := range ours {
		name := sb.GetMetadata().GetNamespace() + "/" + sb.GetMetadata().GetName()
		cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: sb.Id}})
		if err == nil {
			for _, c := range cs.Containers {
				rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: 5})
				if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); err != nil {
					fmt.Fprintf(os.Stderr, "labcri: removing container %s of %s: %v\n", short(c.Id), name, err)
				}
			}
		}
		// StopPodSandbox tears the network down (CNI DEL) before the sandbox goes.
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "labcri: stopping sandbox %s (%s): %v\n", short(sb.Id), name, err)
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "labcri: removing sandbox %s (%s): %v\n", short(sb.Id), name, err)
			failed++
			continue
		}
		n := releaseCNIState(sb.Id, *ipamDir, *cacheDir)
		fmt.Printf("labcri: removed sandbox %s (%s)%s\n", short(sb.Id), name, map[bool]string{true: fmt.Sprintf(", %d leftover CNI entries", n), false: ""}[n > 0])
	}
	if failed > 0 {
		fatal(fmt.Errorf("%d sandbox(es) could not be removed", failed))
	}
}

// releaseCNIState removes host-local reservations and libcni cache entries that
// still name sandbox id (normally CNI DEL already did; this catches a failed DEL).
func releaseCNIState(id, ipamDir, cacheDir string) int {
	n := 0
	nets, _ := os.ReadDir(ipamDir)
	for _, netDir := range nets {
		dir := filepath.Join(ipamDir, netDir.Name())
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			p := filepath.Join(dir, f.Name())
			if f.IsDir() || strings.HasPrefix(f.Name(), "last_reserved_ip") || f.Name() == "lock" {
				continue
			}
			b, err := os.ReadFile(p)
			if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte(id)) && os.Remove(p) == nil {
				n++
			}
		}
	}
	cached, _ := filepath.Glob(filepath.Join(cacheDir, "*-"+id+"-*"))
	for _, p := range cached {
		if os.Remove(p) == nil {
			n++
		}
	}
	return n
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "labcri:", err)
	os.Exit(1)
}
