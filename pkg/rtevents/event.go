// Package rtevents reads a container's lifecycle as containerd itself saw
// it: the events containerd publishes (containerd's events service,
// Subscribe), decoded into typed Events and kept in a bounded Window that a
// caller can wait on. containerd fans every event out to every subscriber,
// so subscribing takes nothing from anyone else (unlike CRI's
// GetContainerEvents, which coldbench never calls: there a second consumer
// steals events from the kubelet).
//
// It is a library for the node backend and for a node agent beside a
// kubelet: it imports neither client-go nor the CRI API.
package rtevents

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/types"
	"google.golang.org/protobuf/proto"
)

// Kind is what an event says happened. Each kind is one containerd topic;
// the names follow containerd's event types.
type Kind string

// The kinds rtevents decodes, with their topics and who publishes them
// (containerd 2.4; observed on coldbench's containerd with runc, crun and
// gVisor's runsc).
const (
	// SandboxCreate, /sandboxes/create: published only by containerd's
	// sandbox controller API (a client that drives sandboxes through it).
	// The CRI plugin calls its controllers directly and publishes none, for
	// either sandboxer (podsandbox or shim).
	SandboxCreate Kind = "sandbox_create"
	// SandboxStart, /sandboxes/start: as SandboxCreate.
	SandboxStart Kind = "sandbox_start"
	// ContainerCreate, /containers/create: containerd stored a container
	// (its metadata, not a process). Published by containerd itself for
	// every runtime: CRI's CreateContainer, and for a pod sandbox of the
	// podsandbox controller its pause container, whose ID is the
	// sandbox's, created after the sandbox's network is set up.
	ContainerCreate Kind = "container_create"
	// TaskCreate, /tasks/create: the runtime created the container's
	// process (runc create). Published by the shim; runc's shim (runc and
	// crun) does, gVisor's runsc shim does not publish it at all.
	TaskCreate Kind = "task_create"
	// TaskStart, /tasks/start: the runtime started the container's
	// process. Published by the shim, every runtime's.
	TaskStart Kind = "task_start"
	// TaskExit, /tasks/exit: a process of the container exited (its init
	// process when Event.ExecID is empty). Published by the shim.
	TaskExit Kind = "task_exit"
)

// Kinds are all the kinds rtevents decodes, in causal order.
var Kinds = []Kind{SandboxCreate, SandboxStart, ContainerCreate, TaskCreate, TaskStart, TaskExit}

// topics maps each kind to containerd's topic.
var topics = map[Kind]string{
	SandboxCreate:   "/sandboxes/create",
	SandboxStart:    "/sandboxes/start",
	ContainerCreate: "/containers/create",
	TaskCreate:      "/tasks/create",
	TaskStart:       "/tasks/start",
	TaskExit:        "/tasks/exit",
}

// kindOfTopic is topics inverted.
var kindOfTopic = func() map[string]Kind {
	m := make(map[string]Kind, len(topics))
	for k, t := range topics {
		m[t] = k
	}
	return m
}()

// Topic is containerd's topic of k ("" for an unknown kind).
func (k Kind) Topic() string { return topics[k] }

// Event is one decoded containerd event.
type Event struct {
	Kind Kind
	// ContainerID is the container the event is about (for a pod sandbox
	// of the podsandbox controller, its pause container: the sandbox's
	// ID); empty for sandbox events.
	ContainerID string
	// SandboxID is set by sandbox events (SandboxCreate, SandboxStart)
	// only: the others do not carry it.
	SandboxID string
	// ExecID is a TaskExit's process: empty for the container's init
	// process, else the exec's ID.
	ExecID string
	// PID is the process's (TaskCreate, TaskStart, TaskExit); 0 otherwise.
	PID uint32
	// ExitStatus is a TaskExit's.
	ExitStatus uint32
	// Time is the envelope's timestamp: wall clock, stamped by whoever
	// published the event: containerd for ContainerCreate (before the call
	// that stored the container returns), the shim for the task events
	// (when its event-forwarding goroutine forwards them to containerd:
	// after the runtime call returned and the shim's earlier events were
	// forwarded, asynchronously to its reply, so possibly after the CRI
	// call that caused the event returned).
	Time      time.Time
	Topic     string
	Namespace string
}

// ID is what the event is about: the sandbox for sandbox events, else the
// container.
func (e Event) ID() string {
	if e.SandboxID != "" && e.ContainerID == "" {
		return e.SandboxID
	}
	return e.ContainerID
}

// Key is the event of one kind about one ID.
func (e Event) Key() Key { return Key{Kind: e.Kind, ID: e.ID()} }

// Key names an event a caller waits for: its kind and what it is about
// (Event.ID).
type Key struct {
	Kind Kind
	ID   string
}

func (k Key) String() string { return string(k.Kind) + " " + ShortID(k.ID) }

// short cuts a 64-hex-digit containerd ID to 12, as crictl shows them.
// ShortID is a container ID as logs and messages print it: its first 12
// characters, like ctr and crictl.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Filters are containerd's subscription filters for the kinds in namespace
// ("": every namespace); no kinds means all of Kinds. containerd filters
// the events before sending them: one filter per topic (filters are ORed,
// the selectors of one filter ANDed). Values are quoted because '/' opens a
// quoted value in containerd's filter syntax.
func Filters(namespace string, kinds ...Kind) []string {
	if len(kinds) == 0 {
		kinds = Kinds
	}
	var out []string
	for _, k := range kinds {
		f := "topic==" + strconv.Quote(k.Topic())
		if namespace != "" {
			f = "namespace==" + strconv.Quote(namespace) + "," + f
		}
		out = append(out, f)
	}
	return out
}

// Decode decodes env. ok is false for a topic rtevents does not decode; an
// error means a topic it decodes came with a payload it cannot read (a
// different type, a bad encoding, no timestamp).
func Decode(env *types.Envelope) (ev Event, ok bool, err error) {
	kind, ok := kindOfTopic[env.GetTopic()]
	if !ok {
		return Event{}, false, nil
	}
	if env.GetTimestamp() == nil {
		return Event{}, true, fmt.Errorf("event %s has no timestamp", env.GetTopic())
	}
	ev = Event{Kind: kind, Time: env.GetTimestamp().AsTime(), Topic: env.GetTopic(), Namespace: env.GetNamespace()}
	msg := newPayload[kind]()
	payload := env.GetEvent()
	if payload == nil {
		return Event{}, true, fmt.Errorf("event %s has no payload", env.GetTopic())
	}
	// The type URL is checked against the topic's type: containerd
	// marshals events with typeurl, whose URL for a protobuf message is its
	// full name ("containerd.events.TaskStart"), which MessageIs accepts.
	if !payload.MessageIs(msg) {
		return Event{}, true, fmt.Errorf("event %s carries %q, want %s", env.GetTopic(), payload.GetTypeUrl(), msg.ProtoReflect().Descriptor().FullName())
	}
	if err := proto.Unmarshal(payload.GetValue(), msg); err != nil {
		return Event{}, true, fmt.Errorf("decoding event %s: %w", env.GetTopic(), err)
	}
	fill(&ev, msg)
	if ev.ID() == "" {
		return Event{}, true, errors.New("event " + env.GetTopic() + " names no container or sandbox")
	}
	return ev, true, nil
}

// newPayload makes the payload type of each kind's topic.
var newPayload = map[Kind]func() proto.Message{
	SandboxCreate:   func() proto.Message { return new(eventtypes.SandboxCreate) },
	SandboxStart:    func() proto.Message { return new(eventtypes.SandboxStart) },
	ContainerCreate: func() proto.Message { return new(eventtypes.ContainerCreate) },
	TaskCreate:      func() proto.Message { return new(eventtypes.TaskCreate) },
	TaskStart:       func() proto.Message { return new(eventtypes.TaskStart) },
	TaskExit:        func() proto.Message { return new(eventtypes.TaskExit) },
}

// fill copies msg's fields into ev.
func fill(ev *Event, msg proto.Message) {
	switch m := msg.(type) {
	case *eventtypes.SandboxCreate:
		ev.SandboxID = m.GetSandboxID()
	case *eventtypes.SandboxStart:
		ev.SandboxID = m.GetSandboxID()
	case *eventtypes.ContainerCreate:
		ev.ContainerID = m.GetID()
	case *eventtypes.TaskCreate:
		ev.ContainerID, ev.PID = m.GetContainerID(), m.GetPid()
	case *eventtypes.TaskStart:
		ev.ContainerID, ev.PID = m.GetContainerID(), m.GetPid()
	case *eventtypes.TaskExit:
		ev.ContainerID, ev.PID, ev.ExitStatus = m.GetContainerID(), m.GetPid(), m.GetExitStatus()
		// containerd's TaskExit.ID is the process: the container's ID for
		// its init process, the exec's otherwise.
		if id := m.GetID(); id != "" && id != m.GetContainerID() {
			ev.ExecID = id
		}
	}
}
