package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/coldbench/coldbench/pkg/rtevents"
)

// MaxUIDs bounds the pods of one request: a step of coldbench's at N = 500
// asks for 500 at most, and 1000 uids (≈ 41 bytes each in the URL) stay
// far below the header limits of the API server's proxy and of the agent.
const MaxUIDs = 1000

// EventsResponse is GET /v1/events' body. Times are Unix nanoseconds of
// the node's wall clock; 0 (left out) is "none".
type EventsResponse struct {
	// NodeTimeUnixNS is the agent's wall clock as it answered: with the
	// request's send and reply times, the offset between coldbench's
	// clock and the node's (see the package's doc, Clock offset).
	NodeTimeUnixNS int64 `json:"node_time_unix_ns"`
	Agent          State `json:"agent"`
	// Pods are the pods asked for that the agent holds, in the order
	// asked (all held: oldest first).
	Pods []Pod `json:"pods"`
	// Unknown are the uids asked for that the agent holds nothing of:
	// not (yet) created on this node, not coldbench's, or evicted (see
	// State.Window).
	Unknown []string `json:"unknown,omitempty"`
}

// State is what the agent says about itself.
type State struct {
	// Namespace is containerd's namespace the agent reads.
	Namespace     string       `json:"containerd_namespace"`
	StartedUnixNS int64        `json:"started_unix_ns"`
	Subscription  Subscription `json:"subscription"`
	Window        WindowState  `json:"window"`
	// UndecodableEvents are the events of the subscribed kinds that could
	// not be decoded (a missing event may be among them), the latest's
	// error in LastUndecodable.
	UndecodableEvents int    `json:"undecodable_events"`
	LastUndecodable   string `json:"last_undecodable,omitempty"`
	// UnclassifiedEvents are the events whose container's labels could
	// not be read (containerd unreachable, the container already
	// deleted): not kept, whoever's they were.
	UnclassifiedEvents int    `json:"unclassified_events"`
	LastUnclassified   string `json:"last_unclassified,omitempty"`
}

// Subscription is the state of the agent's subscription to containerd's
// events.
type Subscription struct {
	// Healthy: subscribed, events arrive as containerd publishes them.
	Healthy bool `json:"healthy"`
	// SinceUnixNS is when the current subscription was open (healthy
	// only): containerd acknowledges none and registers it a moment
	// later, so events published before, or in that moment, may be
	// missing.
	SinceUnixNS int64 `json:"since_unix_ns,omitempty"`
	// Reason is why it is not healthy.
	Reason string `json:"reason,omitempty"`
	// Losses count the subscriptions lost since the agent started (each
	// made again after a back-off); the latest's time and reason follow.
	Losses         int    `json:"losses"`
	LastLossUnixNS int64  `json:"last_loss_unix_ns,omitempty"`
	LastLossReason string `json:"last_loss_reason,omitempty"`
}

// WindowState is the events window's bounds and use.
type WindowState struct {
	MaxEvents int   `json:"max_events"`
	MaxAgeNS  int64 `json:"max_age_ns"`
	// Events and Pods are held now.
	Events int `json:"events"`
	Pods   int `json:"pods"`
	// EvictedEvents are the events the bounds evicted so far;
	// LastEvictedUnixNS when the newest of them had arrived (agent's
	// clock): every event that arrived after it is held.
	EvictedEvents     int   `json:"evicted_events"`
	LastEvictedUnixNS int64 `json:"last_evicted_unix_ns,omitempty"`
}

// Pod is one of coldbench's pods as containerd saw it.
type Pod struct {
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Sandboxes: normally one; more if the kubelet recreated the
	// sandbox. Created is /containers/create of its pause container
	// (containerd's stamp, after the pod's network is set up), started
	// /tasks/start of it (the shim's).
	Sandboxes []Instance `json:"sandboxes"`
	// Containers by name (user-container, queue-proxy): normally one
	// each; more if it restarted. Created is /containers/create
	// (containerd's stamp, in CRI's CreateContainer), started /tasks/start
	// (the shim's).
	Containers map[string][]Instance `json:"containers"`
}

// Instance is one sandbox or container, in the order first seen.
type Instance struct {
	ID string `json:"id"`
	// SandboxID is a container's sandbox, as containerd recorded it.
	SandboxID     string `json:"sandbox_id,omitempty"`
	CreatedUnixNS int64  `json:"created_unix_ns,omitempty"`
	StartedUnixNS int64  `json:"started_unix_ns,omitempty"`
}

// Handler serves GET /v1/events, GET /v1/footprint, GET /v1/cpu and GET
// /healthz.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", a.serveEvents)
	mux.HandleFunc("GET /v1/footprint", a.serveFootprint)
	mux.HandleFunc("GET /v1/cpu", a.serveCPU)
	mux.HandleFunc("GET /healthz", a.serveHealth)
	return mux
}

func (a *Agent) serveEvents(w http.ResponseWriter, r *http.Request) {
	uids, err := requestedUIDs(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := a.Events(uids)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		a.log.Debug("answering /v1/events", "err", err) // the client went away
	}
}

// requestedUIDs are the uid parameters, each once (none: nil, all pods).
func requestedUIDs(q url.Values) ([]string, error) {
	uids, ok := q["uid"]
	if !ok {
		return nil, nil
	}
	if len(uids) > MaxUIDs {
		return nil, fmt.Errorf("%d uids asked for, at most %d per request", len(uids), MaxUIDs)
	}
	for _, u := range uids {
		if u == "" || len(u) > 128 {
			return nil, fmt.Errorf("uid %.140q: want a pod's uid", u)
		}
	}
	out := make([]string, 0, len(uids))
	for _, u := range uids {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// Events is GET /v1/events' answer for the pods uids (nil: every pod held).
func (a *Agent) Events(uids []string) EventsResponse {
	held, unknown := a.pods.snapshot(uids)
	var keys []rtevents.Key
	for _, p := range held {
		for _, id := range p.sandboxes {
			keys = append(keys, rtevents.SandboxCreated.Key(id, ""), rtevents.SandboxStarted.Key(id, ""))
		}
		for _, ids := range p.containers {
			for _, id := range ids {
				keys = append(keys, rtevents.ContainerCreated.Key("", id), rtevents.ContainerStarted.Key("", id))
			}
		}
	}
	got := a.window.Get(keys...) // one look for all: the same window for every pod
	resp := EventsResponse{Pods: make([]Pod, 0, len(held)), Unknown: unknown}
	for _, p := range held {
		resp.Pods = append(resp.Pods, p.report(got))
	}
	resp.Agent = a.State()
	resp.NodeTimeUnixNS = a.now().UnixNano()
	return resp
}

// report is p with the times of its events in got.
func (p pod) report(got map[rtevents.Key]rtevents.Event) Pod {
	out := Pod{UID: p.uid, Namespace: p.namespace, Name: p.name, Sandboxes: []Instance{}, Containers: map[string][]Instance{}}
	for _, id := range p.sandboxes {
		out.Sandboxes = append(out.Sandboxes, Instance{ID: id,
			CreatedUnixNS: unixNS(got[rtevents.SandboxCreated.Key(id, "")].Time),
			StartedUnixNS: unixNS(got[rtevents.SandboxStarted.Key(id, "")].Time)})
	}
	for name, ids := range p.containers {
		for _, id := range ids {
			out.Containers[name] = append(out.Containers[name], Instance{ID: id, SandboxID: p.sandboxOf[id],
				CreatedUnixNS: unixNS(got[rtevents.ContainerCreated.Key("", id)].Time),
				StartedUnixNS: unixNS(got[rtevents.ContainerStarted.Key("", id)].Time)})
		}
	}
	return out
}

// State is the agent's state now.
func (a *Agent) State() State {
	st := a.state.report()
	st.Namespace = a.cfg.Namespace
	evicted, last := a.window.Evicted()
	st.Window = WindowState{MaxEvents: a.cfg.MaxEvents, MaxAgeNS: a.cfg.MaxAge.Nanoseconds(),
		Events: a.window.Len(), Pods: a.pods.len(), EvictedEvents: evicted, LastEvictedUnixNS: unixNS(last)}
	return st
}

// report is the state's part of State.
func (s *state) report() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{StartedUnixNS: unixNS(s.started), UndecodableEvents: s.undecodableN, UnclassifiedEvents: s.unclassifiedN,
		LastUndecodable: errString(s.undecodableE), LastUnclassified: errString(s.unclassifiedE)}
	st.Subscription = Subscription{Healthy: s.healthy, Reason: errString(s.lost), Losses: s.losses,
		LastLossUnixNS: unixNS(s.lastLoss), LastLossReason: errString(s.lastLossWhy)}
	if s.healthy {
		st.Subscription.SinceUnixNS = unixNS(s.since)
	}
	return st
}

// serveHealth is 200 while the subscription is alive, else 503 with why:
// the DaemonSet's readiness probe, and what coldbench's doctor can read.
func (a *Agent) serveHealth(w http.ResponseWriter, _ *http.Request) {
	sub := a.state.report().Subscription
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if sub.Healthy {
		fmt.Fprintf(w, "ok: subscribed to containerd's events in namespace %s since %s\n",
			a.cfg.Namespace, time.Unix(0, sub.SinceUnixNS).UTC().Format(time.RFC3339Nano))
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, "not subscribed to containerd's events: %s\n", sub.Reason)
}

// unixNS is t in Unix nanoseconds, 0 for the zero time.
func unixNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
