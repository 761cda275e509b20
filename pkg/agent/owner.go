package agent

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	"google.golang.org/grpc/metadata"

	"github.com/coldbench/coldbench/pkg/rtevents"
)

// The labels containerd's CRI plugin puts on the containers it stores
// (seen on containerd 2.4.2 with a kubelet 1.34: a sandbox's pause
// container carries the pod's labels, kind sandbox and the pod's uid, name
// and namespace; a container kind container, the pod's uid, name and
// namespace and its own name; both also their image's config labels).
const (
	labelKind          = "io.cri-containerd.kind"
	kindSandbox        = "sandbox"
	kindContainer      = "container"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelContainerName = "io.kubernetes.container.name"
)

// owner is what a container is, as far as the agent cares.
type owner struct {
	// ours: the container is one of a coldbench pod's.
	ours bool
	// sandbox: the pod's sandbox (its pause container, whose ID is the
	// sandbox's) rather than one of its containers.
	sandbox                       bool
	podUID, podNamespace, podName string
	// container is the container's name in its pod ("" for a sandbox).
	container string
	// sandboxID is a container's sandbox, from containerd's record (""
	// when containerd does not record it); a sandbox's own ID.
	sandboxID string
}

// owners remembers each container's owner, so that its second event (its
// task's start after its creation) and its pod's other containers cost no
// second lookup; bounded like the events.
type owners struct {
	mu  sync.Mutex
	m   *bounded[string, owner]
	now func() time.Time
}

func newOwners(max int, maxAge time.Duration, now func() time.Time) *owners {
	return &owners{m: newBounded[string, owner](max, maxAge), now: now}
}

func (o *owners) get(id string) (owner, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m.get(id, o.now())
}

func (o *owners) put(id string, ow owner) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m.put(id, ow, o.now())
}

// owner is container id's owner: remembered, or read from containerd.
// Errors (containerd unreachable, the container already deleted) are not
// remembered: the container's next event tries again.
func (a *Agent) owner(ctx context.Context, id string) (owner, error) {
	if o, ok := a.owners.get(id); ok {
		return o, nil
	}
	o, err := a.lookup(ctx, id)
	if err != nil {
		return owner{}, err
	}
	a.owners.put(id, o)
	return o, nil
}

// lookup reads container id's labels from containerd and decides.
func (a *Agent) lookup(ctx context.Context, id string) (owner, error) {
	c, err := a.getContainer(ctx, id)
	if err != nil {
		return owner{}, err
	}
	l := c.GetLabels()
	o := owner{podUID: l[labelPodUID], podNamespace: l[labelPodNamespace], podName: l[labelPodName]}
	switch l[labelKind] {
	case kindSandbox:
		o.sandbox, o.sandboxID = true, id
		// The uid too: a container that is no kubelet's pod (an image's
		// labels alone could say managed-by) has nothing to serve by.
		o.ours = o.podUID != "" && l[LabelManagedBy] == LabelManagedByVal
	case kindContainer:
		o.container, o.sandboxID = l[labelContainerName], c.GetSandbox()
		if o.podUID != "" && o.container != "" {
			o.ours, err = a.podIsOurs(ctx, o.podUID, o.sandboxID)
		}
	}
	return o, err
}

// podIsOurs says whether pod uid (sandbox sandboxID, "" if unknown) is
// one of coldbench's: its labels are on its sandbox only.
func (a *Agent) podIsOurs(ctx context.Context, uid, sandboxID string) (bool, error) {
	if a.pods.known(uid) {
		return true, nil
	}
	if sandboxID != "" {
		s, err := a.owner(ctx, sandboxID)
		if err != nil {
			return false, fmt.Errorf("its sandbox: %w", err)
		}
		return s.ours && s.podUID == uid, nil
	}
	// containerd before 2.0 may not record a container's sandbox: the
	// pod's sandboxes are found by its uid. Any of them (a pod whose
	// sandbox was recreated has several) carries the pod's labels.
	sandboxes, err := a.listSandboxes(ctx, uid)
	if err != nil {
		return false, err
	}
	for _, c := range sandboxes {
		if c.GetLabels()[LabelManagedBy] == LabelManagedByVal {
			return true, nil
		}
	}
	return false, nil
}

// nsContext is ctx for a call in the agent's containerd namespace, bounded
// by lookupTimeout.
func (a *Agent) nsContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	return metadata.AppendToOutgoingContext(ctx, "containerd-namespace", a.cfg.Namespace), cancel
}

func (a *Agent) getContainer(ctx context.Context, id string) (*containersapi.Container, error) {
	ctx, cancel := a.nsContext(ctx)
	defer cancel()
	r, err := a.containers.Get(ctx, &containersapi.GetContainerRequest{ID: id})
	if err != nil {
		return nil, fmt.Errorf("reading container %s from containerd: %w", rtevents.ShortID(id), err)
	}
	return r.GetContainer(), nil
}

// listSandboxes lists pod uid's sandboxes (containerd's filter syntax:
// label keys with dots and the values are quoted).
func (a *Agent) listSandboxes(ctx context.Context, uid string) ([]*containersapi.Container, error) {
	ctx, cancel := a.nsContext(ctx)
	defer cancel()
	filter := "labels." + strconv.Quote(labelPodUID) + "==" + strconv.Quote(uid) +
		",labels." + strconv.Quote(labelKind) + "==" + strconv.Quote(kindSandbox)
	r, err := a.containers.List(ctx, &containersapi.ListContainersRequest{Filters: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("listing the sandboxes of pod %s from containerd: %w", uid, err)
	}
	return r.GetContainers(), nil
}
