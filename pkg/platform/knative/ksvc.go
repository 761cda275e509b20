package knative

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coldbench/coldbench/pkg/bench"
)

// GVRs coldbench uses through the dynamic client.
var (
	ServiceGVR  = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}
	RevisionGVR = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "revisions"}
)

// Knative annotations and labels.
const (
	AnnInitialScale = "autoscaling.knative.dev/initial-scale"
	AnnMinScale     = "autoscaling.knative.dev/min-scale"
	AnnWindow       = "autoscaling.knative.dev/window"
	AnnTarget       = "autoscaling.knative.dev/target"
	LabelRevision   = "serving.knative.dev/revision"
	LabelService    = "serving.knative.dev/service"
	UserContainer   = "user-container"
	QueueProxy      = "queue-proxy"
	// LabelCell ties a service to its cell, for classic-protocol reuse.
	LabelCell = "coldbench.dev/cell"
)

// ServiceName is short enough for Knative's derived names (revision
// "-00001", its "-deployment" and "-private" service) to stay within 63
// characters: the runtime is named by its index, the labels carry its name.
// set is the cell's set of services (its protocol's set): under the fresh
// protocol the iteration, a warm-up's negative (named w<n>); 0 under
// classic; the turn in the pool under pool.
func ServiceName(experimentID string, runtimeIndex, scale, set, instance int) string {
	part := "i" + strconv.Itoa(set)
	if set < 0 {
		part = "w" + strconv.Itoa(-set)
	}
	return fmt.Sprintf("cb%s-r%d-n%d-%s-%d", shortID(experimentID), runtimeIndex, scale, part, instance)
}

// shortID is the random tail of an experiment id (cb-<time>-<hex>).
func shortID(id string) string {
	if i := strings.LastIndexByte(id, '-'); i >= 0 && len(id)-i-1 >= 4 {
		return id[i+1:]
	}
	return id
}

// ServiceSpec describes one ksvc coldbench creates.
type ServiceSpec struct {
	Name, Namespace string
	ExperimentID    string
	Cell            string
	Runtime         bench.Runtime
	Window, Target  string
	Port            int
	// PodRetention (a density run) keeps the revision's pod that long
	// after the autoscaler would scale it to zero (AnnPodRetention).
	PodRetention time.Duration
}

// Build returns the ksvc: defined, Ready with no pod (initial-scale 0, which
// needs allow-zero-initial-scale), and labelled so that its revision's pods
// carry coldbench's labels too.
func (s ServiceSpec) Build() *unstructured.Unstructured {
	labels := map[string]any{
		bench.LabelManagedBy:  bench.LabelManagedByVal,
		bench.LabelExperiment: s.ExperimentID,
		bench.LabelRuntime:    s.Runtime.Name,
	}
	if s.Cell != "" {
		labels[LabelCell] = s.Cell
	}
	ann := map[string]any{AnnInitialScale: "0", AnnMinScale: "0"}
	if s.Window != "" {
		ann[AnnWindow] = s.Window
	}
	if s.Target != "" {
		ann[AnnTarget] = s.Target
	}
	for k, v := range s.Runtime.Annotations {
		ann[k] = v
	}
	if s.PodRetention > 0 { // after the runtime's: a density run's kept pods depend on it
		ann[AnnPodRetention] = s.PodRetention.String()
	}
	port := s.Port
	if port == 0 {
		port = bench.DefaultPort
	}
	podSpec := map[string]any{
		"containers": []any{map[string]any{
			"image": s.Runtime.Image,
			"ports": []any{map[string]any{"containerPort": int64(port)}},
		}},
	}
	if s.Runtime.Handler != "" {
		podSpec["runtimeClassName"] = s.Runtime.Handler
	}
	templateLabels := map[string]any{}
	for k, v := range labels {
		templateLabels[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1",
		"kind":       "Service",
		"metadata": map[string]any{
			"name":      s.Name,
			"namespace": s.Namespace,
			"labels":    labels,
		},
		"spec": map[string]any{
			"template": map[string]any{
				"metadata": map[string]any{"labels": templateLabels, "annotations": ann},
				"spec":     podSpec,
			},
		},
	}}
}

// serviceStatus is what coldbench reads from a ksvc's status.
type serviceStatus struct {
	Ready    bool
	Failed   bool   // Ready=False (not Unknown)
	Reason   string // of the Ready condition when not ready
	Message  string
	URL      string
	Revision string // latestCreatedRevisionName
}

func readServiceStatus(u *unstructured.Unstructured) serviceStatus {
	var st serviceStatus
	st.URL, _, _ = unstructured.NestedString(u.Object, "status", "url")
	st.Revision, _, _ = unstructured.NestedString(u.Object, "status", "latestCreatedRevisionName")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	gen, _, _ := unstructured.NestedInt64(u.Object, "metadata", "generation")
	obsGen, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	var failed []string // other conditions that are False
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		status, _ := m["status"].(string)
		if m["type"] != "Ready" {
			if status == "False" {
				reason, _ := m["reason"].(string)
				msg, _ := m["message"].(string)
				failed = append(failed, fmt.Sprintf("%s: %s: %s", m["type"], reason, msg))
			}
			continue
		}
		st.Reason, _ = m["reason"].(string)
		st.Message, _ = m["message"].(string)
		st.Ready = status == "True" && obsGen == gen
		st.Failed = status == "False" && obsGen == gen
	}
	// Ready carries one sub-condition's reason, not always the telling one
	// (the route's "RevisionMissing" rather than the configuration's "Unable
	// to fetch image"): a failure names them all.
	if st.Failed && len(failed) > 0 {
		st.Message += " (" + strings.Join(failed, "; ") + ")"
	}
	return st
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
