package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CPU to the first byte on Kubernetes. On the node backend coldbench reads
// an instance's CPU itself, just after its first byte. Through Knative it
// cannot: a cell's replies come in together and the agent is behind the
// API server's proxy, so no read lands just after each reply. So the agent
// samples: while coldbench has armed it (a measured cell), every pod of
// coldbench's whose sandbox it sees created is read (pod cgroup + shims,
// as /v1/footprint reads them) from then on, for SampleFor; afterwards
// coldbench asks for each pod the two samples around its first byte on the
// node's clock. The CPU counters only grow, so the CPU at the first byte
// lies between the two samples' figures: coldbench records the
// interpolation and that bound.
//
// Sampling runs on the node while the pods start, so its cost is bounded:
// a sweep over the pods sampled is followed by a pause of at least
// (1/duty − 1) times the CPU the agent used during it (with duty 0.05 the
// sampler uses at most 5 % of a core), and sweeps start at least a period
// apart. CPU, not wall time: a sweep that waits (for containerd's answer
// naming a new pod's cgroup, or for a CPU on a starved node) costs the
// node nothing meanwhile; counted in wall time, such waits made pauses of
// seconds on the lab at N = 10, and samples 5 s apart.

// Defaults of the sampler (the command's flags).
const (
	DefaultCPUPeriod     = 100 * time.Millisecond
	DefaultCPUDuty       = 0.05
	DefaultCPUSampleFor  = 2 * time.Minute
	DefaultCPUMaxSamples = 1024
	// maxSamplesHeld bounds the samples of the pods whose sampling ended
	// (32 bytes each: 16 MiB, under the DaemonSet's memory limit of 128
	// MiB), the oldest forgotten first; those still sampled hold at most
	// DefaultCPUMaxSamples each.
	maxSamplesHeld = 1 << 19
	// maxArm bounds an arming: a coldbench that died armed the agent for
	// no longer than this.
	maxArm = time.Hour
)

// CPUSample is one read of a pod's CPU (pod cgroup + shims): CPUNS read
// between ReadFromUnixNS and ReadToUnixNS (node clock).
type CPUSample struct {
	ReadFromUnixNS int64 `json:"read_from_unix_ns"`
	ReadToUnixNS   int64 `json:"read_to_unix_ns"`
	CPUNS          int64 `json:"cpu_ns"`
	// Shims found at this read: a later shim's CPU is not in the earlier
	// samples.
	Shims int `json:"shims"`
}

// CPUResponse is GET /v1/cpu's body.
type CPUResponse struct {
	NodeTimeUnixNS int64 `json:"node_time_unix_ns"`
	// ArmedUntilUnixNS: pods whose sandbox is created before then are
	// sampled (0: not armed).
	ArmedUntilUnixNS int64 `json:"armed_until_unix_ns,omitempty"`
	// PeriodNS and Duty are the sampler's bounds; LastSweepNS how long its
	// latest sweep took, LastSweepCPUNS the agent's CPU meanwhile, over
	// LastSweepPods pods.
	PeriodNS       int64      `json:"period_ns"`
	Duty           float64    `json:"duty"`
	LastSweepNS    int64      `json:"last_sweep_ns"`
	LastSweepCPUNS int64      `json:"last_sweep_cpu_ns"`
	LastSweepPods  int        `json:"last_sweep_pods"`
	Pods           []PodCPUAt `json:"pods,omitempty"`
}

// PodCPUAt answers one at=UID@UNIXNS[:ERRNS]: the pod's last sample read
// wholly before the moment minus ERRNS and its first read wholly after the
// moment plus ERRNS (nil: none, Missing says why), and how many samples it
// has.
type PodCPUAt struct {
	UID     string     `json:"uid"`
	AtNS    int64      `json:"at_unix_ns"`
	ErrNS   int64      `json:"err_ns,omitempty"`
	Before  *CPUSample `json:"before,omitempty"`
	After   *CPUSample `json:"after,omitempty"`
	Samples int        `json:"samples"`
	// Sampling: the agent still samples the pod.
	Sampling bool `json:"sampling,omitempty"`
	// SampledFromUnixNS is when the agent saw the pod's sandbox created.
	SampledFromUnixNS int64  `json:"sampled_from_unix_ns,omitempty"`
	Missing           string `json:"missing,omitempty"`
}

// cpuTrack is one pod's samples.
type cpuTrack struct {
	uid     string
	seen    time.Time // its sandbox created, as the agent saw it
	cgroup  string    // its pod cgroup, once found
	samples []CPUSample
	ended   string // why sampling stopped ("": still sampling)
	lastErr string // the latest read's failure
}

// cpuSampler samples the CPU of the pods it tracks.
type cpuSampler struct {
	period     time.Duration
	duty       float64
	sampleFor  time.Duration
	maxSamples int
	maxHeld    int // maxSamplesHeld (tests: fewer)
	now        func() time.Time
	// cpuTime is the CPU the agent has used so far (the process's: a
	// sweep's share of it and, conservatively, the rest of the agent's).
	cpuTime func() time.Duration
	// read reads pod t's CPU so far and its shims; it may set t.cgroup
	// (called by the sampling goroutine only, without the lock).
	read func(ctx context.Context, t *cpuTrack) (cpuNS int64, shims int, err error)

	mu         sync.Mutex
	armedUntil time.Time
	tracks     *bounded[string, *cpuTrack]
	lastSweep  time.Duration
	lastCPU    time.Duration
	lastPods   int
	wake       chan struct{}
}

func newCPUSampler(cfg Config, read func(context.Context, *cpuTrack) (int64, int, error)) *cpuSampler {
	return &cpuSampler{period: cfg.CPUPeriod, duty: cfg.CPUDuty, sampleFor: cfg.CPUSampleFor, maxSamples: cfg.CPUMaxSamples, maxHeld: maxSamplesHeld, cpuTime: processCPU,
		now: cfg.now, read: read, tracks: newBounded[string, *cpuTrack](cfg.MaxEvents, cfg.MaxAge), wake: make(chan struct{}, 1)}
}

// arm makes the sampler track the pods whose sandbox is created within d
// from now (0: from none).
func (s *cpuSampler) arm(d time.Duration) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armedUntil = time.Time{}
	if d > 0 {
		s.armedUntil = s.now().Add(d)
	}
	return s.armedUntil
}

// sandboxCreated tracks pod uid, whose sandbox's event was stamped at (its
// creation: containerd's stamp, not when the agent got to it), if armed
// and not tracked yet.
func (s *cpuSampler) sandboxCreated(uid string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.armedUntil.IsZero() || now.After(s.armedUntil) {
		return
	}
	if _, ok := s.tracks.get(uid, now); ok {
		return // a recreated sandbox: the pod cgroup and its counters stay
	}
	if at.IsZero() || at.After(now) {
		at = now
	}
	s.tracks.put(uid, &cpuTrack{uid: uid, seen: at}, now)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run samples until ctx ends.
func (s *cpuSampler) run(ctx context.Context) {
	for {
		began, cpu0 := s.now(), s.cpuTime()
		n := s.sweep(ctx)
		took, used := s.now().Sub(began), s.cpuTime()-cpu0
		s.mu.Lock()
		s.lastSweep, s.lastCPU, s.lastPods = took, used, n
		s.mu.Unlock()
		if n > 0 {
			if err := sleepCtx(ctx, s.pause(took, used)); err != nil {
				return
			}
			continue
		}
		select { // nothing to sample until a pod is tracked
		case <-ctx.Done():
			return
		case <-s.wake:
		}
	}
}

// pause is how long to wait after a sweep that took took and used used of
// CPU: the rest of the period, and long enough that sweeping uses at most
// duty of a core.
func (s *cpuSampler) pause(took, used time.Duration) time.Duration {
	return max(s.period-took, time.Duration(float64(used)*(1/s.duty-1)))
}

// processCPU is the CPU this process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sweep reads every pod still sampled once and returns how many it read.
func (s *cpuSampler) sweep(ctx context.Context) int {
	s.mu.Lock()
	now := s.now()
	var due []*cpuTrack
	var ended []*cpuTrack // oldest first
	held := 0
	s.tracks.each(now, func(_ string, t *cpuTrack) {
		held += len(t.samples)
		if t.ended != "" {
			ended = append(ended, t)
			return
		}
		switch {
		case now.Sub(t.seen) > s.sampleFor:
			t.ended = fmt.Sprintf("sampled for %v from its sandbox's creation (the agent's -cpu-sample-for)", s.sampleFor)
		case len(t.samples) >= s.maxSamples:
			t.ended = fmt.Sprintf("%d samples taken (the agent's -cpu-max-samples)", s.maxSamples)
		default:
			due = append(due, t)
		}
	})
	for _, t := range ended {
		if held+len(due) <= s.maxHeld {
			break
		}
		if len(t.samples) > 0 {
			held -= len(t.samples)
			t.samples = nil
			t.ended += fmt.Sprintf("; its samples were forgotten to keep at most %d for newer pods", s.maxHeld)
		}
	}
	s.mu.Unlock()
	// A pod not read yet needs its pod cgroup from containerd first, which
	// a busy containerd can take long to answer: those reads run side by
	// side, so that they do not hold up the other pods' samples.
	var wg sync.WaitGroup
	slots := make(chan struct{}, newPodReads)
	for _, t := range due {
		if ctx.Err() != nil {
			break
		}
		if t.cgroup != "" {
			s.sample(ctx, t)
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			s.sample(ctx, t)
		})
	}
	wg.Wait()
	return len(due)
}

// newPodReads bounds the first reads of new pods at once.
const newPodReads = 8

// sample reads t once and keeps the sample, or why it failed.
func (s *cpuSampler) sample(ctx context.Context, t *cpuTrack) {
	from := s.now()
	cpu, shims, err := s.read(ctx, t)
	to := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		t.lastErr = err.Error()
		return
	}
	t.lastErr = ""
	t.samples = append(t.samples, CPUSample{ReadFromUnixNS: from.UnixNano(), ReadToUnixNS: to.UnixNano(), CPUNS: cpu, Shims: shims})
}

// at answers the moment atNS ± errNS of pod uid; done: the pod's sampling
// ends if the answer is whole.
func (s *cpuSampler) at(uid string, atNS, errNS int64, done bool) PodCPUAt {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := PodCPUAt{UID: uid, AtNS: atNS, ErrNS: errNS}
	t, ok := s.tracks.get(uid, s.now())
	if !ok {
		out.Missing = "the agent did not sample pod " + uid + " (its sandbox was not created while coldbench had armed the agent, or it was forgotten since)"
		return out
	}
	out.Samples, out.SampledFromUnixNS = len(t.samples), t.seen.UnixNano()
	// The last sample read wholly before atNS, and the first wholly after.
	i := sort.Search(len(t.samples), func(i int) bool { return t.samples[i].ReadToUnixNS > atNS-errNS })
	if i > 0 {
		b := t.samples[i-1]
		out.Before = &b
	}
	j := sort.Search(len(t.samples), func(i int) bool { return t.samples[i].ReadFromUnixNS >= atNS+errNS })
	if j < len(t.samples) {
		a := t.samples[j]
		out.After = &a
	}
	var why []string
	if out.Before == nil {
		why = append(why, "no sample before the moment (the pod's first was read from "+stampOf(t.samples, 0)+")")
	}
	if out.After == nil {
		switch {
		case t.ended != "":
			why = append(why, "no sample after the moment: "+t.ended)
		default:
			why = append(why, "no sample after the moment yet")
		}
	}
	if len(why) > 0 && t.lastErr != "" {
		why = append(why, "the latest read failed: "+t.lastErr)
	}
	if done && out.After != nil && t.ended == "" {
		// A sample before the moment cannot come any more.
		t.ended = "coldbench had its samples around the first byte"
	}
	out.Missing = strings.Join(why, "; ")
	out.Sampling = t.ended == ""
	return out
}

func stampOf(ss []CPUSample, i int) string {
	if i >= len(ss) {
		return "none yet"
	}
	return time.Unix(0, ss[i].ReadFromUnixNS).UTC().Format(time.RFC3339Nano)
}

func (s *cpuSampler) state() (armedUntil time.Time, lastSweep, lastCPU time.Duration, lastPods int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.armedUntil, s.lastSweep, s.lastCPU, s.lastPods
}

// readPodCPU is the agent's read of a tracked pod: its pod cgroup (found
// once, from its sandbox), its shims (found anew at each read: a gVisor
// pod's come with its containers) and their CPU.
func (a *Agent) readPodCPU(ctx context.Context, t *cpuTrack) (int64, int, error) {
	layout, err := a.footprint.cgroups()
	if err != nil {
		return 0, 0, fmt.Errorf("cgroups: %w", err)
	}
	if t.cgroup == "" {
		cg, err := a.podCgroup(ctx, t.uid)
		if err != nil {
			return 0, 0, err
		}
		t.cgroup = cg
	}
	in, err := a.footprint.fs.FindInstance(layout, t.cgroup)
	if err != nil {
		return 0, 0, fmt.Errorf("shim: %w", err)
	}
	cpu, err := a.footprint.fs.CPU(layout, in)
	if err != nil {
		return 0, 0, fmt.Errorf("cpu: %w", err)
	}
	return cpu.Nanoseconds(), len(in.Shims), nil
}

// serveCPU answers GET /v1/cpu: arm=DURATION arms the sampler for the pods
// created within it from now (0 disarms); at=UID@UNIXNS[:ERRNS] asks for
// pod UID's samples around UNIXNS (node clock) ± ERRNS; done=1 ends the
// sampling of the pods asked about whose answer is whole. A GET that arms: the right coldbench
// holds on the agents is the API server's pod proxy for GET only
// (deploy/rbac.yaml), and arming is idempotent.
func (a *Agent) serveCPU(w http.ResponseWriter, r *http.Request) {
	resp, err := a.CPU(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		a.log.Debug("answering /v1/cpu", "err", err)
	}
}

// CPU is GET /v1/cpu's answer to the query q.
func (a *Agent) CPU(q url.Values) (CPUResponse, error) {
	type ask struct {
		uid     string
		at, err int64
	}
	var asks []ask
	if len(q["at"]) > MaxUIDs {
		return CPUResponse{}, fmt.Errorf("%d at parameters, at most %d per request", len(q["at"]), MaxUIDs)
	}
	for _, v := range q["at"] {
		uid, when, ok := strings.Cut(v, "@")
		ns, errNS, hasErr := strings.Cut(when, ":")
		at, err := strconv.ParseInt(ns, 10, 64)
		var e int64
		if hasErr && err == nil {
			e, err = strconv.ParseInt(errNS, 10, 64)
		}
		if !ok || uid == "" || len(uid) > 128 || err != nil || at <= 0 || e < 0 || e > at || at > math.MaxInt64-e {
			return CPUResponse{}, fmt.Errorf("at=%.160q: want UID@UNIXNS[:ERRNS] (a pod's uid, a moment in Unix nanoseconds of the node's clock, and how far off it may be)", v)
		}
		asks = append(asks, ask{uid, at, e})
	}
	if v, ok := q["arm"]; ok {
		d, err := time.ParseDuration(v[0])
		if err != nil || d < 0 || d > maxArm {
			return CPUResponse{}, fmt.Errorf("arm=%.40q: want a duration from 0 (disarm) to %v", v[0], maxArm)
		}
		a.cpu.arm(d)
	}
	resp := CPUResponse{PeriodNS: a.cpu.period.Nanoseconds(), Duty: a.cpu.duty}
	for _, k := range asks {
		resp.Pods = append(resp.Pods, a.cpu.at(k.uid, k.at, k.err, q.Get("done") == "1"))
	}
	armed, sweep, used, pods := a.cpu.state()
	resp.ArmedUntilUnixNS, resp.LastSweepNS, resp.LastSweepCPUNS, resp.LastSweepPods = unixNS(armed), sweep.Nanoseconds(), used.Nanoseconds(), pods
	resp.NodeTimeUnixNS = unixNS(a.now())
	return resp, nil
}
