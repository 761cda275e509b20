package rtevents

// Moment is one of a CRI pod's lifecycle moments that containerd's events
// mark: its sandbox created and started, one of its containers created and
// started.
type Moment int

// A pod's moments, in causal order.
const (
	SandboxCreated Moment = iota
	SandboxStarted
	ContainerCreated
	ContainerStarted
)

// Moments are all of a pod's moments, in causal order.
var Moments = []Moment{SandboxCreated, SandboxStarted, ContainerCreated, ContainerStarted}

func (m Moment) String() string {
	return [...]string{"sandbox created", "sandbox started", "container created", "container started"}[m]
}

// Key is the event that marks m for the pod sandboxID and its container
// containerID, as containerd 2.x's CRI plugin publishes them with the
// podsandbox controller (the default sandboxer), where a sandbox is a pause
// container with the sandbox's ID:
//
//   - created: ContainerCreate (/containers/create) of the sandbox's pause
//     container (stored after the pod's network is set up) or of the
//     container (CRI's CreateContainer). Not TaskCreate (/tasks/create,
//     the runtime's create): gVisor's runsc shim never publishes it, and
//     one event for every runtime keeps the runtimes comparable.
//   - started: TaskStart (/tasks/start) of the pause container or the
//     container: the runtime started its process (published by the shim
//     of every runtime, runc, crun and runsc alike).
//
// The CRI plugin publishes no /sandboxes/* events (it calls its sandbox
// controllers directly), so SandboxCreate and SandboxStart mark nothing
// here.
func (m Moment) Key(sandboxID, containerID string) Key {
	switch m {
	case SandboxCreated:
		return Key{Kind: ContainerCreate, ID: sandboxID}
	case SandboxStarted:
		return Key{Kind: TaskStart, ID: sandboxID}
	case ContainerCreated:
		return Key{Kind: ContainerCreate, ID: containerID}
	default:
		return Key{Kind: TaskStart, ID: containerID}
	}
}

// PodKinds are the kinds a subscriber needs for a pod's Moments.
var PodKinds = []Kind{ContainerCreate, TaskStart}

// PodKeys are the keys of a pod's Moments, in their order.
func PodKeys(sandboxID, containerID string) []Key {
	keys := make([]Key, len(Moments))
	for i, m := range Moments {
		keys[i] = m.Key(sandboxID, containerID)
	}
	return keys
}
