package agent

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// pod is what the agent knows of one of coldbench's pods: which sandboxes
// and containers it has seen events of, in the order it first saw them.
// Their events are in the Window.
type pod struct {
	uid, namespace, name string
	// sandboxes are the pod's sandbox IDs: one, unless the kubelet
	// recreated its sandbox.
	sandboxes []string
	// containers are the container IDs of each container name: one,
	// unless the container restarted.
	containers map[string][]string
	// sandboxOf is each container's sandbox, as containerd recorded it.
	sandboxOf map[string]string
}

// pods indexes coldbench's pods by uid, bounded like the events.
type pods struct {
	mu  sync.Mutex
	m   *bounded[string, *pod]
	now func() time.Time
}

func newPods(max int, maxAge time.Duration, now func() time.Time) *pods {
	return &pods{m: newBounded[string, *pod](max, maxAge), now: now}
}

// record notes that container id, owned by o (one of coldbench's), had an
// event.
func (ps *pods) record(id string, o owner) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	p, ok := ps.m.get(o.podUID, now)
	if !ok {
		p = &pod{uid: o.podUID, containers: map[string][]string{}, sandboxOf: map[string]string{}}
		ps.m.put(o.podUID, p, now)
	}
	// A sandbox's labels name the pod as well as a container's do; the
	// first that does is kept.
	if p.namespace == "" && p.name == "" {
		p.namespace, p.name = o.podNamespace, o.podName
	}
	switch {
	case o.sandbox:
		if !slices.Contains(p.sandboxes, id) {
			p.sandboxes = append(p.sandboxes, id)
		}
	case !slices.Contains(p.containers[o.container], id):
		p.containers[o.container] = append(p.containers[o.container], id)
		p.sandboxOf[id] = o.sandboxID
	}
}

// known says whether pod uid is held (so it is coldbench's).
func (ps *pods) known(uid string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	_, ok := ps.m.get(uid, ps.now())
	return ok
}

// len is how many pods are held.
func (ps *pods) len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.m.len(ps.now())
}

// snapshot copies the pods of uids (nil: all held, oldest first) and
// names the uids not held.
func (ps *pods) snapshot(uids []string) (held []pod, unknown []string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	if uids == nil {
		ps.m.each(now, func(_ string, p *pod) { held = append(held, p.clone()) })
		return held, nil
	}
	for _, uid := range uids {
		if p, ok := ps.m.get(uid, now); ok {
			held = append(held, p.clone())
		} else {
			unknown = append(unknown, uid)
		}
	}
	return held, unknown
}

// clone copies p, so that a reader can use it outside the lock.
func (p *pod) clone() pod {
	c := *p
	c.sandboxes = slices.Clone(p.sandboxes)
	c.containers = make(map[string][]string, len(p.containers))
	for name, ids := range p.containers {
		c.containers[name] = slices.Clone(ids)
	}
	c.sandboxOf = maps.Clone(p.sandboxOf)
	return c
}
