// Package knative is the Knative platform: the study's experiments through a
// Knative ingress on any cluster with Knative Serving. A cell of N instances
// is N Knative Services, defined but without a pod, that get one GET each
// through the ingress, all released together.
package knative

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// Platform runs cells as Knative Services. It holds the clients; a run's
// state (watches, ingress, pools) is its session's.
type Platform struct {
	kube kubernetes.Interface
	dyn  dynamic.Interface
	host string // API server, for messages
	log  *slog.Logger

	spec *Spec
	exp  *bench.Experiment
}

// session is one run (Open to Close): the Platform's clients plus the
// run's watches, ingress and bookkeeping.
type session struct {
	*Platform
	id      string
	ingress Ingress
	tr      *tracker
	restore func(context.Context) error // undoes --configure-cluster; nil: nothing to undo
	proto   protocol                    // which services a cell uses, and their fate (protocol.go)
	// measurements observe each release (measure.go): the pods one, the
	// watches' evidence, and any other measure_*.go registers.
	measurements bench.Measurements

	done map[bench.CellKey]bool // cells earlier sessions recorded (--resume)
	// createSlots bounds the ksvc creations in flight across the session
	// (the pool readies all its sets at once): maxCreatesInFlight.
	createSlots chan struct{}

	// A density run's (density.go): the services kept with their pod, and
	// whether the lack of a node MemAvailable was said.
	density bool
	kept    []target
	// dropped: services of a step that did not answer and whose deletion
	// an interrupt cut (RemoveKept deletes them); keptPod: each kept
	// service's pod when first counted running (KeptRunning).
	dropped   []target
	keptPod   map[string]types.UID
	memWarned bool
}

// Options locate the cluster.
type Options struct {
	Kubeconfig, Context string
}

// RESTConfig loads a kubeconfig like kubectl does (KUBECONFIG, ~/.kube/config,
// in-cluster), with an optional explicit file and context.
func RESTConfig(o Options) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig (--kubeconfig, --context, KUBECONFIG): %w", err)
	}
	// Hundreds of services are created and deleted at once: the default
	// client-side limit (5 qps) would pace the experiment itself.
	cfg.QPS, cfg.Burst = 200, 400
	// The API server warns about the same pod-spec defaults on every ksvc
	// created; say it once.
	cfg.WarningHandler = rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true})
	return cfg, nil
}

// New builds the platform for exp (whose Spec.Knative is complete). It logs
// through log (nil: not at all).
func New(exp *bench.Experiment, log *slog.Logger) (*Platform, error) {
	k := SpecOf(exp)
	cfg, err := RESTConfig(Options{Kubeconfig: k.Kubeconfig, Context: k.Context})
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return NewWithClients(exp, kube, dyn, cfg.Host, log), nil
}

// NewWithClients is New with given clients (tests use fakes).
func NewWithClients(exp *bench.Experiment, kube kubernetes.Interface, dyn dynamic.Interface, host string, log *slog.Logger) *Platform {
	return &Platform{kube: kube, dyn: dyn, host: host, log: bench.LoggerOrDiscard(log), spec: SpecOf(exp), exp: exp}
}

func (p *Platform) Name() string { return Name }

// Close has nothing to release: a run's watches are its session's.
func (p *Platform) Close() error { return nil }

func (p *Platform) resolveIngress(ctx context.Context, k *Spec) (Ingress, error) {
	if k.Ingress != "" {
		return Ingress{Address: k.Ingress, Layer: "given", How: "--ingress"}, nil
	}
	return DetectIngress(ctx, p.kube)
}

// Open sets the run up: the ingress (given or detected), the namespace,
// allow-zero-initial-scale with --configure-cluster (Close restores it) and
// the watches on the experiment's objects. exp is the experiment the
// platform was made for; Checks has found it can run.
func (p *Platform) Open(ctx context.Context, _ *bench.Experiment, id string, done map[bench.CellKey]bool) (bench.Session, error) {
	in, err := p.resolveIngress(ctx, p.spec)
	if err != nil {
		return nil, err
	}
	s := &session{Platform: p, id: id, ingress: in, done: done, createSlots: make(chan struct{}, maxCreatesInFlight),
		density: p.exp.Spec.Density != nil}
	if s.proto, err = newProto(s); err != nil {
		return nil, err
	}
	if err := p.ensureNamespace(ctx); err != nil {
		return nil, err
	}
	if p.spec.ConfigureCluster {
		if s.restore, err = p.allowZeroInitialScale(ctx); err != nil {
			return nil, err
		}
	}
	tr := newTracker()
	if err := tr.start(ctx, p.kube, p.dyn, p.spec.Namespace, id); err != nil {
		if s.restore != nil {
			if rerr := s.restore(context.WithoutCancel(ctx)); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restoring allow-zero-initial-scale: %w", rerr))
			}
		}
		return nil, err
	}
	s.tr = tr
	for _, mk := range measurementKinds {
		if m := mk(s); m != nil { // nil: turned off (e.g. --footprint=false)
			s.measurements = append(s.measurements, m)
		}
	}
	return s, nil
}

// Describe records the cluster's versions and each runtime's handler.
func (s *session) Describe(ctx context.Context, tb *results.Testbed) {
	tb.PlatformVersion = map[string]string{"api_server": s.host}
	if v, err := s.kube.Discovery().ServerVersion(); err == nil {
		tb.PlatformVersion["kubernetes"] = v.GitVersion
	}
	tb.PlatformVersion["knative_serving"] = s.knativeVersion(ctx)
	tb.PlatformVersion["ingress"] = s.ingress.Layer + " " + s.ingress.Address + " (" + s.ingress.How + ")"
	tb.PlatformVersion["ingress_class"] = ingressClass(ctx, s.kube)
	tb.PlatformVersion["protocol"] = s.proto.name()
	tb.PlatformVersion["http"] = s.spec.HTTP
	if nodes, err := s.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, n := range nodes.Items {
			tb.PlatformVersion["node/"+n.Name] = n.Status.NodeInfo.ContainerRuntimeVersion + ", kubelet " + n.Status.NodeInfo.KubeletVersion + ", " + n.Status.NodeInfo.KernelVersion
		}
	}
	tb.RuntimeVersions = map[string]string{}
	for _, r := range s.exp.Spec.Runtimes {
		if r.Handler == "" {
			tb.RuntimeVersions[r.Name] = "cluster default (no RuntimeClass)"
			continue
		}
		if rc, err := s.kube.NodeV1().RuntimeClasses().Get(ctx, r.Handler, metav1.GetOptions{}); err == nil {
			tb.RuntimeVersions[r.Name] = "RuntimeClass " + rc.Name + " -> handler " + rc.Handler
		}
	}
}

func (p *Platform) ensureNamespace(ctx context.Context) error {
	// Given, not created: nothing to do (and no right to create namespaces
	// needed, see deploy/rbac.yaml).
	if _, err := p.kube.CoreV1().Namespaces().Get(ctx, p.spec.Namespace, metav1.GetOptions{}); err == nil {
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.spec.Namespace,
		Labels: map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal}}}
	_, err := p.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err == nil {
		p.log.Info("created namespace", "namespace", p.spec.Namespace)
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %q: %w", p.spec.Namespace, err)
	}
	return nil
}

// allowZeroInitialScale switches the setting on for the run and returns
// what puts back the previous value once nothing of the run depends on it
// (nil: it was on already).
func (p *Platform) allowZeroInitialScale(ctx context.Context) (func(context.Context) error, error) {
	cms := p.kube.CoreV1().ConfigMaps(ServingNamespace)
	cm, err := cms.Get(ctx, "config-autoscaler", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading config-autoscaler: %w", err)
	}
	prev, had := cm.Data["allow-zero-initial-scale"]
	if prev == "true" {
		return nil, nil
	}
	patch := `{"data":{"allow-zero-initial-scale":"true"}}`
	if _, err := cms.Patch(ctx, "config-autoscaler", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return nil, fmt.Errorf("setting allow-zero-initial-scale: %w", err)
	}
	p.log.Info("set allow-zero-initial-scale=true in config-autoscaler; restored at the end of the run")
	restore := func(ctx context.Context) error {
		undo := `{"data":{"allow-zero-initial-scale":null}}`
		if had {
			undo = fmt.Sprintf(`{"data":{"allow-zero-initial-scale":%q}}`, prev)
		}
		_, err := cms.Patch(ctx, "config-autoscaler", types.MergePatchType, []byte(undo), metav1.PatchOptions{})
		return err
	}
	return restore, nil
}

// target is one service of a cell, once Ready.
type target struct {
	name, host, revision string
	err                  *results.Attempt // set when the service never got Ready
	owned                bool             // created by this experiment (deleted after its sample)
}

// ColdStart creates or reuses the cell's services (as its protocol says),
// waits until they are Ready with no pod, releases one GET per service
// together, reads the phases the watches saw, and has the protocol dispose
// of the services before it returns (the next cell starts on a quiet node).
// Every attempt carries the step's set-up and teardown times.
func (s *session) ColdStart(ctx context.Context, cell bench.Cell) []results.Attempt {
	out, targets, setup := s.coldStart(ctx, cell)
	// Failed or not, the cell is over for its protocol: a pool counts it
	// as measured (it is recorded), so that the pool still goes once its
	// last cell is.
	began := time.Now()
	if err := s.proto.after(ctx, cell, targets); err != nil && ctx.Err() == nil {
		// The measurement stands; Close's Clean removes what is left (also
		// after an interrupt, which is why that case is not worth a warning).
		s.log.Warn("teardown of the cell's services did not finish", "runtime", cell.Runtime.Name, "n", cell.Scale,
			"iteration", cell.Iteration, "err", err)
	}
	stampStep(out, setup, time.Since(began))
	return out
}

// stampStep gives every attempt of a step its untimed set-up and teardown.
func stampStep(out []results.Attempt, setup, teardown time.Duration) {
	step := &results.Step{SetupNS: setup.Nanoseconds(), TeardownNS: teardown.Nanoseconds()}
	for i := range out {
		out[i].Step = step
	}
}

// coldStart is ColdStart but the teardown: it returns the attempts, the
// services the cell used (for its protocol's after) and how long the
// untimed set-up took (prepare, ready, waitRoutes, beforeRelease).
func (s *session) coldStart(ctx context.Context, cell bench.Cell) ([]results.Attempt, []target, time.Duration) {
	began := time.Now()
	failAll := func(class string, err error) []results.Attempt {
		out := make([]results.Attempt, cell.Scale)
		for i := range out {
			out[i] = results.Attempt{Instance: i, ErrorClass: class, Error: err.Error(), Start: time.Now()}
			if ctx.Err() != nil {
				out[i].ErrorClass = results.ErrCanceled
			}
		}
		return out
	}
	if err := s.proto.prepare(ctx, cell); err != nil {
		return failAll(results.ErrPlatform, err), nil, time.Since(began)
	}
	targets, err := s.ready(ctx, cell, s.proto.set(cell))
	if err != nil {
		return failAll(results.ErrPlatform, err), targets, time.Since(began)
	}
	s.waitRoutes(ctx, targets)
	if err := s.proto.beforeRelease(ctx, targets); err != nil {
		return failAll(results.ErrPlatform, err), targets, time.Since(began)
	}
	setup := time.Since(began)
	return s.measure(ctx, cell, targets), targets, setup
}

// runtimeIndex is the cell's runtime's place in the experiment (service
// names carry it).
func (p *Platform) runtimeIndex(cell bench.Cell) int {
	for i, r := range p.exp.Spec.Runtimes {
		if r.Name == cell.Runtime.Name {
			return i
		}
	}
	return 0
}

// maxCreatesInFlight bounds the ksvc creations sent at once, for the
// reasons maxDeletesInFlight gives (teardown.go): the API server and
// Knative's webhook do the work, and more in flight only queue there.
const maxCreatesInFlight = maxDeletesInFlight

// ready creates the services of the cell's set (fresh: one set per cell;
// pool and classic: created once, then reused) and waits until each is
// Ready. A service that does not get Ready becomes a failed attempt with
// the reason Knative gives.
func (s *session) ready(ctx context.Context, cell bench.Cell, set int) ([]target, error) {
	rtIndex := s.runtimeIndex(cell)
	ns := s.spec.Namespace
	ts := make([]target, cell.Scale)
	created := time.Now()
	// Creation and readiness share the readiness timeout: an API server
	// that is down delays creation (untimed) up to that long.
	rctx, cancel := context.WithTimeout(ctx, s.spec.ReadinessTimeout.Duration)
	defer cancel()
	cellLabel := s.proto.label(rtIndex, cell, set)
	// Created maxCreatesInFlight at a time (each goroutine writes only its
	// own ts[i]): one by one, each create's round trip through the API
	// server and Knative's webhook adds up to minutes at the study's N.
	var wg sync.WaitGroup
	slots := s.createSlots
	for i := range ts {
		name := ServiceName(cell.ExperimentID, rtIndex, cell.Scale, set, i)
		ts[i].name = name
		if _, ok := s.tr.service(ns, name); ok {
			ts[i].owned = true
			continue // pool, classic: made by an earlier iteration
		}
		spec := ServiceSpec{Name: name, Namespace: ns, ExperimentID: cell.ExperimentID, Cell: cellLabel,
			Runtime: cell.Runtime, Window: s.spec.Window, Target: s.spec.Target}
		if s.density && !cell.Warmup {
			spec.PodRetention = densityRetention // kept by Add once it answered
		}
		svc := spec.Build()
		slots <- struct{}{}
		wg.Add(1)
		go func(t *target, i int) {
			defer func() { <-slots; wg.Done() }()
			err := createService(rctx, s.dyn.Resource(ServiceGVR).Namespace(ns), svc, cell.ExperimentID)
			// Ours to delete unless the name is someone else's: a create
			// whose answer was lost (a timeout) may have made it, and
			// deleting one that does not exist is harmless.
			t.owned = !errors.Is(err, ErrForeign)
			if err != nil {
				a := results.Attempt{Instance: i, ErrorClass: results.ErrPlatform, Error: fmt.Sprintf("creating ksvc %q: %v", t.name, err)}
				if containsAny(err.Error(), "runtimeClassName", "RuntimeClass") {
					a.ErrorClass = results.ErrRuntime
				}
				t.err = &a
			}
		}(&ts[i], i)
	}
	wg.Wait()
	pending := func() bool {
		all := true
		for i := range ts {
			if ts[i].err != nil || ts[i].host != "" {
				continue
			}
			u, ok := s.tr.service(ns, ts[i].name)
			if !ok {
				all = false
				continue
			}
			st := readServiceStatus(u)
			switch {
			case st.Ready && st.URL != "":
				pu, err := url.Parse(st.URL)
				if err != nil {
					ts[i].err = &results.Attempt{Instance: i, ErrorClass: results.ErrPlatform, Error: fmt.Sprintf("ksvc %q has status.url %q: %v", ts[i].name, st.URL, err)}
					continue
				}
				ts[i].host, ts[i].revision = pu.Host, st.Revision
			case st.Failed:
				ts[i].err = &results.Attempt{Instance: i, ErrorClass: classifyNotReady(st), Error: fmt.Sprintf("ksvc %q not Ready: %s: %s", ts[i].name, st.Reason, st.Message)}
			default:
				all = false
			}
		}
		return all
	}
	if err := s.tr.waitFor(rctx, pending); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.notReadyInTime(ctx, ns, ts)
	}
	s.log.Debug("services ready", "n", cell.Scale, "took", time.Since(created))
	return ts, nil
}

// apiCheckTimeout bounds the one request that asks, after a readiness
// timeout, whether the API server answers at all.
const apiCheckTimeout = 5 * time.Second

// notReadyInTime records a failure for every service of ts that got neither
// Ready nor a failure before the readiness timeout, with the reason its
// status gives. If the API server does not answer now, that is the cause
// (class platform): the tracker's watch was blind and Knative's
// controllers could not work either, whatever the last status seen says.
func (s *session) notReadyInTime(ctx context.Context, ns string, ts []target) {
	cctx, cancel := context.WithTimeout(ctx, apiCheckTimeout)
	_, apiErr := s.dyn.Resource(ServiceGVR).Namespace(ns).List(cctx, metav1.ListOptions{Limit: 1})
	cancel()
	down := unreachable(apiErr) && ctx.Err() == nil
	for i := range ts {
		if ts[i].err != nil || ts[i].host != "" {
			continue
		}
		msg := fmt.Sprintf("ksvc %q not Ready after %v", ts[i].name, s.spec.ReadinessTimeout.Duration)
		class := results.ErrTimeout
		if u, ok := s.tr.service(ns, ts[i].name); ok {
			st := readServiceStatus(u)
			msg += ": " + st.Reason + ": " + st.Message
			class = notReadyInTimeClass(st)
		}
		if down {
			class = results.ErrPlatform
			msg += fmt.Sprintf("; the API server does not answer: %v", apiErr)
		}
		ts[i].err = &results.Attempt{Instance: i, ErrorClass: class, Error: msg}
	}
}

// Knative's network probe: answered by the activator or queue-proxy
// themselves, never forwarded to the function and not counted as load, so
// it tells whether the ingress routes the host without waking anything.
const (
	probeHeader     = "K-Network-Probe"
	probeHashHeader = "K-Network-Hash"
)

// waitRoutes waits (untimed) until the ingress routes every Ready service:
// a ksvc can be Ready a moment before the ingress has loaded its route, and
// a GET sent then measures the ingress's 404, not a cold start.
func (s *session) waitRoutes(ctx context.Context, ts []target) {
	rctx, cancel := context.WithTimeout(ctx, s.spec.ReadinessTimeout.Duration)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	// A bounded number of probes in flight: a thousand at once would hold a
	// thousand connections and their buffers (on both ends, when the ingress
	// is local) for nothing; it would not be faster.
	inFlight := make(chan struct{}, maxRouteProbes)
	var wg sync.WaitGroup
	for i := range ts {
		if ts[i].err != nil {
			continue
		}
		wg.Add(1)
		go func(t *target, i int) {
			defer wg.Done()
			last := "none sent: every probe slot was busy"
			err := poll(rctx, 100*time.Millisecond, func(context.Context) (bool, error) {
				select {
				case inFlight <- struct{}{}:
				case <-rctx.Done():
					return false, nil
				}
				code, err := probeRoute(rctx, client, s.ingress.Address, t.host)
				<-inFlight
				if err == nil && code == http.StatusOK {
					return true, nil
				}
				last = fmt.Sprintf("HTTP %d", code)
				if err != nil {
					last = err.Error()
				}
				return false, nil
			})
			if err != nil && ctx.Err() == nil { // rctx ended: the readiness timeout
				t.err = &results.Attempt{Instance: i, ErrorClass: results.ErrIngress,
					Error: fmt.Sprintf("ingress %s does not route %s after %v (last probe: %s)", s.ingress.Address, t.host, s.spec.ReadinessTimeout.Duration, last)}
			}
		}(&ts[i], i)
	}
	wg.Wait()
}

// maxRouteProbes bounds the route probes in flight (waitRoutes).
const maxRouteProbes = 32

func probeRoute(ctx context.Context, client *http.Client, addr, host string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	req.Header.Set(probeHeader, "probe")
	req.Header.Set(probeHashHeader, "coldbench")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && resp.Header.Get(probeHashHeader) != "coldbench" {
		return 0, fmt.Errorf("HTTP 200 without the probe's %s echoed: not Knative's probe handler", probeHashHeader)
	}
	return resp.StatusCode, nil
}

func classifyNotReady(st serviceStatus) string {
	switch {
	case containsAny(st.Message, "RuntimeClass", "runtimeclass", "runtimeClassName"):
		return results.ErrRuntime
	case containsAny(st.Reason+st.Message, "image", "Image", "ContainerMissing"):
		return results.ErrImage
	}
	return results.ErrPlatform
}

// waitScaledToZero (classic, pool) waits, by watching, until no pod of the
// cell's revisions is left.
func (s *session) waitScaledToZero(ctx context.Context, ts []target) error {
	wctx, cancel := context.WithTimeout(ctx, s.spec.ScaleToZeroTimeout.Duration)
	defer cancel()
	err := s.tr.waitFor(wctx, func() bool {
		for _, t := range ts {
			if t.revision != "" && s.tr.livePods(t.revision) > 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pods still running after %v: the revisions did not scale to zero (check stable-window and scale-to-zero-grace-period)", s.spec.ScaleToZeroTimeout.Duration)
	}
	return nil
}

// Clean deletes coldbench-labelled ksvcs in the namespace (of one
// experiment, or all of coldbench's) and waits until they and their pods are
// gone. An overloaded or restarting API server only slows it: its transient
// errors are retried. It is bounded (cleanWait) all the same: a deletion held
// by a finalizer whose controller is down never ends.
func (p *Platform) Clean(ctx context.Context, experimentID string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, cleanWait)
	defer cancel()
	sel := bench.LabelManagedBy + "=" + bench.LabelManagedByVal
	if experimentID != "" {
		sel += "," + bench.LabelExperiment + "=" + experimentID
	}
	ns := p.spec.Namespace
	svcs := p.dyn.Resource(ServiceGVR).Namespace(ns)
	// A 404 says Knative is not installed, or (kubernetes#115241) that a
	// just-started API server has not yet filled its CRD caches: retried
	// for notServedPatience when discovery says ksvcs are served.
	patience := &notServedClock{}
	list, err := retryList(ctx, func(ctx context.Context) (*unstructured.UnstructuredList, error) {
		l, err := svcs.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if apierrors.IsNotFound(err) && patience.patient() && p.servesKsvcs() {
			return l, apierrors.NewServiceUnavailable("listing ksvcs: 404 although discovery serves them: " + err.Error())
		}
		return l, err
	})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("listing coldbench ksvcs in %q: %w", ns, err)
	}
	names := make([]string, len(list.Items))
	for i, s := range list.Items {
		names[i] = s.GetName()
	}
	// Foreground (deleteService): a ksvc stays listed until its revisions,
	// Deployments, ReplicaSets and pods are gone. In the background, a
	// ReplicaSet that had not yet made the pod of a killed run's cold start
	// could make it after Clean saw no pod, and a resumed run re-creating
	// that service name would find it (recorded as not_cold).
	var pending atomic.Int64
	failed := deleteServices(ctx, svcs, names, &pending)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(failed)) {
		errs = append(errs, failed[name])
	}
	if err := p.waitCleaned(ctx, sel, failed); err != nil {
		errs = append(errs, err)
	}
	return len(names) - len(failed), errors.Join(errs...)
}

// servesKsvcs says whether discovery lists Knative Services.
func (p *Platform) servesKsvcs() bool {
	_, err := p.kube.Discovery().ServerResourcesForGroupVersion(ServiceGVR.GroupVersion().String())
	return err == nil
}

// waitCleaned waits until no ksvc selected by sel is being deleted and no
// pod Knative made for one is left, so that "clean" means clean. Only pods
// Knative made for a ksvc are waited for: any other pod carrying
// coldbench's labels is not coldbench's and would never go. A ksvc whose
// delete failed (in failed) is not waited for, nor are its pods: Clean
// reports it.
func (p *Platform) waitCleaned(ctx context.Context, sel string, failed map[string]error) error {
	ns := p.spec.Namespace
	svcs := p.dyn.Resource(ServiceGVR).Namespace(ns)
	lastLog := time.Now()
	var last error // the last transient error, retried
	deleting, pods := -1, -1
	hurried := map[types.UID]bool{}
	limit := "its bound"
	if d, ok := ctx.Deadline(); ok {
		limit = time.Until(d).Round(time.Second).String() // Clean's cleanWait or the caller's shorter bound
	}
	err := poll(ctx, time.Second, func(ctx context.Context) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err() // poll's first call does not look
		}
		left, err := svcs.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err == nil {
			var pl *corev1.PodList
			pl, err = p.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel + "," + LabelService})
			if err == nil {
				pods = 0
				var todo []*corev1.Pod
				for i := range pl.Items {
					pod := &pl.Items[i]
					if failed[pod.Labels[LabelService]] == nil {
						pods++
						if draining(pod) && !hurried[pod.UID] {
							hurried[pod.UID] = true
							todo = append(todo, pod)
						}
					}
				}
				shortenGrace(ctx, p.kube.CoreV1().Pods(ns), todo, p.log) // teardown.go: hurryGrace says why
			}
		}
		if err != nil {
			if retryable(ctx, err) {
				last = err
				return false, nil
			}
			return false, fmt.Errorf("listing the ksvcs being deleted and their pods: %w", err)
		}
		deleting = 0
		for _, s := range left.Items {
			if s.GetDeletionTimestamp() != nil {
				deleting++
			}
		}
		if deleting == 0 && pods == 0 {
			return true, nil
		}
		if time.Since(lastLog) >= progressEvery {
			p.log.Info("clean: waiting for deleted ksvcs and their pods to go", "namespace", ns, "ksvcs", deleting, "pods", pods)
			lastLog = time.Now()
		}
		return false, nil
	})
	if err == nil || !errors.Is(err, ctx.Err()) {
		return err
	}
	msg := fmt.Sprintf("waiting for the ksvcs and their pods to go (up to %s; a finalizer whose controller is down holds them?): last seen %d ksvc(s) being deleted, %d pod(s)", limit, deleting, pods)
	if deleting < 0 {
		msg = fmt.Sprintf("waiting for the ksvcs and their pods to go (up to %s): the API server never answered the list (last error: %v)", limit, last)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// retryList calls list until it succeeds, fails for good, or ctx ends
// (then with the last transient error).
func retryList[T any](ctx context.Context, list func(context.Context) (T, error)) (T, error) {
	var v T
	var err error
	werr := deleteBackoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		v, err = list(ctx)
		return err == nil || !retryable(ctx, err), nil
	})
	if werr != nil {
		if err == nil {
			return v, werr
		}
		return v, fmt.Errorf("%w (retried until %v)", err, werr)
	}
	return v, err
}

// cleanWait bounds Clean's wait for what it deleted to be gone.
const cleanWait = 5 * time.Minute

// Close deletes what is left of the run (classic services, pools not yet
// deleted, what an interrupt cut short), restores cluster settings changed
// for it, and stops the watches. Each step has a context of its own: the
// run's may be canceled already (Ctrl-C), and a long clean must not leave
// the setting unrestored.
func (s *session) Close() error {
	var errs []error
	if s.id != "" { // Clean("") would take every coldbench object
		if _, err := s.Clean(context.Background(), s.id); err != nil { // bounded by cleanWait
			errs = append(errs, fmt.Errorf("removing what experiment %s left: %w", s.id, err))
		}
	}
	if s.restore != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.restore(ctx); err != nil {
			errs = append(errs, fmt.Errorf("restoring allow-zero-initial-scale: %w", err))
		}
		cancel()
	}
	if s.tr != nil {
		s.tr.close()
	}
	return errors.Join(errs...)
}
