// Package results defines coldbench's on-disk record format (JSON Lines) and
// its writer and reader. It is deliberately light: no Kubernetes or containerd
// imports, so stats and report can depend on it.
package results

import (
	"strings"
	"time"
)

// SchemaVersion is written into every header; readers refuse newer majors.
const SchemaVersion = "coldbench.dev/records/v1"

// Record types, carried in the "type" field of every line.
const (
	TypeHeader  = "header"
	TypeAttempt = "attempt"
)

// Error classes. They are stable strings: reports group failures by them.
const (
	ErrTimeout      = "timeout"       // no 2xx before the per-request timeout
	ErrHTTPStatus   = "http_status"   // a reply, but not 2xx: from the function or from the platform in front of it (the error keeps the body)
	ErrConnection   = "connection"    // last probe failed to connect/read
	ErrSandbox      = "sandbox"       // RunPodSandbox failed
	ErrContainer    = "container"     // CreateContainer/StartContainer failed
	ErrImage        = "image"         // image missing or unusable
	ErrRuntime      = "runtime"       // runtime handler / RuntimeClass missing
	ErrCanceled     = "canceled"      // the run was interrupted during the attempt
	ErrPlatform     = "platform"      // any other platform-side failure
	ErrNotScheduled = "not_scheduled" // (knative) the pod never found room on a node: never scheduled, or refused by its node's kubelet at admission (OutOfcpu, …)
	ErrCrashed      = "crashed"       // the function's container exited or crash-looped
	ErrNotCold      = "not_cold"      // a pod already existed: the sample was not a cold start
	ErrIngress      = "ingress"       // the ingress never routed the service: its route probe failed (a refused or reset measured request is ErrConnection)
)

// Header is the first record of a results file: what was run, where, with what.
type Header struct {
	Type         string `json:"type"`
	Schema       string `json:"schema"`
	ExperimentID string `json:"experiment_id"`
	// Session counts resumptions: 0 for the first run, k for the k-th
	// `run --resume` appending to the same file.
	Session    int       `json:"session,omitempty"`
	Created    time.Time `json:"created"`
	Experiment any       `json:"experiment"` // the resolved experiment, as run
	Testbed    Testbed   `json:"testbed"`
	Tool       ToolInfo  `json:"tool"`
}

// ToolInfo identifies the coldbench build that produced the records.
type ToolInfo struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
}

// Testbed is the machine the measurements ran on. Empty strings mean "could
// not be determined" (the reason is in Notes), never a guess.
type Testbed struct {
	Hostname        string            `json:"hostname"`
	CPUModel        string            `json:"cpu_model"`
	Cores           int               `json:"cores"`
	Kernel          string            `json:"kernel"`
	CgroupMode      string            `json:"cgroup_mode"` // v1, hybrid, v2
	CPUGovernor     string            `json:"cpu_governor"`
	CPUBoost        string            `json:"cpu_boost"`
	MemoryBytes     uint64            `json:"memory_bytes"`
	PlatformVersion map[string]string `json:"platform_versions,omitempty"` // e.g. containerd, cri api
	RuntimeVersions map[string]string `json:"runtime_versions,omitempty"`  // runtime name -> version string
	// Timestamps: TimestampsKernel when the kernel gives TCP sockets
	// receive and transmit stamps (SO_TIMESTAMPING) on this host, so the
	// attempts can use them (each attempt's Timestamps says whether it
	// did); TimestampsUser when not (a note says why). Empty in headers
	// written before kernel stamps.
	Timestamps string   `json:"timestamps,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// Phase is a named moment of one cold start, as an offset from the attempt's
// start (monotonic clock, nanoseconds). Phases are kept in the order observed.
type Phase struct {
	Name     string `json:"name"`
	OffsetNS int64  `json:"offset_ns"`
}

// Well-known phase names. Platforms add their own where they have more.
const (
	PhaseSandboxReady     = "sandbox_ready"
	PhaseContainerCreated = "container_created"
	PhaseContainerStarted = "container_started"
	PhaseAddressKnown     = "address_known"
	PhaseRequestSent      = "request_sent"
	PhaseFunctionStart    = "function_start" // from the function's own header (wall clock)
	PhaseFirstByte        = "first_byte"
	// The user-space stamps of a request whose start and first byte came
	// from the kernel (Timestamps = TimestampsKernel): when coldbench's
	// goroutine was about to write the request (before the start, so
	// negative) and when it read the reply's first byte. Their distance to
	// start and first_byte is the harness's own delay.
	PhaseUserStart = "user_start"
	// PhaseConnected: the request's connection had to be dialled after its
	// start (pkg/release says when); the offset at which it was up.
	PhaseConnected     = "connected"
	PhaseUserFirstByte = "user_first_byte"
)

// Knative's milestones before the pod has a sandbox, as coldbench's watch
// of the API server first sees them (pkg/platform/knative stamps them).
// Named here because pkg/stats' runtime view keeps them and orders them
// causally, and stats cannot import the platform.
const (
	PhaseDeploymentScaled = "deployment_scaled"
	PhasePodCreated       = "pod_created"
	PhasePodScheduled     = "pod_scheduled"
)

// Runtime-observed phases: when containerd published the event that marks
// each moment of the pod (pkg/rtevents says which event marks which), read
// from the events' envelope timestamps rather than when coldbench's CRI
// calls returned (node) or the API server reported the pod (knative, from
// the node agents, pkg/agent). Those timestamps are wall clock, turned into
// the attempt's offsets as function_start is (event time − Start without
// its monotonic reading; on knative first set on coldbench's clock, see
// RuntimeClock), so a wall-clock step during an attempt shows in them, and
// they are exact only to the clocks' agreement.
const (
	PhaseRTSandboxCreated       = "rt_sandbox_created"
	PhaseRTSandboxStarted       = "rt_sandbox_started"
	PhaseRTUserContainerCreated = "rt_user_container_created"
	PhaseRTUserContainerStarted = "rt_user_container_started"
	// Knative's queue-proxy, the pod's second container (knative only: the
	// node platform's pods have the function alone).
	PhaseRTQueueProxyCreated = "rt_queue_proxy_created"
	PhaseRTQueueProxyStarted = "rt_queue_proxy_started"
)

// RuntimePhasePrefix begins the name of every runtime-observed phase.
const RuntimePhasePrefix = "rt_"

// HarnessPhase reports whether the named phase is one of the harness's own
// user-space stamps kept beside the kernel's (user_start, user_first_byte):
// the phase figures and tables leave them out.
func HarnessPhase(name string) bool {
	return name == PhaseUserStart || name == PhaseUserFirstByte
}

// MayPrecedeStart reports whether the named phase may have a negative
// offset in a consistent record: a wall-clock phase (WallClockPhase), or a
// moment of the harness before its request left when the start is the
// kernel's transmit stamp (user_start, and connected for a request that
// had to dial after its user-space start).
func MayPrecedeStart(name string) bool {
	return WallClockPhase(name) || name == PhaseUserStart || name == PhaseConnected
}

// WallClockPhase reports whether the named phase is read from a wall clock
// (function_start, the rt_ phases) rather than the attempt's monotonic one:
// such an offset can be negative without the record being inconsistent.
func WallClockPhase(name string) bool {
	return name == PhaseFunctionStart || strings.HasPrefix(name, RuntimePhasePrefix)
}

// Values of Attempt.RuntimePhases.
const (
	// RuntimePhasesFromEvents (node): the attempt has all four rt_ phases,
	// from coldbench's own subscription to containerd's events.
	RuntimePhasesFromEvents = "containerd events"
	// RuntimePhasesFromAgent (knative): the attempt has all six rt_
	// phases, from its node's agent (pkg/agent).
	RuntimePhasesFromAgent = "node agent"
	// RuntimePhasesMissing begins the reason an attempt has no rt_ phases
	// (node: a successful attempt has all four or none).
	RuntimePhasesMissing = "missing: "
	// RuntimePhasesPartial begins the note of an attempt that has some of
	// the rt_ phases, with why not the others (node: a failed attempt, with
	// those containerd published before it failed).
	RuntimePhasesPartial = "partial: "
)

// Cold is the evidence that an attempt hit a freshly created instance.
type Cold struct {
	SandboxID   string `json:"sandbox_id,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	Pod         string `json:"pod,omitempty"`
	Revision    string `json:"revision,omitempty"`
	Address     string `json:"address,omitempty"`
	// PriorPods (knative) counts the revision's pods seen before the
	// request (all gone when it started, unless the record is not_cold):
	// 0 is a new revision's first activation (fresh protocol), ≥ 1 a
	// re-activation after scale to zero (classic and pool).
	PriorPods int `json:"prior_pods,omitempty"`
}

// Attempt is one measured cold start: one instance, one iteration.
type Attempt struct {
	Type         string `json:"type"`
	ExperimentID string `json:"experiment_id"`
	Platform     string `json:"platform"`
	Runtime      string `json:"runtime"`
	Handler      string `json:"handler"` // CRI handler or RuntimeClass ("" = default)
	Scale        int    `json:"scale"`   // N instances cold-started at once
	Iteration    int    `json:"iteration"`
	Instance     int    `json:"instance"`
	Warmup       bool   `json:"warmup,omitempty"`

	Start time.Time `json:"start"` // wall clock when the attempt's timer started
	// Latencies are monotonic-clock durations from Start; 0 with OK=false
	// means "not reached".
	TTFBNS  int64 `json:"ttfb_ns"`
	TotalNS int64 `json:"total_ns"`

	OK         bool   `json:"ok"`
	HTTPStatus int    `json:"http_status,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
	Error      string `json:"error,omitempty"`

	Probes  int        `json:"probes"` // GETs sent until the first reply
	Phases  []Phase    `json:"phases,omitempty"`
	Cold    Cold       `json:"cold"`
	LoadAvg [3]float64 `json:"loadavg"`
	// ReleaseSkewNS: spread of start times across the N instances of this
	// step (same value on each of them).
	// With kernel stamps (Timestamps = TimestampsKernel) it is the spread
	// of the requests' transmit stamps, what left for the wire, and
	// ReleaseSkewUserNS the spread of their user-space starts (when the
	// goroutines were about to write); without, both are the latter.
	ReleaseSkewNS     int64 `json:"release_skew_ns,omitempty"`
	ReleaseSkewUserNS int64 `json:"release_skew_user_ns,omitempty"`
	// Timestamps says whose clock the attempt's start and first byte are:
	// TimestampsKernel, or TimestampsUser (TimestampsNote says why the
	// kernel's were not used). A cell's attempts always agree. Empty in
	// records written before kernel stamps: user-space stamps.
	Timestamps     string `json:"timestamps,omitempty"`
	TimestampsNote string `json:"timestamps_note,omitempty"`
	// Step holds figures of the whole step (cell) the attempt belongs to,
	// the same on each of its attempts (nil in records written before
	// they existed).
	Step *Step `json:"step,omitempty"`
	// Unschedulable (knative) says the instance's pod had to wait for room
	// on a node, even if it answered in the end (nil: it never waited, or
	// the watches did not show it waiting).
	Unschedulable *Unschedulable `json:"unschedulable,omitempty"`
	// RuntimePhases says where the attempt's rt_ phases come from, or why
	// it has none or not all: RuntimePhasesFromEvents (node),
	// RuntimePhasesFromAgent (knative), or a RuntimePhasesMissing or
	// RuntimePhasesPartial reason ("missing: containerd event stream lost:
	// …"). Empty where a platform records no runtime phases, and in records
	// written before they existed.
	RuntimePhases string `json:"runtime_phases,omitempty"`
	// RuntimeClock (knative) is how the node's clock, whose stamps the rt_
	// phases are, was set against coldbench's (nil: no node agent answered
	// for the attempt's pod, or a record written before it existed).
	RuntimeClock *RuntimeClock `json:"runtime_clock,omitempty"`
	// Footprint is what the instance cost the node (nil: footprint was not
	// measured for the attempt, or a record written before it existed).
	Footprint *Footprint `json:"footprint,omitempty"`
	// Density (a density run: coldbench density) says what the instance
	// started among: the instances of its runtime kept running from the
	// run's earlier steps (nil: an ordinary cell, where every step starts
	// on an empty node).
	Density *Density `json:"density,omitempty"`
}

// Values of Attempt.Timestamps.
const (
	// TimestampsKernel: the first byte is the kernel's receive stamp of
	// the reply's first segment, and (knative) the start the kernel's
	// transmit stamp of the request's last byte; the node backend's start
	// is its first CRI call, a user-space stamp by nature.
	TimestampsKernel = "kernel"
	// TimestampsUser: both are when coldbench's goroutines wrote and read.
	TimestampsUser = "user"
)

// Density is one step of a density run as each of its attempts records it.
// Its step is the cell (iteration = step number); the instances that
// answered are kept running for the next steps, the others are removed.
type Density struct {
	// Alive is how many instances of the runtime were running (kept from
	// earlier steps) when the step's instances were started: the density
	// each of them met.
	Alive int `json:"alive"`
	// Lost counts the kept instances (earlier steps' or this one's) found
	// no longer running after the step (OOM-killed, crashed): they are not
	// part of the density the next step meets.
	Lost int `json:"lost,omitempty"`
	// MemAvailableBytes is the node's MemAvailable after the step (its
	// failed instances removed), where the platform reads it (node); nil
	// where it does not.
	MemAvailableBytes *int64 `json:"mem_available_bytes,omitempty"`
	// Stop, on the step that ended the runtime's run, says which stop
	// conditions held after it ("failed 12/50 > 10%", "cap of 1000
	// instances reached", …); empty on the other steps. A run cut short
	// (interrupt, deadline) records no stop.
	Stop []string `json:"stop,omitempty"`
}

// Footprint is what one instance cost its node, read outside the timed
// path: CPU up to its first byte, read just after it, and memory and idle
// CPU after the cell's instances were left idle for a settle period. A
// figure is nil where it was not measured (Missing says why): readers show
// "not measured", never 0.
type Footprint struct {
	// Source says where the figures come from (FootprintFromNode, …).
	Source string `json:"source"`
	// SettleNS is how long the instance had been idle, from the cell's
	// last reply, when memory and idle CPU were read.
	SettleNS int64 `json:"settle_ns"`
	// PSSBytes sums the proportional set size of the instance's processes:
	// its shim and the shim's descendants (pause, the function, runtime
	// helpers such as runsc's sentry and gofer). A page shared with other
	// instances counts for its share.
	PSSBytes *int64 `json:"pss_bytes,omitempty"`
	// PSSAnonShmemBytes is the part of PSSBytes no file backs (Pss_Anon +
	// Pss_Shmem): the part a drop of the node's MemAvailable shows, which
	// counts the page cache (the binaries' text) as available.
	PSSAnonShmemBytes *int64 `json:"pss_anon_shmem_bytes,omitempty"`
	// Processes are the processes PSSBytes sums, by name.
	Processes []FootprintProcess `json:"processes,omitempty"`
	// CgroupUsageBytes and CgroupWorkingSetBytes are the instance's pod
	// cgroup's memory (v1 memory.usage_in_bytes, v2 memory.current; the
	// working set without inactive file pages, as the kubelet reports
	// it). The shim is outside that cgroup: its memory is not in them.
	CgroupUsageBytes      *int64 `json:"cgroup_usage_bytes,omitempty"`
	CgroupWorkingSetBytes *int64 `json:"cgroup_working_set_bytes,omitempty"`
	// CPUToFirstByteNS is the CPU time the pod cgroup and the shim (with
	// the children it reaped: the runtime's create and start commands)
	// used from their creation to just after the first byte.
	CPUToFirstByteNS *int64 `json:"cpu_to_first_byte_ns,omitempty"`
	// CPUToFirstByteErrorNS bounds CPUToFirstByteNS's error where it was
	// not read just after the first byte but between samples (Knative: the
	// node agent's, before and after it): the CPU at the first byte was
	// within ± this of the figure. Nil: read just after the first byte.
	CPUToFirstByteErrorNS *int64 `json:"cpu_to_first_byte_error_ns,omitempty"`
	// IdleCPUNS is the CPU time the same used over IdleWindowNS while the
	// instance was idle (between the two readings of the settle period).
	IdleCPUNS    *int64 `json:"idle_cpu_ns,omitempty"`
	IdleWindowNS int64  `json:"idle_window_ns,omitempty"`
	// NodeMemAvailableDropBytes is the drop of the node's MemAvailable
	// from before the cell's instances were created to after the settle,
	// and NodeInstances the instances running then: the per-instance
	// cross-check is the one over the other. The same on every attempt of
	// the cell (a step-level figure).
	NodeMemAvailableDropBytes *int64 `json:"node_mem_available_drop_bytes,omitempty"`
	NodeInstances             int    `json:"node_instances,omitempty"`
	// NodeInstancesAnswered counts those of NodeInstances that answered:
	// the others may have been still starting, at a cost unlike an idle
	// instance's.
	NodeInstancesAnswered int `json:"node_instances_answered,omitempty"`
	// Sources names the file or API each figure came from.
	Sources map[string]string `json:"sources,omitempty"`
	// Missing says why figures are nil ("pss: …; cgroup: …").
	Missing string `json:"missing,omitempty"`
	// Kubelet (knative) is the pod as the kubelet's Summary API gave it
	// at the same reads, beside the node agent's figures above; its
	// Missing says what the kubelet did not give (nil: another platform,
	// or a record written before it existed).
	Kubelet *KubeletFootprint `json:"kubelet,omitempty"`
}

// KubeletFootprint is a pod's cgroup as the kubelet's Summary API gave it
// (GET /api/v1/nodes/NODE/proxy/stats/summary): cAdvisor's figures, each
// as it last read them (every 10 s or so), so a figure may predate the
// settle; its time says when. The pod cgroup only: no shim, no PSS.
type KubeletFootprint struct {
	WorkingSetBytes *int64 `json:"working_set_bytes,omitempty"`
	UsageBytes      *int64 `json:"usage_bytes,omitempty"`
	// MemoryUnixNS is when the kubelet read the memory (node clock, to
	// the second).
	MemoryUnixNS int64 `json:"memory_unix_ns,omitempty"`
	// CPUNS is the pod cgroup's CPU since it was made, as read at
	// CPUUnixNS (the second read of the settle).
	CPUNS     *int64 `json:"cpu_ns,omitempty"`
	CPUUnixNS int64  `json:"cpu_unix_ns,omitempty"`
	// IdleCPUNS is what CPUNS grew by between the kubelet's readings seen
	// at the settle's two reads, over IdleWindowNS (nil: the kubelet had
	// not read it again in between).
	IdleCPUNS    *int64 `json:"idle_cpu_ns,omitempty"`
	IdleWindowNS int64  `json:"idle_window_ns,omitempty"`
	// Missing says why figures are nil.
	Missing string `json:"missing,omitempty"`
}

// FootprintProcess is one of an instance's processes, as summed.
type FootprintProcess struct {
	Comm     string `json:"comm"`
	PID      int    `json:"pid"`
	PSSBytes int64  `json:"pss_bytes"`
}

// Values of Footprint.Source.
const (
	// FootprintFromNode: read by coldbench itself from the node's /proc
	// and cgroup files (the node backend runs on the node).
	FootprintFromNode = "node /proc and cgroups"
	// FootprintFromAgent: read by coldbench's node agent (knative) from
	// the node's /proc and cgroup files, as the node backend reads them.
	FootprintFromAgent = "node agent: /proc and cgroups"
	// FootprintFromKubelet: no node agent answered (knative); the figures
	// are the kubelet Summary API's (Footprint.Kubelet).
	FootprintFromKubelet = "kubelet Summary API"
)

// RuntimeClock is the offset between a node's wall clock and coldbench's,
// estimated from one request to the node's agent (Cristian's method): with
// coldbench's clock read at the request's send (s) and reply (r) and the
// agent's at its answer (n), the offset is n − (s + r)/2, within ±(r − s)/2.
// The agent's timestamps minus OffsetNS are on coldbench's clock, from
// which the rt_ phases' offsets are taken.
type RuntimeClock struct {
	// Node is the node whose clock it is.
	Node string `json:"node"`
	// OffsetNS is the node's clock minus coldbench's.
	OffsetNS int64 `json:"offset_ns"`
	// ErrorNS bounds the estimate's error (± half the round trip of the
	// request it comes from, the smallest of a few): every rt_ phase is
	// uncertain by as much, on top of the stamps' own.
	ErrorNS int64 `json:"error_ns"`
}

// Step is what one step (a cell: N instances at once) cost around its
// timed part: its untimed set-up and teardown, and what the harness itself
// used while it ran (it shares the node with the instances it measures).
type Step struct {
	// WallNS runs from the session's start of the step to its end,
	// set-up and teardown included.
	WallNS int64 `json:"wall_ns"`
	// SetupNS is the untimed work before the release (knative: creating
	// the services and waiting until they are Ready and routed, and for
	// reused ones until they have scaled to zero); 0 where there is none.
	SetupNS int64 `json:"setup_ns,omitempty"`
	// TeardownNS is the untimed work after the replies, until the
	// instances are gone (knative: services deleted and their pods gone;
	// node: sandboxes stopped and removed).
	TeardownNS int64 `json:"teardown_ns,omitempty"`
	// HarnessCPUNS is the user + system CPU time the coldbench process used
	// over WallNS (all its threads).
	HarnessCPUNS int64 `json:"harness_cpu_ns"`
	// HarnessPeakRSSBytes is the process's peak resident set over the step
	// (its high-water mark, reset at the step's start where the OS allows;
	// else the peak since the process started: see HarnessPeakRSSScope).
	HarnessPeakRSSBytes int64 `json:"harness_peak_rss_bytes,omitempty"`
	// HarnessPeakRSSScope is "step" when the peak was reset at the step's
	// start, "process" when it is the peak since the process started.
	HarnessPeakRSSScope string `json:"harness_peak_rss_scope,omitempty"`
}

// Unschedulable is how long an instance's pod waited for a node, and why.
type Unschedulable struct {
	// Reason is the scheduler's (latest) message, e.g. "0/1 nodes are
	// available: 1 Insufficient cpu.", or, when a node's kubelet refused
	// the attempt's first pod at admission and it waited for a
	// replacement, that refusal ("pod … refused by its node: OutOfcpu: …").
	Reason string `json:"reason"`
	// WaitNS runs from the first time the pod was reported unschedulable
	// (or refused) to when it was scheduled, or to the end of the attempt
	// if it was not by then (Scheduled false). Both ends are when the
	// harness's watch showed the change (monotonic clock, like the phases),
	// not the conditions' 1 s API-server timestamps.
	WaitNS int64 `json:"wait_ns"`
	// Scheduled: the pod got a node before the attempt ended.
	Scheduled bool `json:"scheduled"`
}

// PhaseOffset returns the offset of the named phase and whether it was seen.
func (a *Attempt) PhaseOffset(name string) (time.Duration, bool) {
	for _, p := range a.Phases {
		if p.Name == name {
			return time.Duration(p.OffsetNS), true
		}
	}
	return 0, false
}
