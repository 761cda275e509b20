// Package agent is coldbench's node agent (cmd/coldbench-agent): on a
// Kubernetes node, where coldbench cannot reach containerd's socket, it
// keeps the events containerd publishes about coldbench's pods and serves
// them to coldbench through the API server's pod proxy.
//
// It subscribes to containerd's events service with pkg/rtevents, which
// fans every event out to every subscriber: it takes nothing from the
// kubelet. It never calls CRI's GetContainerEvents, whose stream a second
// consumer would steal events from (a kubelet with evented PLEG relies on
// it). It only reads containerd: Subscribe, and Get/List of the containers
// service for the labels that tell coldbench's pods from the others.
//
// What it keeps: the /containers/create and /tasks/start events
// (rtevents.PodKinds) of the containers of pods labelled
// app.kubernetes.io/managed-by=coldbench, in an rtevents.Window bounded by
// count and age, and per pod its sandboxes and containers, bounded alike.
// containerd's CRI plugin stores a pod's labels (PodSandboxConfig's: the
// pod's own plus io.kubernetes.pod.{uid,name,namespace}) on the sandbox's
// pause container only; a pod's other containers carry
// io.kubernetes.pod.{uid,name,namespace}, io.kubernetes.container.name and,
// in the container record (containerd 2.x), their sandbox's ID. Both also
// carry io.cri-containerd.kind (sandbox or container) and their image's
// labels. So a sandbox is classified by its own labels, a container by its
// pod's sandbox.
//
// # Serving
//
// GET /v1/events?uid=POD_UID[&uid=…] (no uid: every pod held) answers
// EventsResponse: per pod, its sandboxes and per container name its
// containers, each with containerd's created and started timestamps (Unix
// ns, the node's wall clock: containerd's stamp for created, the shim's for
// started, as rtevents.Moment.Key maps them); the agent's State
// (subscription alive or lost and why, the window's bounds and evictions);
// and NodeTimeUnixNS, the agent's wall clock as it answers.
//
// GET /v1/footprint reads what coldbench's pods have cost the node so far
// (footprint.go); GET /v1/cpu samples the CPU of the pods created while
// coldbench has armed it and answers the samples around a moment (cpu.go).
//
// GET /healthz is 200 while the subscription is alive, else 503 saying why.
//
// # Clock offset
//
// The timestamps are the node's wall clock; coldbench times with its own.
// To relate them coldbench reads its wall clock just before a request (s)
// and just after the reply (r), and takes offset = NodeTimeUnixNS − (s+r)/2
// (the node's clock minus coldbench's), whose error is at most (r−s)/2 if
// the clocks do not drift during the request (Cristian's method, NTP's
// assumption of a symmetric path). Through the API server's proxy the two
// halves of the round trip need not be equal, so coldbench should take
// several small requests (one uid) and keep the offset of the one with the
// smallest r−s, and record that bound with the offset.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	"google.golang.org/grpc"

	"github.com/coldbench/coldbench/pkg/footprint"
	"github.com/coldbench/coldbench/pkg/rtevents"
)

// The label that marks what coldbench creates, as pkg/bench's
// LabelManagedBy and LabelManagedByVal (a test checks they agree): the
// agent does not import pkg/bench, to stay a small program.
const (
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	LabelManagedByVal = "coldbench"
)

// Defaults of Config and of the command's flags.
const (
	DefaultSocket    = "/run/containerd/containerd.sock"
	DefaultNamespace = "k8s.io" // CRI's containerd namespace
	DefaultPort      = 8080
	DefaultRetryMin  = 500 * time.Millisecond
	DefaultRetryMax  = 10 * time.Second
)

// Config is what an Agent keeps and where it reads.
type Config struct {
	// Namespace is containerd's namespace of the pods (default k8s.io).
	Namespace string
	// MaxEvents and MaxAge bound the events held (defaults:
	// rtevents.DefaultMax, DefaultMaxAge); the pods and the labels looked
	// up are bounded by the same count and age.
	MaxEvents int
	MaxAge    time.Duration
	// RetryMin and RetryMax bound the back-off between subscriptions
	// after one is lost (defaults DefaultRetryMin, DefaultRetryMax).
	RetryMin, RetryMax time.Duration
	// HostRoot is where the node's /proc and /sys/fs/cgroup are found
	// (default "/": the agent runs in the host's namespaces; the
	// DaemonSet mounts them under /host).
	HostRoot string
	// CPUPeriod, CPUDuty, CPUSampleFor and CPUMaxSamples bound the
	// sampling of pods' CPU while coldbench has armed it (cpu.go;
	// defaults DefaultCPUPeriod, …).
	CPUPeriod     time.Duration
	CPUDuty       float64
	CPUSampleFor  time.Duration
	CPUMaxSamples int
	// Log gets the agent's logs (nil: none).
	Log *slog.Logger
	// now is the agent's clock (tests: a fake); nil is time.Now.
	now func() time.Time
}

func (c Config) complete() Config {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = rtevents.DefaultMax
	}
	if c.MaxAge <= 0 {
		c.MaxAge = rtevents.DefaultMaxAge
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
	if c.HostRoot == "" {
		c.HostRoot = "/"
	}
	if c.CPUPeriod <= 0 {
		c.CPUPeriod = DefaultCPUPeriod
	}
	if c.CPUDuty <= 0 || c.CPUDuty > 1 {
		c.CPUDuty = DefaultCPUDuty
	}
	if c.CPUSampleFor <= 0 {
		c.CPUSampleFor = DefaultCPUSampleFor
	}
	if c.CPUMaxSamples <= 0 {
		c.CPUMaxSamples = DefaultCPUMaxSamples
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Agent keeps coldbench's pods' events from one containerd.
type Agent struct {
	cfg        Config
	conn       grpc.ClientConnInterface
	containers containersapi.ContainersClient
	log        *slog.Logger
	now        func() time.Time

	footprint *footprintReader
	window    *rtevents.Window // coldbench's pods' events only
	pods      *pods
	owners    *owners
	state     *state
	cpu       *cpuSampler
}

// New makes an Agent reading containerd on conn; Run subscribes.
func New(conn grpc.ClientConnInterface, cfg Config) *Agent {
	cfg = cfg.complete()
	a := &Agent{
		cfg: cfg, conn: conn, containers: containersapi.NewContainersClient(conn), log: cfg.Log, now: cfg.now,
		window:    rtevents.NewWindow(cfg.MaxEvents, cfg.MaxAge, cfg.now),
		pods:      newPods(cfg.MaxEvents, cfg.MaxAge, cfg.now),
		owners:    newOwners(cfg.MaxEvents, cfg.MaxAge, cfg.now),
		state:     newState(cfg.now()),
		footprint: &footprintReader{fs: footprint.NewFS(cfg.HostRoot)},
	}
	a.cpu = newCPUSampler(cfg, a.readPodCPU)
	return a
}

// Run keeps a subscription to containerd's events until ctx ends: one
// that is lost (containerd restarted, the socket gone) is made again after
// a back-off, doubling from RetryMin to RetryMax, reset once a
// subscription has lasted RetryMax. The events held survive a loss; the
// State says since when the current subscription runs, so a reader knows
// which pods' events may have fallen in the gap. It returns once the last
// subscription has ended.
func (a *Agent) Run(ctx context.Context) {
	delay := a.cfg.RetryMin
	for {
		began := a.now()
		a.subscribeOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if a.now().Sub(began) >= a.cfg.RetryMax {
			delay = a.cfg.RetryMin
		}
		a.log.Info("subscribing to containerd's events again", "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, a.cfg.RetryMax)
	}
}

// subscribeOnce subscribes and returns when the subscription ends (lost,
// or closed because ctx ended).
func (a *Agent) subscribeOnce(ctx context.Context) {
	gen := a.state.subscribing()
	s := &sink{a: a, ctx: ctx, gen: gen}
	sub, err := rtevents.Subscribe(ctx, a.conn, a.cfg.Namespace, s, a.log, rtevents.PodKinds...)
	if err != nil {
		a.log.Warn("cannot subscribe to containerd's events", "err", err) // and s.Lose was told
		return
	}
	// Healthy from now: the stream is open. containerd acknowledges
	// nothing (it sends no reply before the first event), so this is the
	// earliest moment the agent can vouch for; containerd registers the
	// subscription a moment later still.
	a.state.subscribed(gen, a.now())
	a.log.Info("subscribed to containerd's events", "namespace", a.cfg.Namespace)
	select {
	case <-sub.Done():
	case <-ctx.Done():
		sub.Close()
	}
}

// sink is one subscription's rtevents.Sink: Add runs on the
// subscription's goroutine, one event at a time.
type sink struct {
	a   *Agent
	ctx context.Context
	gen uint64
}

func (s *sink) Add(ev rtevents.Event) { s.a.add(s.ctx, ev) }
func (s *sink) Undecodable(err error) { s.a.state.undecodable(err) }
func (s *sink) Lose(err error)        { s.a.state.lose(s.gen, s.a.now(), err) }

var _ rtevents.Sink = (*sink)(nil)

// lookupTimeout bounds one read of containerd's containers service: the
// subscription waits for it (later events queue meanwhile in containerd
// and gRPC, timestamped already, so waiting delays them but changes none).
const lookupTimeout = 5 * time.Second

// add keeps ev if its container is one of coldbench's pods'.
func (a *Agent) add(ctx context.Context, ev rtevents.Event) {
	o, err := a.owner(ctx, ev.ID())
	if err != nil {
		a.state.unclassified(err)
		a.log.Debug("an event's container could not be looked up: not kept", "event", ev.Key().String(), "err", err)
		return
	}
	if !o.ours {
		return
	}
	// The event first, then the pod: a pod a reader sees has its events.
	a.window.Add(ev)
	a.pods.record(ev.ID(), o)
	if o.sandbox {
		a.cpu.sandboxCreated(o.podUID, ev.Time)
	}
}

// state is what the agent says about itself: its subscription, and what it
// could not keep.
type state struct {
	mu      sync.Mutex
	started time.Time
	// gen is the current subscription's; genLost: it ended (perhaps
	// before Subscribe returned: rtevents reports a loss from its own
	// goroutine).
	gen           uint64
	genLost       bool
	healthy       bool
	since         time.Time // the current subscription was open
	lost          error     // why it is not healthy
	losses        int
	lastLoss      time.Time
	lastLossWhy   error
	undecodableN  int
	undecodableE  error
	unclassifiedN int
	unclassifiedE error
}

func newState(now time.Time) *state {
	return &state{started: now, lost: errors.New("not subscribed yet")}
}

// subscribing starts a new subscription's generation.
func (s *state) subscribing() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.genLost = false
	return s.gen
}

// subscribed records that subscription gen is open since now, unless it
// was lost already.
func (s *state) subscribed(gen uint64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen == s.gen && !s.genLost {
		s.healthy, s.since, s.lost = true, now, nil
	}
}

// lose records that subscription gen ended at now, and why. Only the end
// of a healthy subscription counts as a loss: a subscription that could
// not be made (containerd still down) only updates the reason.
func (s *state) lose(gen uint64, now time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen || s.genLost {
		return
	}
	wasHealthy := s.healthy
	s.genLost, s.healthy, s.lost = true, false, err
	if !wasHealthy || errors.Is(err, rtevents.ErrClosed) {
		return // not an open subscription's loss, or the agent is stopping
	}
	s.losses++
	s.lastLoss, s.lastLossWhy = now, err
}

func (s *state) undecodable(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undecodableN++
	s.undecodableE = err
}

func (s *state) unclassified(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unclassifiedN++
	s.unclassifiedE = err
}
