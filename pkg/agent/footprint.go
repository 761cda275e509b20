package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/coldbench/coldbench/pkg/footprint"
)

// FootprintResponse is GET /v1/footprint's body: the node's MemAvailable
// and, for each pod asked for, what its instance has cost so far, read
// from the node's /proc and cgroup files under the agent's host root (the
// DaemonSet mounts the host's /proc and /sys/fs/cgroup there) by the same
// code as the node backend's (pkg/footprint).
type FootprintResponse struct {
	NodeTimeUnixNS    int64  `json:"node_time_unix_ns"`
	MemAvailableBytes *int64 `json:"mem_available_bytes,omitempty"`
	// MemAvailableMissing says why MemAvailableBytes is nil.
	MemAvailableMissing string         `json:"mem_available_missing,omitempty"`
	Pods                []PodFootprint `json:"pods"`
}

// PodFootprint is one pod's reading; a nil figure was not read, and
// Missing says why.
type PodFootprint struct {
	UID string `json:"uid"`
	// Instance is the pod's cgroup and shims as found (nil: not found).
	Instance *footprint.Instance `json:"instance,omitempty"`
	// CPUNS is the CPU its pod cgroup and shims have used so far, and
	// CPUReadUnixNS when it was read (node clock).
	CPUNS         *int64 `json:"cpu_ns,omitempty"`
	CPUSource     string `json:"cpu_source,omitempty"`
	CPUReadUnixNS int64  `json:"cpu_read_unix_ns,omitempty"`
	// Memory is read when asked for (memory=1): PSS of its processes and
	// its pod cgroup's memory.
	Memory  *footprint.Memory `json:"memory,omitempty"`
	Missing []string          `json:"missing,omitempty"`
}

// footprintReader reads instances under the agent's host root; the
// cgroup layout is found once.
type footprintReader struct {
	fs         footprint.FS
	layoutOnce sync.Once
	layout     footprint.CgroupLayout
	layoutErr  error
}

func (r *footprintReader) cgroups() (footprint.CgroupLayout, error) {
	r.layoutOnce.Do(func() { r.layout, r.layoutErr = r.fs.DetectCgroups() })
	return r.layout, r.layoutErr
}

func (a *Agent) serveFootprint(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	uids, err := requestedUIDs(q) // none: the node's MemAvailable only
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := a.Footprint(r.Context(), uids, q.Get("memory") == "1")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		a.log.Debug("answering /v1/footprint", "err", err)
	}
}

// Footprint reads the instances of coldbench's pods uids: their CPU so
// far and, withMemory, their memory. A pod that is not coldbench's, or
// that containerd does not know, is answered with why.
func (a *Agent) Footprint(ctx context.Context, uids []string, withMemory bool) FootprintResponse {
	fr := a.footprint
	resp := FootprintResponse{Pods: make([]PodFootprint, 0, len(uids))}
	if mi, err := fr.fs.ReadMemInfo(); err != nil {
		resp.MemAvailableMissing = err.Error()
	} else if mi.MemAvailableBytes == nil {
		resp.MemAvailableMissing = "no MemAvailable in /proc/meminfo (a kernel before 3.14)"
	} else {
		resp.MemAvailableBytes = mi.MemAvailableBytes
	}
	layout, layoutErr := fr.cgroups()
	var tree *footprint.ProcessTree
	var treeErr error
	for _, uid := range uids {
		p := PodFootprint{UID: uid}
		cgroupPath, err := a.podCgroup(ctx, uid)
		switch {
		case err != nil:
			p.Missing = append(p.Missing, err.Error())
		case layoutErr != nil:
			p.Missing = append(p.Missing, "cgroups: "+layoutErr.Error())
		default:
			in, err := fr.fs.FindInstance(layout, cgroupPath)
			if err != nil {
				p.Missing = append(p.Missing, "shim: "+err.Error())
				break
			}
			p.Instance = &in
			if cpu, err := fr.fs.CPU(layout, in); err != nil {
				p.Missing = append(p.Missing, "cpu: "+err.Error())
			} else {
				ns := cpu.Nanoseconds()
				p.CPUNS, p.CPUSource, p.CPUReadUnixNS = &ns, in.CPUSource(layout), unixNS(a.now())
			}
			if !withMemory {
				break
			}
			if tree == nil && treeErr == nil {
				t, err := fr.fs.ReadProcessTree()
				tree, treeErr = &t, err
			}
			if treeErr != nil {
				p.Missing = append(p.Missing, "pss: "+treeErr.Error())
				break
			}
			mem := fr.fs.ReadMemory(layout, in, *tree)
			p.Memory = &mem
		}
		resp.Pods = append(resp.Pods, p)
	}
	resp.NodeTimeUnixNS = unixNS(a.now())
	return resp
}

// podCgroup is the pod cgroup of coldbench's pod uid, as the CRI cgroup
// parent of its sandbox names it: the parent of the sandbox container's
// cgroupsPath (cgroupfs driver: /kubepods/besteffort/pod<uid>/<id>;
// systemd driver: kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>).
func (a *Agent) podCgroup(ctx context.Context, uid string) (string, error) {
	sandboxes, err := a.listSandboxes(ctx, uid)
	if err != nil {
		return "", err
	}
	var ours []string
	for _, c := range sandboxes {
		if c.GetLabels()[LabelManagedBy] != LabelManagedByVal {
			continue
		}
		var spec struct {
			Linux *struct {
				CgroupsPath string `json:"cgroupsPath"`
			} `json:"linux"`
		}
		if err := json.Unmarshal(c.GetSpec().GetValue(), &spec); err != nil {
			return "", fmt.Errorf("reading the spec of sandbox %s of pod %s: %w", c.GetID(), uid, err)
		}
		if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
			return "", fmt.Errorf("sandbox %s of pod %s has no cgroupsPath in its spec", c.GetID(), uid)
		}
		p, err := podCgroupOf(spec.Linux.CgroupsPath)
		if err != nil {
			return "", fmt.Errorf("sandbox %s of pod %s: %w", c.GetID(), uid, err)
		}
		ours = append(ours, p)
	}
	if len(ours) == 0 {
		return "", fmt.Errorf("containerd (namespace %s) has no sandbox of coldbench's pod %s", a.cfg.Namespace, uid)
	}
	return ours[len(ours)-1], nil // a recreated sandbox: the same pod cgroup
}

// podCgroupOf turns a sandbox's cgroupsPath into its pod cgroup's path.
func podCgroupOf(cgroupsPath string) (string, error) {
	if strings.HasPrefix(cgroupsPath, "/") {
		return path.Dir(cgroupsPath), nil
	}
	// systemd: "SLICE:PREFIX:NAME"; SLICE a-b-c.slice is the directory
	// /a.slice/a-b.slice/a-b-c.slice (systemd's nesting by dashes).
	slice, _, ok := strings.Cut(cgroupsPath, ":")
	if !ok || !strings.HasSuffix(slice, ".slice") {
		return "", fmt.Errorf("cgroupsPath %q is neither a path (cgroupfs driver) nor slice:prefix:name (systemd driver)", cgroupsPath)
	}
	name := strings.TrimSuffix(slice, ".slice")
	if name == "" || name == "-" {
		return "/", nil
	}
	var dir strings.Builder
	parts := strings.Split(name, "-")
	for i := range parts {
		dir.WriteString("/" + strings.Join(parts[:i+1], "-") + ".slice")
	}
	return dir.String(), nil
}
