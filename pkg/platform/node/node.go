// Package node is the node backend: it cold-starts functions the way a
// kubelet does, over containerd's CRI (RunPodSandbox with a runtime handler,
// CreateContainer, StartContainer), and times each until the function's
// first HTTP reply on the pod IP. No Kubernetes is involved, which isolates
// the runtime's own cost from Knative's.
package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/footprint"
	"github.com/coldbench/coldbench/pkg/kstamp"
	"github.com/coldbench/coldbench/pkg/probe"
	"github.com/coldbench/coldbench/pkg/release"
	"github.com/coldbench/coldbench/pkg/results"
)

// Namespace is the CRI pod namespace coldbench's sandboxes live in.
const Namespace = "coldbench"

// teardownTimeout bounds the untimed removal of one instance.
const teardownTimeout = 60 * time.Second

// Platform talks CRI to one containerd.
type Platform struct {
	endpoint string
	port     int
	conn     *grpc.ClientConn
	rt       runtimeapi.RuntimeServiceClient
	img      runtimeapi.ImageServiceClient
	log      *slog.Logger
	// removed are the sandboxes removed since the last session's Close,
	// whose shims it checks for (shims.go).
	removed removedSandboxes
}

// SocketPath turns "unix:///x.sock" or "/x.sock" into a path.
func SocketPath(endpoint string) string { return strings.TrimPrefix(endpoint, "unix://") }

// New connects lazily: no call is made until Checks or Open. The platform logs
// through log (nil: not at all).
func New(endpoint string, port int, log *slog.Logger) (*Platform, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if port == 0 {
		port = bench.DefaultPort
	}
	conn, err := grpc.NewClient("unix://"+SocketPath(endpoint),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %q: %w", endpoint, err)
	}
	return &Platform{
		endpoint: endpoint, port: port, conn: conn, log: bench.LoggerOrDiscard(log),
		rt:  runtimeapi.NewRuntimeServiceClient(conn),
		img: runtimeapi.NewImageServiceClient(conn),
	}, nil
}

func (p *Platform) Name() string { return Name }
func (p *Platform) Close() error { return p.conn.Close() }

// Checks checks the socket, that containerd's CRI answers, that every
// handler is configured and every image is present. It creates nothing.
func (p *Platform) Checks(ctx context.Context, exp *bench.Experiment) []bench.Check {
	sock := SocketPath(p.endpoint)
	if st, err := os.Stat(sock); err != nil || st.Mode()&os.ModeSocket == 0 {
		return []bench.Check{{Name: "containerd socket", Detail: fmt.Sprintf("containerd socket %s not found", sock),
			Fix: "start coldbench's containerd with `sudo scripts/node-up.sh`, or pass --endpoint unix:///path/to/containerd.sock"}}
	}
	out := []bench.Check{{Name: "containerd socket", OK: true, Detail: sock}}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := p.rt.Version(cctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return append(out, bench.Check{Name: "containerd CRI", Detail: fmt.Sprintf("containerd at %s does not answer CRI v1 (is the CRI plugin enabled?): %v", sock, err),
			Fix: "start it with `sudo scripts/node-up.sh`"})
	}
	out = append(out, bench.Check{Name: "containerd CRI", OK: true, Detail: v.RuntimeName + " " + v.RuntimeVersion + ", CRI " + v.RuntimeApiVersion})
	hs, err := p.loadHandlers(cctx)
	if err != nil {
		return append(out, bench.Check{Name: "runtime handlers", Detail: err.Error(), Fix: "enable containerd's CRI plugin with a config (`sudo scripts/node-up.sh` writes one)"})
	}
	for _, r := range exp.Spec.Runtimes {
		c := bench.Check{Name: "runtime " + r.Name, OK: true, Detail: fmt.Sprintf("containerd's default handler %q", hs.def)}
		if r.Handler != "" {
			c.Detail = fmt.Sprintf("handler %q (%s)", r.Handler, hs.bins[r.Handler])
			if _, ok := hs.bins[r.Handler]; !ok {
				c = bench.Check{Name: c.Name, Detail: fmt.Sprintf("handler %q is not configured in containerd (configured: %s)", r.Handler, strings.Join(hs.names(), ", ")),
					Fix: "add it to the containerd config's runtimes or fix --runtimes"}
			}
		}
		out = append(out, c)
	}
	out = append(out, p.checkImages(cctx, exp)...)
	if d := exp.Spec.Density; d != nil {
		out = append(out, checkMemoryFloor(footprint.NewFS(hostRoot), d.MinMemAvailable))
	}
	return out
}

// checkImages checks that every runtime's image is in containerd.
func (p *Platform) checkImages(ctx context.Context, exp *bench.Experiment) []bench.Check {
	var refs []string
	for _, r := range exp.Spec.Runtimes {
		if !slices.Contains(refs, r.Image) {
			refs = append(refs, r.Image)
		}
	}
	sort.Strings(refs)
	var out []bench.Check
	for _, ref := range refs {
		c := bench.Check{Name: "image " + ref, OK: true, Detail: "present"}
		st, err := p.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			c = bench.Check{Name: c.Name, Detail: fmt.Sprintf("image %q: status failed: %v", ref, err), Fix: "check that containerd answers (`sudo scripts/node-up.sh`)"}
		} else if st.Image == nil {
			c = bench.Check{Name: c.Name, Detail: fmt.Sprintf("image %q is not in containerd", ref),
				Fix: "build and import it with `sudo scripts/node-up.sh` (or `coldbench image build` + `ctr -n k8s.io images import`), never pulled from a registry"}
		}
		out = append(out, c)
	}
	return out
}

// handlers are the runtimes containerd's CRI plugin is configured with.
type handlers struct {
	bins map[string]string // handler name -> binary
	def  string            // the default handler
}

// loadHandlers reads the runtimes containerd's CRI plugin is configured with
// from its verbose status (CRI has no "list handlers" call in containerd 1.6).
func (p *Platform) loadHandlers(ctx context.Context) (handlers, error) {
	st, err := p.rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return handlers{}, fmt.Errorf("CRI status: %w", err)
	}
	var cfg struct {
		Containerd struct {
			DefaultRuntimeName string `json:"defaultRuntimeName"`
			Runtimes           map[string]struct {
				Type    string         `json:"runtimeType"`
				Options map[string]any `json:"options"`
			} `json:"runtimes"`
		} `json:"containerd"`
	}
	raw, ok := st.Info["config"]
	if !ok {
		return handlers{}, fmt.Errorf("containerd's CRI status has no config; cannot check runtime handlers")
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return handlers{}, fmt.Errorf("decoding containerd's CRI config: %w", err)
	}
	hs := handlers{bins: map[string]string{}, def: cfg.Containerd.DefaultRuntimeName}
	for name, r := range cfg.Containerd.Runtimes {
		bin, _ := r.Options["BinaryName"].(string)
		if bin == "" && strings.HasPrefix(r.Type, "io.containerd.runc.") {
			bin = "runc"
		}
		hs.bins[name] = bin
	}
	return hs, nil
}

func (hs handlers) names() []string {
	var names []string
	for n := range hs.bins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// session is one run on the node: the cells of a sweep are independent of
// each other, so it keeps nothing between them but its subscription to
// containerd's events, and a density run's instances (density.go).
type session struct {
	// kept are a density run's instances kept between its steps
	// (density.go); ColdStart keeps none.
	kept []*instance

	p            *Platform
	exp          *bench.Experiment
	id           string // the experiment's, whose leftovers Close removes
	measurements bench.Measurements
	events       *runtimeEvents
}

// Open returns the run's session. Its one set-up is the subscription to
// containerd's events (the rt_ phases), which cannot fail the run.
func (p *Platform) Open(ctx context.Context, exp *bench.Experiment, id string, _ map[bench.CellKey]bool) (bench.Session, error) {
	s := &session{p: p, exp: exp, id: id, events: p.subscribeEvents(ctx)}
	for _, mk := range measurementKinds {
		if m := mk(s); m != nil { // nil: the experiment turned it off
			s.measurements = append(s.measurements, m)
		}
	}
	return s, nil
}

// Close removes what a cell's teardown could not (it logged why), with a
// context of its own (the run's may be canceled): the experiment's
// sandboxes, and the shims containerd left running for removed ones
// (shims.go). A failure is the run's (it names what is left).
func (s *session) Close() error {
	s.events.close()
	if s.id == "" {
		return s.p.killLingeringShims() // Clean("") would take every coldbench sandbox
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	n, err := s.p.Clean(ctx, s.id)
	if n > 0 {
		s.p.log.Info("removed sandboxes whose teardown had failed", "sandboxes", n)
	}
	if err != nil {
		err = fmt.Errorf("removing the sandboxes experiment %s left: %w", s.id, err)
	}
	return errors.Join(err, s.p.killLingeringShims())
}

// closeTimeout bounds Close's removal of what teardowns left.
const closeTimeout = 2 * time.Minute

// Describe records containerd's and each runtime binary's version.
func (s *session) Describe(ctx context.Context, tb *results.Testbed) {
	tb.PlatformVersion = map[string]string{"cri_endpoint": s.p.endpoint}
	if v, err := s.p.rt.Version(ctx, &runtimeapi.VersionRequest{}); err == nil {
		tb.PlatformVersion[v.RuntimeName] = v.RuntimeVersion
		tb.PlatformVersion["cri_api"] = v.RuntimeApiVersion
	} else {
		tb.Notes = append(tb.Notes, "containerd version unknown: "+err.Error())
	}
	hs, err := s.p.loadHandlers(ctx)
	if err != nil {
		tb.Notes = append(tb.Notes, err.Error())
	}
	if err := s.events.window.Err(); err != nil {
		tb.Notes = append(tb.Notes, "no runtime phases (rt_*) from containerd's events: "+err.Error())
	}
	tb.RuntimeVersions = map[string]string{}
	for _, r := range s.exp.Spec.Runtimes {
		h := r.Handler
		if h == "" {
			h = hs.def
		}
		bin := hs.bins[h]
		if bin == "" {
			continue
		}
		tb.RuntimeVersions[r.Name] = binaryVersion(bin)
	}
}

func binaryVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "unknown (" + bin + " --version: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// runc and crun print "<name> version X" then commit/spec lines.
	return bin + ": " + strings.Join(lines, "; ")
}

// ColdStart starts cell.Scale sandboxes at once (all goroutines released
// together), measures each and removes them. Every attempt carries the
// step's set-up (instances prepared, measurements started: until the
// release) and teardown (sandboxes stopped and removed) times.
func (s *session) ColdStart(ctx context.Context, cell bench.Cell) []results.Attempt {
	out, insts, setup := s.start(ctx, cell)
	// Teardown only once every instance of the step is measured: removing a
	// sandbox (kill, CNI DEL under the IPAM lock) while others still start
	// would slow the starts being timed.
	tornDown := time.Now()
	removeAll(ctx, insts)
	setStep(out, setup, time.Since(tornDown))
	return out
}

// start prepares cell.Scale instances, starts the measurements, releases
// the instances together and measures each; it returns their attempts
// (in instance order, measurements gathered), the instances and the set-up
// time (until the release).
func (s *session) start(ctx context.Context, cell bench.Cell) ([]results.Attempt, []*instance, time.Duration) {
	began := time.Now()
	p := s.p
	out := make([]results.Attempt, cell.Scale)
	starts := make([]time.Time, cell.Scale)
	start := make(chan struct{})
	var ready, wg sync.WaitGroup
	insts := make([]*instance, cell.Scale)
	ready.Add(cell.Scale)
	wg.Add(cell.Scale)
	for i := 0; i < cell.Scale; i++ {
		go func(i int) {
			defer wg.Done()
			insts[i] = newInstance(p, cell, i)
			insts[i].events = s.events
			ready.Done()
			<-start
			out[i] = insts[i].measure(ctx)
			starts[i] = insts[i].t0
		}(i)
	}
	ready.Wait()
	started := s.measurements.Start(ctx, cell, instances(insts), p.log)
	for _, in := range insts {
		in.observers = replyObservers(started) // read after <-start
	}
	setup := time.Since(began)
	clk := kstamp.NewClock()
	close(start)
	wg.Wait()
	useKernelFirstBytes(out, insts, clk)
	skew := release.Skew(starts)
	for i := range out {
		out[i].Instance = i
		out[i].ReleaseSkewNS = skew.Nanoseconds()
		out[i].ReleaseSkewUserNS = skew.Nanoseconds() // the start is the first CRI call: user space either way
	}
	started.Gather(ctx, cell, out)
	return out, insts, setup
}

// setStep puts the step's set-up and teardown times on each attempt.
func setStep(out []results.Attempt, setup, teardown time.Duration) {
	step := &results.Step{SetupNS: setup.Nanoseconds(), TeardownNS: teardown.Nanoseconds()}
	for i := range out {
		out[i].Step = step
	}
}

// removeAll tears the instances down, all at once.
func removeAll(ctx context.Context, insts []*instance) {
	var wg sync.WaitGroup
	wg.Add(len(insts))
	for _, in := range insts {
		go func() { defer wg.Done(); in.teardown(ctx) }()
	}
	wg.Wait()
}

// instance is one sandbox + container, prepared before the timer starts.
type instance struct {
	p        *Platform
	cell     bench.Cell
	sandbox  *runtimeapi.PodSandboxConfig
	ctr      *runtimeapi.ContainerConfig
	t0       time.Time
	podID    string
	ctrID    string
	requestT time.Duration
	events   *runtimeEvents // the session's; nil: no rt_ phases
	index    int            // in the cell
	// The kernel's receive stamp of the reply's first byte, or why none
	// (set by measure when a reply came).
	krx  kstamp.Stamp
	kwhy string
	// observers read the instance just after its reply (untimed for it).
	observers []replyObserver
}

func newInstance(p *Platform, cell bench.Cell, i int) *instance {
	uid := randomHex(8)
	labels := map[string]string{
		bench.LabelManagedBy:  bench.LabelManagedByVal,
		bench.LabelExperiment: cell.ExperimentID,
		bench.LabelRuntime:    cell.Runtime.Name,
	}
	name := fmt.Sprintf("%s-n%d-i%d-%d", cell.Runtime.Name, cell.Scale, cell.Iteration, i)
	sb := &runtimeapi.PodSandboxConfig{
		Metadata:    &runtimeapi.PodSandboxMetadata{Name: name, Uid: uid, Namespace: Namespace},
		Hostname:    "fn-" + uid,
		Labels:      labels,
		Annotations: cell.Runtime.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: podCgroupParent(uid),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD},
			},
		},
	}
	ctr := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "function"},
		Image:    &runtimeapi.ImageSpec{Image: cell.Runtime.Image},
		Envs:     []*runtimeapi.KeyValue{{Key: "PORT", Value: []byte(strconv.Itoa(p.port))}},
		Labels:   labels,
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
	return &instance{p: p, cell: cell, sandbox: sb, ctr: ctr, index: i}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// measure runs the timed path, then, untimed, adds the runtime-observed
// phases. Phases are kept in time order for readers: function_start and the
// rt_ phases come from other clocks and often precede user-space stamps.
func (in *instance) measure(ctx context.Context) results.Attempt {
	a := in.timed(ctx)
	for _, o := range in.observers {
		o.afterReply(in, &a)
	}
	in.addRuntimePhases(ctx, &a)
	sort.SliceStable(a.Phases, func(i, j int) bool { return a.Phases[i].OffsetNS < a.Phases[j].OffsetNS })
	return a
}

// timed runs the timed path: sandbox → container → start → IP → first reply.
func (in *instance) timed(ctx context.Context) results.Attempt {
	p := in.p
	var a results.Attempt
	in.t0 = time.Now()
	a.Start = in.t0
	phase := func(name string) {
		a.Phases = append(a.Phases, results.Phase{Name: name, OffsetNS: time.Since(in.t0).Nanoseconds()})
	}
	fail := func(class string, err error) results.Attempt {
		a.ErrorClass, a.Error = class, err.Error()
		// The run's own context ended (interrupt or overall deadline): the
		// attempt did not fail on its own, whatever the call reported.
		if ctx.Err() != nil {
			a.ErrorClass = results.ErrCanceled
		}
		return a
	}
	// The whole attempt, from RunPodSandbox to the reply, shares the request
	// timeout: a start that hangs is a failure, not a stall of the run.
	actx, cancel := context.WithTimeout(ctx, requestTimeout(in.cell))
	defer cancel()

	sb, err := p.rt.RunPodSandbox(actx, &runtimeapi.RunPodSandboxRequest{Config: in.sandbox, RuntimeHandler: in.cell.Runtime.Handler})
	if err != nil {
		return fail(classifyCRI(results.ErrSandbox, err), fmt.Errorf("RunPodSandbox: %w", err))
	}
	in.podID = sb.PodSandboxId
	a.Cold.SandboxID = sb.PodSandboxId
	phase(results.PhaseSandboxReady)

	cr, err := p.rt.CreateContainer(actx, &runtimeapi.CreateContainerRequest{PodSandboxId: in.podID, Config: in.ctr, SandboxConfig: in.sandbox})
	if err != nil {
		return fail(classifyCRI(results.ErrContainer, err), fmt.Errorf("CreateContainer: %w", err))
	}
	in.ctrID = cr.ContainerId
	a.Cold.ContainerID = cr.ContainerId
	phase(results.PhaseContainerCreated)

	if _, err := p.rt.StartContainer(actx, &runtimeapi.StartContainerRequest{ContainerId: in.ctrID}); err != nil {
		return fail(classifyCRI(results.ErrContainer, err), fmt.Errorf("StartContainer: %w", err))
	}
	phase(results.PhaseContainerStarted)

	st, err := p.rt.PodSandboxStatus(actx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: in.podID})
	if err != nil {
		return fail(results.ErrSandbox, fmt.Errorf("PodSandboxStatus: %w", err))
	}
	ip := st.GetStatus().GetNetwork().GetIp()
	if ip == "" {
		return fail(results.ErrSandbox, errors.New("sandbox has no IP: is the CNI config in place? (scripts/node-up.sh writes it)"))
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(p.port))
	a.Cold.Address = addr
	phase(results.PhaseAddressKnown)

	res := probe.Until(actx, probe.Options{URL: "http://" + addr + "/", Interval: in.cell.ProbeInterval})
	a.Probes = res.Probes
	a.HTTPStatus = res.HTTPStatus
	if !res.ProcessStart.IsZero() {
		// Wall clock on both sides: the function's clock is the host's.
		a.Phases = append(a.Phases, results.Phase{Name: results.PhaseFunctionStart, OffsetNS: res.ProcessStart.Sub(in.t0.Round(0)).Nanoseconds()})
	}
	if !res.FirstByte.IsZero() {
		in.krx, in.kwhy = res.FirstByteStamp, res.StampNote
		a.TTFBNS = res.FirstByte.Sub(in.t0).Nanoseconds()
		a.TotalNS = res.Done.Sub(in.t0).Nanoseconds()
		a.Phases = append(a.Phases, results.Phase{Name: results.PhaseFirstByte, OffsetNS: a.TTFBNS})
	}
	if !res.OK {
		return fail(res.ErrorClass, res.Err)
	}
	a.OK = true
	return a
}

// useKernelFirstBytes gives the cell's replies the kernel's receive stamps
// as their first byte, keeping coldbench's own as user_first_byte, or, when
// one reply lacks a stamp or the wall clock stepped (kernel stamps are
// CLOCK_REALTIME), keeps every attempt on user-space stamps and says why:
// a cell never mixes them. The start stays the first CRI call's stamp. clk
// was read just before the release.
func useKernelFirstBytes(out []results.Attempt, insts []*instance, clk kstamp.Clock) {
	why := clk.StepNote(kstamp.NewClock(), "the step")
	first := make([]int64, len(out)) // the kernel's first byte, from each start
	for i := range out {
		if why != "" || out[i].TTFBNS == 0 {
			continue
		}
		in := insts[i]
		if in.krx.IsZero() {
			why = fmt.Sprintf("instance %d: %s", i, in.kwhy)
			continue
		}
		first[i] = clk.Time(in.krx).Sub(in.t0).Nanoseconds()
		if first[i] <= 0 || first[i] > out[i].TTFBNS {
			why = fmt.Sprintf("instance %d: the kernel's receive stamp is %v from the start, coldbench read the reply at %v", i, time.Duration(first[i]), time.Duration(out[i].TTFBNS))
		}
	}
	for i := range out {
		a := &out[i]
		if why != "" {
			a.Timestamps, a.TimestampsNote = results.TimestampsUser, why
			continue
		}
		a.Timestamps = results.TimestampsKernel
		if a.TTFBNS == 0 {
			continue
		}
		for k, p := range a.Phases {
			if p.Name == results.PhaseFirstByte {
				a.Phases[k].Name = results.PhaseUserFirstByte
				a.Phases = slices.Insert(a.Phases, k, results.Phase{Name: results.PhaseFirstByte, OffsetNS: first[i]})
				break
			}
		}
		a.TTFBNS = first[i]
	}
}

func requestTimeout(c bench.Cell) time.Duration {
	if c.RequestTimeout > 0 {
		return c.RequestTimeout
	}
	return 30 * time.Second
}

// classifyCRI maps CRI errors to record classes by containerd's messages.
func classifyCRI(def string, err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "DeadlineExceeded"):
		return results.ErrTimeout
	case strings.Contains(msg, "no runtime for") || strings.Contains(msg, "runtime handler"):
		return results.ErrRuntime
	case strings.Contains(msg, "image") && (strings.Contains(msg, "not found") || strings.Contains(msg, "failed to get image")):
		return results.ErrImage
	}
	return def
}

// teardown removes the instance; untimed, and done also after errors and
// interrupts (a first try with a context of its own). A sandbox that does
// not go (an overloaded or hung runtime: gVisor at N = 50 here) is retried
// until it is gone, for up to retryRemovalFor and as long as the run goes
// on (Ctrl-C, the deadline); the session's Close removes what is left, or
// names it.
// A failure is logged, not recorded: the measurement is done.
func (in *instance) teardown(parent context.Context) {
	if in.podID == "" {
		// RunPodSandbox failed: containerd removed its sandbox, but not
		// the pod cgroup its runtime may have made under the parent we
		// gave (the kubelet's to remove, here ours): a run interrupted
		// during a RunPodSandbox left one.
		if in.sandbox != nil {
			removePodCgroup(in.sandbox.GetMetadata().GetUid())
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), teardownTimeout)
	err := in.p.removeSandbox(ctx, in.podID)
	cancel()
	if err == nil || isNotFound(err) {
		removePodCgroup(in.sandbox.Metadata.Uid)
		return
	}
	if parent.Err() != nil {
		in.p.log.Warn("tearing down an instance", "sandbox", in.podID, "err", err)
		return
	}
	in.p.log.Warn("tearing down an instance: retrying until it is gone (Ctrl-C stops it)", "sandbox", in.podID, "err", err)
	if err := in.removeUntilGone(parent); err != nil {
		in.p.log.Warn("tearing down an instance: stopped retrying", "sandbox", in.podID, "err", err)
	}
}

// podCgroupParent is the cgroup parent a sandbox of uid is given: its pod
// cgroup, which the footprint measurement reads.
func podCgroupParent(uid string) string { return "/coldbench/pod" + uid }

// cgroupRoot is where the cgroup hierarchies are mounted (a variable for
// tests).
var cgroupRoot = "/sys/fs/cgroup"

// removePodCgroup removes the sandbox's pod cgroup, made by the runtime
// from the cgroup parent coldbench asked for and never removed by it
// (about 1200 were left in every hierarchy after a day's runs), in each
// hierarchy (v1: one per controller; v2: the unified one), with the
// container cgroups below it, deepest first: a container whose start was
// cut (StartContainer past its deadline, seen at 700 instances) can leave
// its empty cgroup, which would keep the pod's. rmdir refuses a cgroup
// that still has processes or children: then it stays.
func removePodCgroup(uid string) {
	if uid == "" {
		return
	}
	parent := podCgroupParent(uid)
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", parent))
	for _, dir := range append(dirs, filepath.Join(cgroupRoot, parent)) {
		var tree []string
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				tree = append(tree, path)
			}
			return nil // gone already (a symlinked hierarchy), or unreadable: skip
		})
		for _, d := range slices.Backward(tree) { // children before their parent
			_ = os.Remove(d) // not empty: it stays
		}
	}
}

// Clean removes coldbench-labelled sandboxes (and their containers), only in
// coldbench's CRI namespace. Stopping the sandbox first kills every container
// in it, whatever state an interrupted start left them in.
func (p *Platform) Clean(ctx context.Context, experimentID string) (int, error) {
	sel := map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal}
	if experimentID != "" {
		sel[bench.LabelExperiment] = experimentID
	}
	list, err := p.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return 0, fmt.Errorf("listing coldbench sandboxes: %w", err)
	}
	var errs []error
	n := 0
	for _, sb := range list.Items {
		if sb.GetMetadata().GetNamespace() != Namespace {
			continue // labels alone are not enough: only our namespace
		}
		// A sandbox whose teardown was cut by a kill can be mid-stop (its
		// shim exiting): retry briefly before giving up.
		var err error // hand-written, not wait: apimachinery's wait would bring klog into this Kubernetes-free package
		for try := 0; try < 10; try++ {
			if err = p.removeSandbox(ctx, sb.Id); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removePodCgroup(sb.GetMetadata().GetUid())
		n++
	}
	return n, errors.Join(errs...)
}

// Leftovers lists the experiment's sandboxes in coldbench's CRI namespace.
func (p *Platform) Leftovers(ctx context.Context, experimentID string) ([]bench.Leftover, error) {
	sel := map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: experimentID}
	list, err := p.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("listing the experiment's sandboxes: %w", err)
	}
	l := bench.Leftover{Kind: "sandbox"}
	for _, sb := range list.Items {
		if sb.GetMetadata().GetNamespace() != Namespace {
			continue
		}
		l.Count++
		if len(l.Names) < 3 {
			l.Names = append(l.Names, sb.GetMetadata().GetName()+" ("+sb.Id[:min(len(sb.Id), 12)]+")")
		}
	}
	return []bench.Leftover{l}, nil
}

// CleanFlags are `coldbench clean`'s flags that reach this containerd.
func (p *Platform) CleanFlags() []string {
	return []string{"--platform", Name, "--endpoint", p.endpoint}
}

var _ bench.Inventory = (*Platform)(nil)

func (p *Platform) removeSandbox(ctx context.Context, id string) error {
	if _, err := p.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stopping sandbox %s: %w", id, err)
	}
	cs, err := p.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: id}})
	if err != nil {
		return fmt.Errorf("listing containers of sandbox %s: %w", id, err)
	}
	for _, c := range cs.Containers {
		// A start cut by a kill can still complete inside containerd after
		// StopPodSandbox ran: stop each container itself before removing it.
		if _, err := p.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: 0}); err != nil {
			return fmt.Errorf("stopping container %s: %w", c.Id, err)
		}
		if err := p.removeContainer(ctx, c.Id); err != nil {
			return err
		}
	}
	if _, err := p.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("removing sandbox %s: %w", id, err)
	}
	p.removed.add(id) // its shim should exit now (shims.go)
	return nil
}

// removeContainer removes a stopped container. containerd's CRI can lose
// track of a task whose StartContainer was cut by a client kill (status
// "StartError", task left stopped; seen with containerd 1.6.20, which users
// may still run under the node backend): CRI then refuses the removal with
// "cannot delete running task" forever, so the stale task is deleted through
// containerd's own task API (same socket, CRI's namespace) and the removal
// retried.
func (p *Platform) removeContainer(ctx context.Context, id string) error {
	_, err := p.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
	if err == nil || !strings.Contains(err.Error(), "cannot delete running task") {
		if err != nil {
			return fmt.Errorf("removing container %s: %w", id, err)
		}
		return nil
	}
	nsCtx := metadata.AppendToOutgoingContext(ctx, "containerd-namespace", criNamespace)
	if _, terr := tasks.NewTasksClient(p.conn).Delete(nsCtx, &tasks.DeleteTaskRequest{ContainerID: id}); terr != nil {
		return fmt.Errorf("removing container %s: %w (deleting its stale task through containerd's task API: %v)", id, err, terr)
	}
	if _, err := p.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("removing container %s after deleting its stale task: %w", id, err)
	}
	return nil
}

// criNamespace is the containerd namespace of CRI's objects.
const criNamespace = "k8s.io"
