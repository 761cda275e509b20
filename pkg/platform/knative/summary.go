package knative

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
)

// The kubelet's Summary API (GET /api/v1/nodes/NODE/proxy/stats/summary,
// through the API server: RBAC get nodes/proxy) gives each pod's cgroup
// memory and CPU as the kubelet's cAdvisor last read them (every 10 s or
// so, each figure with its own time). It is the footprint's fallback
// where no node agent answers, and its figures are recorded beside the
// agent's: the kubelet sees the pod cgroup only, never the shim (outside
// it) nor a page's share (no PSS).

// summaryNode is the part of a node's summary coldbench reads.
type summaryNode struct {
	Node struct {
		NodeName string `json:"nodeName"`
	} `json:"node"`
	Pods []summaryPod `json:"pods"`
}

type summaryPod struct {
	PodRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	} `json:"podRef"`
	CPU *struct {
		Time                 time.Time `json:"time"`
		UsageCoreNanoSeconds *uint64   `json:"usageCoreNanoSeconds"`
	} `json:"cpu"`
	Memory *struct {
		Time            time.Time `json:"time"`
		UsageBytes      *uint64   `json:"usageBytes"`
		WorkingSetBytes *uint64   `json:"workingSetBytes"`
	} `json:"memory"`
}

// readSummary reads node's summary through the API server.
func readSummary(ctx context.Context, rc rest.Interface, node string) (map[string]summaryPod, error) {
	if rc == nil {
		return nil, fmt.Errorf("no REST client to reach node %s's kubelet through the API server's proxy", node)
	}
	ctx, cancel := context.WithTimeout(ctx, agentRequestTimeout)
	defer cancel()
	body, err := rc.Get().AbsPath("/api/v1/nodes", node, "proxy", "stats", "summary").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("GET the kubelet's /stats/summary of node %s through the API server's proxy: %w%s", node, err, serverSaid(err))
	}
	return parseSummary(body)
}

// parseSummary indexes a summary's pods by uid.
func parseSummary(body []byte) (map[string]summaryPod, error) {
	var s summaryNode
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("decoding the kubelet's summary: %w", err)
	}
	pods := make(map[string]summaryPod, len(s.Pods))
	for _, p := range s.Pods {
		if p.PodRef.UID != "" {
			pods[p.PodRef.UID] = p
		}
	}
	return pods, nil
}
