package knative

// ColdStart's orchestration against client-go fakes. Nothing runs Knative's
// controllers here, so a lab plays them: a goroutine watches the ksvcs the
// platform creates and makes them Ready (or not) with a URL and a revision
// Deployment at zero; an httptest server is the ingress, routing by Host
// header, answering Knative's route probe, and, for a real GET, doing what
// the activator, the Deployment controller and the kubelet do (scale to one,
// create the pod, move it through scheduled, sandbox, containers started,
// ready) before the function answers with its process-start header. Every
// step waits until the platform's own watches have seen it, so the phases it
// records follow the causal order of a real cold start.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/probe"
	"github.com/coldbench/coldbench/pkg/results"
)

// behaviour is how the lab treats one service.
type behaviour struct {
	neverReady bool          // Ready stays Unknown (RevisionMissing)
	readyFalse string        // Ready=False, reason RevisionFailed, with this message
	routeDelay time.Duration // the ingress routes the host this long after Ready
	status     int           // the function answers with this status (0: 200)
	resetConn  bool          // the ingress drops the connection of the real GET
	// podFailure: "unschedulable", "refused" (its node's kubelet refuses it
	// at admission: OutOfcpu), "image" or "crash": the pod never gets
	// ready and the request hangs until the client gives up.
	podFailure string
	// waitForRoom: the pod is unschedulable (Insufficient cpu) this long,
	// then scheduled, and goes on as usual.
	waitForRoom time.Duration
	// refusedFirst: the first pod is refused by its node (OutOfcpu); the
	// ReplicaSet's replacement goes on as usual.
	refusedFirst bool
	// scaleDownAfter: the pod goes (and the Deployment back to zero) this
	// long after the reply; 0 = it stays until its ksvc is deleted.
	scaleDownAfter time.Duration
	// podAtReady: the revision gets a pod as soon as it is created, as on a
	// cluster that ignores initial-scale 0; requests find it warm.
	podAtReady bool
}

type labOptions struct {
	id          string // experiment id (default: a new one)
	protocol    string
	readiness   time.Duration // ReadinessTimeout (default 10s)
	scaleToZero time.Duration // ScaleToZeroTimeout (default 30s)
	behave      func(instance int) behaviour
	// gateCreate, if set, runs before each ksvc create the platform sends,
	// outside the fake client's lock (a reactor runs under it, so a reactor
	// that blocks blocks every call); an error fails that create.
	gateCreate  func() error
	ingressAddr string           // instead of the lab's ingress (e.g. a closed port)
	objects     []runtime.Object // ksvcs that exist before the run
	poolSize    int              // pool protocol's sets (default: bench's)
	http        string           // measured requests' HTTP (default http1)
	// hidePodEvents: the pod watch never delivers these pods' events (a
	// watch running far behind); lists still show them.
	hidePodEvents func(pod string) bool
	density       *bench.DensitySpec // a density run's (spec.scales dropped)
}

// labSvc is the lab's view of one ksvc.
type labSvc struct {
	name, host, rev string
	labels          map[string]string
	b               behaviour
	routedAt        time.Time
	deleted         bool
	// live is the pod serving requests (warm), started at liveStart.
	live      string
	liveStart time.Time
	// staged: the pod's failure (podFailure) was made and the platform's
	// watches saw it, before the client gave up on the request.
	staged bool
	// kmu serialises changes to the revision's Deployment and pods with
	// the ksvc's deletion, so that nothing is made after its cascade.
	kmu sync.Mutex
}

// podGone is a pod the lab removed (scale to zero), and when.
type podGone struct {
	pod string
	at  time.Time
}

type lab struct {
	t    *testing.T
	ns   string
	id   string
	exp  *bench.Experiment
	kube *fake.Clientset
	dyn  *dynamicfake.FakeDynamicClient
	p    *Platform
	s    *session // opened by newLab, closed by closeSession or at the test's end
	shut sync.Once
	ing  *httptest.Server
	o    labOptions

	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup // controller, scale-downs

	mu     sync.Mutex
	byName map[string]*labSvc
	byHost map[string]*labSvc
	hits   map[string]int // real GETs per host
	gone   []podGone
	podSeq int
	strays atomic.Int64 // real GETs for a host not (yet) routed
}

func newLab(t *testing.T, o labOptions) *lab {
	t.Helper()
	if o.protocol == "" {
		o.protocol = ProtocolFresh
	}
	if o.readiness == 0 {
		o.readiness = 10 * time.Second
	}
	if o.scaleToZero == 0 {
		o.scaleToZero = 30 * time.Second
	}
	if o.behave == nil {
		o.behave = func(int) behaviour { return behaviour{} }
	}
	exp := bench.Default()
	exp.Spec.Platform = Name
	exp.Spec.Runtimes = bench.RuntimesFromNames([]string{"runc"}, "")
	exp.Spec.SetSection(Name, &Spec{Namespace: "cb-test", Protocol: o.protocol,
		ReadinessTimeout: bench.Duration{Duration: o.readiness}, ScaleToZeroTimeout: bench.Duration{Duration: o.scaleToZero},
		PoolSize: o.poolSize, HTTP: o.http})
	// No footprint: the fake cluster has no node agent nor kubelet, and its
	// settle would only delay every cell (measure_settled_test.go tests it).
	exp.Spec.Footprint = &bench.FootprintSpec{Off: true}
	if o.density != nil {
		exp.Spec.Scales, exp.Spec.Density = nil, o.density
	}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	if o.id == "" {
		o.id = bench.NewExperimentID(time.Now())
	}
	l := &lab{t: t, ns: "cb-test", id: o.id, exp: exp, o: o,
		byName: map[string]*labSvc{}, byHost: map[string]*labSvc{}, hits: map[string]int{}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.kube = fake.NewClientset()
	if hide := o.hidePodEvents; hide != nil {
		l.kube.PrependWatchReactor("pods", func(a clienttesting.Action) (bool, watch.Interface, error) {
			var opts metav1.ListOptions
			if wa, ok := a.(clienttesting.WatchActionImpl); ok {
				opts = wa.ListOptions
			}
			w, err := l.kube.Tracker().Watch(a.GetResource(), a.GetNamespace(), opts)
			if err != nil {
				return false, nil, err
			}
			return true, watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				p, ok := e.Object.(*corev1.Pod)
				return e, !ok || !hide(p.Name)
			}), nil
		})
	}
	l.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{ServiceGVR: "ServiceList"}, o.objects...)
	// Like Traefik: HTTP/1.1 and HTTP/2 cleartext on one port.
	l.ing = httptest.NewUnstartedServer(http.HandlerFunc(l.serveIngress))
	l.ing.Config.Protocols = new(http.Protocols)
	l.ing.Config.Protocols.SetHTTP1(true)
	l.ing.Config.Protocols.SetUnencryptedHTTP2(true)
	l.ing.Start()
	var dyn dynamic.Interface = l.dyn
	if o.gateCreate != nil {
		dyn = gatedDyn{dyn, o.gateCreate}
	}
	l.p = NewWithClients(exp, l.kube, dyn, "https://fake-api", nil)
	addr := strings.TrimPrefix(l.ing.URL, "http://")
	if o.ingressAddr != "" {
		addr = o.ingressAddr
	}
	SpecOf(exp).Ingress = addr
	octx, ocancel := context.WithTimeout(context.Background(), time.Minute)
	defer ocancel()
	sess, err := l.p.Open(octx, exp, o.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.s = sess.(*session)

	w, err := l.svcs().Watch(l.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.bg.Add(1)
	go l.controller(w)
	t.Cleanup(func() {
		// Close cleans up while the controller still runs (it deletes the
		// pods of deleted ksvcs), then the lab stops.
		l.closeSession()
		l.ing.Close()
		l.cancel()
		w.Stop()
		l.bg.Wait()
	})
	return l
}

// closeSession closes the session, once.
func (l *lab) closeSession() {
	l.shut.Do(func() {
		if err := l.s.Close(); err != nil {
			l.t.Errorf("Close: %v", err)
		}
	})
}

func (l *lab) svcs() dynamic.ResourceInterface {
	return l.dyn.Resource(ServiceGVR).Namespace(l.ns)
}

func (l *lab) cell(scale, iteration int, timeout time.Duration) bench.Cell {
	return bench.Cell{ExperimentID: l.id, Runtime: l.exp.Spec.Runtimes[0], Scale: scale, Iteration: iteration,
		RequestTimeout: timeout, ProbeInterval: l.exp.Spec.ProbeInterval.Duration}
}

// name is the ksvc of the lab's runtime for scale, iteration and instance.
func (l *lab) name(scale, iteration, instance int) string {
	return ServiceName(l.id, 0, scale, iteration, instance)
}

func (l *lab) coldStart(c bench.Cell) []results.Attempt {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return l.coldStartCtx(ctx, c)
}

func (l *lab) coldStartCtx(ctx context.Context, c bench.Cell) []results.Attempt {
	l.t.Helper()
	t0 := time.Now()
	out := l.s.ColdStart(ctx, c)
	l.t.Logf("ColdStart N=%d took %v", c.Scale, time.Since(t0))
	if len(out) != c.Scale {
		l.t.Fatalf("ColdStart returned %d attempts for N = %d", len(out), c.Scale)
	}
	return out
}

func (l *lab) tracker() *tracker {
	return l.s.tr
}

// controller plays Knative Serving: a new ksvc gets a revision Deployment
// at zero and a status; a deleted one takes its Deployment and pods along.
func (l *lab) controller(w watch.Interface) {
	defer l.bg.Done()
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		switch ev.Type {
		case watch.Added:
			l.reconcile(u)
		case watch.Deleted:
			l.remove(u.GetName())
		}
	}
}

func instanceOf(name string) int {
	i, _ := strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
	return i
}

func (l *lab) reconcile(u *unstructured.Unstructured) {
	name := u.GetName()
	tl, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
	s := &labSvc{name: name, host: name + "." + l.ns + ".example.com", rev: name + "-00001", labels: tl, b: l.o.behave(instanceOf(name))}
	s.routedAt = time.Now().Add(s.b.routeDelay)
	l.mu.Lock()
	l.byName[name], l.byHost[s.host] = s, s
	l.mu.Unlock()

	labels := map[string]string{LabelRevision: s.rev, LabelService: name}
	for k, v := range tl {
		labels[k] = v
	}
	zero := int32(0)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: s.rev + "-deployment", Namespace: l.ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &zero}}
	if _, err := l.kube.AppsV1().Deployments(l.ns).Create(l.ctx, dep, metav1.CreateOptions{}); err != nil {
		l.t.Errorf("lab: creating deployment: %v", err)
	}
	if s.b.podAtReady {
		l.scale(s, 1)
		pod := l.newPod(s)
		pod.Spec.NodeName = "node-1"
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		l.createPod(s, pod)
		l.mu.Lock()
		s.live, s.liveStart = pod.Name, time.Now()
		l.mu.Unlock()
	}

	cond := map[string]any{"type": "Ready", "status": "True"}
	url := "http://" + s.host
	switch {
	case s.b.neverReady:
		cond = map[string]any{"type": "Ready", "status": "Unknown", "reason": "RevisionMissing", "message": fmt.Sprintf("Configuration %q is waiting for a Revision to become ready.", name)}
		url = ""
	case s.b.readyFalse != "":
		cond = map[string]any{"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": s.b.readyFalse}
		url = ""
	}
	cur, err := l.svcs().Get(l.ctx, name, metav1.GetOptions{})
	if err != nil {
		l.t.Errorf("lab: %v", err)
		return
	}
	st := map[string]any{"observedGeneration": cur.GetGeneration(), "latestCreatedRevisionName": s.rev, "conditions": []any{cond}}
	if url != "" {
		st["url"] = url
	}
	cur.Object["status"] = st
	if _, err := l.svcs().UpdateStatus(l.ctx, cur, metav1.UpdateOptions{}); err != nil {
		l.t.Errorf("lab: status of %s: %v", name, err)
	}
}

func (l *lab) remove(name string) {
	l.mu.Lock()
	s := l.byName[name]
	l.mu.Unlock()
	if s == nil {
		return
	}
	s.kmu.Lock()
	defer s.kmu.Unlock()
	l.mu.Lock()
	s.deleted, s.live = true, ""
	l.mu.Unlock()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: LabelRevision + "=" + s.rev}
	pods, err := l.kube.CoreV1().Pods(l.ns).List(ctx, sel)
	if err == nil {
		for _, p := range pods.Items {
			l.kube.CoreV1().Pods(l.ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
		}
	}
	l.kube.AppsV1().Deployments(l.ns).Delete(ctx, s.rev+"-deployment", metav1.DeleteOptions{})
}

// serveIngress routes by Host header, like Kourier in front of the activator.
func (l *lab) serveIngress(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	s := l.byHost[r.Host]
	routed := s != nil && !s.deleted && time.Now().After(s.routedAt)
	var warm string
	var warmStart time.Time
	if s != nil {
		warm, warmStart = s.live, s.liveStart
	}
	if r.Header.Get(probeHeader) == "" {
		l.hits[r.Host]++
	}
	l.mu.Unlock()
	if r.Header.Get(probeHeader) != "" {
		// Knative's network probe, answered by the activator itself.
		if !routed {
			http.NotFound(w, r)
			return
		}
		w.Header().Set(probeHashHeader, r.Header.Get(probeHashHeader))
		return
	}
	if !routed {
		l.strays.Add(1)
		http.NotFound(w, r)
		return
	}
	if s.b.resetConn {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.(*net.TCPConn).SetLinger(0) // RST
			c.Close()
		}
		return
	}
	if warm != "" {
		l.reply(w, s, warm, warmStart)
		return
	}
	l.serveCold(w, r, s)
}

func (l *lab) newPod(s *labSvc) *corev1.Pod {
	l.mu.Lock()
	l.podSeq++
	name := fmt.Sprintf("%s-deployment-%05d", s.rev, l.podSeq)
	l.mu.Unlock()
	labels := map[string]string{LabelRevision: s.rev, LabelService: s.name}
	for k, v := range s.labels {
		labels[k] = v
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: l.ns, Labels: labels, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: UserContainer}, {Name: QueueProxy}}}}
}

// reply is the function's answer from pod, whose process started at start.
func (l *lab) reply(w http.ResponseWriter, s *labSvc, pod string, start time.Time) {
	w.Header().Set(probe.ProcessStartHeader, strconv.FormatInt(start.UnixNano(), 10))
	status := http.StatusOK
	if s.b.status != 0 {
		status = s.b.status
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "hello from %s\n", pod)
}

// serveCold is the activator holding the request while the revision scales
// from zero, then the function's reply.
func (l *lab) serveCold(w http.ResponseWriter, r *http.Request, s *labSvc) {
	ctx := r.Context()
	pods := l.kube.CoreV1().Pods(l.ns)
	since := time.Now()
	if !l.scale(s, 1) {
		return
	}
	if !l.await(ctx, s, since, PhaseDeploymentScaled, func(v attemptView) bool { return hasPhase(v, PhaseDeploymentScaled) }) {
		return
	}
	pod, ok := l.createPod(s, l.newPod(s))
	if !ok {
		return
	}
	name := pod.Name
	if !l.await(ctx, s, since, PhasePodCreated, func(v attemptView) bool { return v.pod == name }) {
		return
	}
	update := func(phase string, change func(*corev1.Pod)) bool {
		change(pod)
		var err error
		if pod, err = pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
			if !apierrors.IsNotFound(err) { // NotFound: deleted with its ksvc
				l.t.Errorf("lab: updating pod %s: %v", name, err)
			}
			return false
		}
		return l.await(ctx, s, since, phase, func(v attemptView) bool {
			if phase == "failure" {
				return v.failCls != ""
			}
			return hasPhase(v, phase)
		})
	}
	running := func(c string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: c, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	}
	scheduled := func(p *corev1.Pod) {
		p.Spec.NodeName = "node-1"
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
	}
	unschedulable := func(resource string) func(p *corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient " + resource + "."}}
		}
	}
	// What the kubelet makes of a pod it refuses at admission: Failed, and
	// its containers terminated, "could not be located".
	refused := func(p *corev1.Pod) {
		p.Spec.NodeName = "node-1"
		p.Status.Phase, p.Status.Reason = corev1.PodFailed, "OutOfcpu"
		p.Status.Message = "Pod was rejected: Node didn't have enough resource: cpu, requested: 4000, used: 7900, capacity: 8000"
		for _, c := range []string{UserContainer, QueueProxy} {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c, State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown", Message: "The container could not be located when the pod was terminated"}}})
		}
	}
	if s.b.refusedFirst {
		// The ReplicaSet replaces the refused pod; the replacement answers.
		if !update("failure", refused) {
			return
		}
		if pod, ok = l.createPod(s, l.newPod(s)); !ok {
			return
		}
		name = pod.Name
		if !l.await(ctx, s, since, PhasePodCreated, func(v attemptView) bool { return v.pod == name }) {
			return
		}
	}
	if d := s.b.waitForRoom; d > 0 {
		if !update("failure", unschedulable("cpu")) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
	switch s.b.podFailure {
	case "unschedulable":
		if !update("failure", unschedulable("memory")) {
			return
		}
	case "refused":
		if !update("failure", refused) {
			return
		}
	case "image":
		if !update("failure", func(p *corev1.Pod) {
			scheduled(p)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: UserContainer, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: `Container image "dev.local/nope:v1" is not present`}}},
				running(QueueProxy)}
		}) {
			return
		}
	case "crash":
		if !update("failure", func(p *corev1.Pod) {
			scheduled(p)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: UserContainer, State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", Message: "panic: boom"}}},
				running(QueueProxy)}
		}) {
			return
		}
	}
	if s.b.podFailure != "" {
		l.mu.Lock()
		s.staged = true
		l.mu.Unlock()
		<-ctx.Done() // the activator holds the request until the client gives up
		return
	}
	if !update(PhasePodScheduled, scheduled) ||
		!update(PhaseSandboxReady, func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: "PodReadyToStartContainers", Status: corev1.ConditionTrue})
		}) ||
		!update(PhaseUserStarted, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running(UserContainer), running(QueueProxy)}
		}) {
		return
	}
	processStart := time.Now() // the function's own clock, as functions/go-static reports it
	if !update(PhasePodReady, func(p *corev1.Pod) {
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].Ready = true
		}
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	}) {
		return
	}
	l.mu.Lock()
	s.live, s.liveStart = name, processStart
	l.mu.Unlock()
	l.reply(w, s, name, processStart)
	if d := s.b.scaleDownAfter; d > 0 {
		l.bg.Add(1)
		go func() {
			defer l.bg.Done()
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(d):
			}
			// The autoscaler scales the Deployment to zero, then its pod goes.
			if !l.scale(s, 0) {
				return // the ksvc went first (Close), taking its pod along
			}
			l.mu.Lock()
			l.gone = append(l.gone, podGone{pod: name, at: time.Now()})
			s.live = ""
			l.mu.Unlock()
			s.kmu.Lock()
			err := pods.Delete(context.Background(), name, metav1.DeleteOptions{})
			s.kmu.Unlock()
			if err != nil && !apierrors.IsNotFound(err) {
				l.t.Errorf("lab: scale-down: %v", err)
			}
		}()
	}
}

func (l *lab) isDeleted(s *labSvc) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return s.deleted
}

// scale sets the revision's Deployment to n replicas; false once the ksvc
// is gone.
func (l *lab) scale(s *labSvc, n int32) bool {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	if l.isDeleted(s) {
		return false
	}
	deps := l.kube.AppsV1().Deployments(l.ns)
	d, err := deps.Get(context.Background(), s.rev+"-deployment", metav1.GetOptions{})
	if err != nil {
		l.t.Errorf("lab: scaling %s: %v", s.rev, err)
		return false
	}
	d.Spec.Replicas = &n
	if _, err := deps.Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		l.t.Errorf("lab: scaling %s: %v", s.rev, err)
		return false
	}
	return true
}

// createPod creates a pod of s's revision; false once the ksvc is gone.
func (l *lab) createPod(s *labSvc, pod *corev1.Pod) (*corev1.Pod, bool) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	if l.isDeleted(s) {
		return nil, false
	}
	pod, err := l.kube.CoreV1().Pods(l.ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		l.t.Errorf("lab: creating pod: %v", err)
		return nil, false
	}
	return pod, true
}

// await blocks until the platform's watches show what cond asks of the
// first pod of s's revision created after since.
func (l *lab) await(ctx context.Context, s *labSvc, since time.Time, what string, cond func(attemptView) bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if tr := l.tracker(); tr != nil && cond(tr.view(s.rev, since)) {
			return true
		}
		if l.isDeleted(s) {
			return false
		}
		if time.Now().After(deadline) {
			l.t.Errorf("lab: the platform's watches never saw %s of %s", what, s.rev)
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
}

func hasPhase(v attemptView, name string) bool {
	for _, p := range v.phases {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (l *lab) totalHits() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, h := range l.hits {
		n += h
	}
	return n
}

// staged says whether the ksvc's pod failure was made and seen in time.
func (l *lab) staged(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.byName[name]
	return s != nil && s.staged
}

func (l *lab) hitsFor(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits[host]
}

func (l *lab) creates() []string {
	var names []string
	for _, a := range l.dyn.Actions() {
		if c, ok := a.(interface{ GetObject() runtime.Object }); ok && a.GetVerb() == "create" && a.GetResource() == ServiceGVR {
			names = append(names, c.GetObject().(*unstructured.Unstructured).GetName())
		}
	}
	return names
}

func (l *lab) exists(name string) bool {
	_, err := l.svcs().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		l.t.Fatal(err)
	}
	return err == nil
}

// causalChain is the order of a cold start through Knative; user and
// queue-proxy containers start together here.
var causalChain = []string{PhaseDeploymentScaled, PhasePodCreated, PhasePodScheduled, PhaseSandboxReady, PhaseUserStarted,
	results.PhaseFunctionStart, PhaseUserReady, PhasePodReady, results.PhaseFirstByte}

// checkCold checks a successful cold start of instance (of ksvc name).
func checkCold(t *testing.T, a results.Attempt, l *lab, instance int, name string) {
	t.Helper()
	if !a.OK || a.ErrorClass != "" || a.HTTPStatus != http.StatusOK {
		t.Fatalf("instance %d: not OK: %s %s (HTTP %d)", instance, a.ErrorClass, a.Error, a.HTTPStatus)
	}
	if a.Instance != instance || a.Probes != 1 {
		t.Errorf("instance %d: record says instance %d, probes %d", instance, a.Instance, a.Probes)
	}
	if !strings.HasPrefix(a.Cold.Pod, name+"-00001-deployment-") || a.Cold.Revision != name+"-00001" {
		t.Errorf("instance %d: cold evidence pod %q revision %q, want a pod of %s-00001", instance, a.Cold.Pod, a.Cold.Revision, name)
	}
	if !strings.Contains(a.Cold.Address, "Host: "+name+"."+l.ns+".example.com") {
		t.Errorf("instance %d: address %q", instance, a.Cold.Address)
	}
	if a.TTFBNS <= 0 || a.TotalNS < a.TTFBNS {
		t.Errorf("instance %d: ttfb %d total %d", instance, a.TTFBNS, a.TotalNS)
	}
	var last time.Duration
	for _, ph := range causalChain {
		off, ok := a.PhaseOffset(ph)
		if !ok {
			t.Errorf("instance %d: no %s phase in %+v", instance, ph, a.Phases)
			continue
		}
		if off <= 0 || off < last {
			t.Errorf("instance %d: %s at %v, before the previous phase (%v): %+v", instance, ph, off, last, a.Phases)
		}
		last = off
	}
	if sent, ok := a.PhaseOffset(results.PhaseRequestSent); !ok || sent < 0 || sent > time.Duration(a.TTFBNS) {
		t.Errorf("instance %d: request_sent %v (seen %v), first byte %v", instance, sent, ok, time.Duration(a.TTFBNS))
	}
	for i := 1; i < len(a.Phases); i++ {
		if a.Phases[i].OffsetNS < a.Phases[i-1].OffsetNS {
			t.Errorf("instance %d: phases not in time order: %+v", instance, a.Phases)
			break
		}
	}
}

func TestColdStartThreeServicesAllColdWithPhasesInCausalOrder(t *testing.T) {
	l := newLab(t, labOptions{behave: func(i int) behaviour {
		// The ingress loads the routes a little after the ksvcs are Ready:
		// no GET may go out before.
		return behaviour{routeDelay: time.Duration(100+50*i) * time.Millisecond}
	}})
	out := l.coldStart(l.cell(3, 0, 10*time.Second))
	pods := map[string]bool{}
	for i, a := range out {
		checkCold(t, a, l, i, l.name(3, 0, i))
		pods[a.Cold.Pod] = true
		if a.ReleaseSkewNS <= 0 || a.ReleaseSkewNS != out[0].ReleaseSkewNS || a.ReleaseSkewNS > int64(time.Second) {
			t.Errorf("instance %d: release skew %v (instance 0: %v): want the same positive spread on every record", i, time.Duration(a.ReleaseSkewNS), time.Duration(out[0].ReleaseSkewNS))
		}
		if h := l.hitsFor(l.name(3, 0, i) + "." + l.ns + ".example.com"); h != 1 {
			t.Errorf("instance %d: %d GETs reached the function, want exactly 1", i, h)
		}
	}
	if len(pods) != 3 {
		t.Errorf("cold pods %v: want 3 distinct", pods)
	}
	if n := l.strays.Load(); n != 0 {
		t.Errorf("%d GETs were sent before the ingress routed their host (the route probe did not hold them back)", n)
	}
	if c := l.creates(); len(c) != 3 {
		t.Errorf("created ksvcs %v, want 3", c)
	}
	if ns, err := l.kube.CoreV1().Namespaces().Get(context.Background(), l.ns, metav1.GetOptions{}); err != nil || ns.Labels[bench.LabelManagedBy] != bench.LabelManagedByVal {
		t.Errorf("namespace %s: %v %v; want it created with coldbench's label", l.ns, ns, err)
	}
}

func TestColdStartServiceNeverReadyIsATimeoutRecordAndTheOthersSucceed(t *testing.T) {
	l := newLab(t, labOptions{readiness: time.Second, behave: func(i int) behaviour {
		return behaviour{neverReady: i == 1}
	}})
	start := time.Now()
	out := l.coldStart(l.cell(3, 0, 10*time.Second))
	if took := time.Since(start); took < time.Second {
		t.Errorf("ColdStart returned after %v, before the readiness timeout", took)
	}
	bad := out[1]
	name := l.name(3, 0, 1)
	if bad.OK || bad.ErrorClass != results.ErrTimeout || bad.Instance != 1 ||
		!strings.Contains(bad.Error, name) || !strings.Contains(bad.Error, "not Ready after 1s") || !strings.Contains(bad.Error, "RevisionMissing") {
		t.Errorf("never-ready service: %+v", bad)
	}
	if h := l.hitsFor(name + "." + l.ns + ".example.com"); h != 0 {
		t.Errorf("%d GETs were sent to the service that never got Ready", h)
	}
	checkCold(t, out[0], l, 0, l.name(3, 0, 0))
	checkCold(t, out[2], l, 2, l.name(3, 0, 2))
}

// The API server goes away while a service waits to get Ready: the
// readiness timeout is the platform's failure, not the function's timeout.
func TestColdStartNotReadyWhileTheAPIServerIsDownIsAPlatformFailure(t *testing.T) {
	l := newLab(t, labOptions{readiness: time.Second, behave: func(i int) behaviour {
		return behaviour{neverReady: i == 1}
	}})
	var creates atomic.Int32
	var down atomic.Bool
	l.dyn.PrependReactor("create", "services", func(clienttesting.Action) (bool, runtime.Object, error) {
		if creates.Add(1) == 3 {
			down.Store(true)
		}
		return false, nil, nil
	})
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	l.dyn.PrependReactor("list", "services", func(clienttesting.Action) (bool, runtime.Object, error) {
		if down.CompareAndSwap(true, false) {
			return true, nil, refused
		}
		return false, nil, nil
	})
	out := l.coldStart(l.cell(3, 0, 10*time.Second))
	bad := out[1]
	if bad.OK || bad.ErrorClass != results.ErrPlatform || !strings.Contains(bad.Error, "not Ready after 1s") ||
		!strings.Contains(bad.Error, "the API server does not answer") || !strings.Contains(bad.Error, "connection refused") {
		t.Errorf("service not Ready while the API server was down: class %q error %q, want platform with the reason", bad.ErrorClass, bad.Error)
	}
	if down.Load() {
		t.Error("the API server's answer was never asked for after the readiness timeout")
	}
	checkCold(t, out[0], l, 0, l.name(3, 0, 0))
	checkCold(t, out[2], l, 2, l.name(3, 0, 2))
}

func TestColdStartNon2xxReplyIsHTTPStatusClassWithTheStatus(t *testing.T) {
	l := newLab(t, labOptions{behave: func(i int) behaviour {
		if i == 0 {
			return behaviour{status: http.StatusServiceUnavailable}
		}
		return behaviour{}
	}})
	out := l.coldStart(l.cell(2, 0, 10*time.Second))
	a := out[0]
	if a.OK || a.ErrorClass != results.ErrHTTPStatus || a.HTTPStatus != http.StatusServiceUnavailable || !strings.Contains(a.Error, "HTTP 503") {
		t.Errorf("503 reply: ok=%v class=%q status=%d error=%q", a.OK, a.ErrorClass, a.HTTPStatus, a.Error)
	}
	if a.Cold.Pod == "" || a.TTFBNS <= 0 {
		t.Errorf("503 reply: the cold pod and the reply's timing are still recorded: %+v", a)
	}
	checkCold(t, out[1], l, 1, l.name(2, 0, 1))
}

func TestColdStartIngressFailures(t *testing.T) {
	t.Run("ingress refusing connections is ingress class, nothing measured", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		l := newLab(t, labOptions{readiness: time.Second, ingressAddr: closed})
		out := l.coldStart(l.cell(2, 0, 10*time.Second))
		for i, a := range out {
			if a.OK || a.ErrorClass != results.ErrIngress || a.Instance != i ||
				!strings.Contains(a.Error, closed) || !strings.Contains(a.Error, "does not route") {
				t.Errorf("instance %d: %+v", i, a)
			}
		}
	})
	t.Run("ingress dropping the measured request is connection class", func(t *testing.T) {
		l := newLab(t, labOptions{behave: func(i int) behaviour { return behaviour{resetConn: i == 1} }})
		out := l.coldStart(l.cell(2, 0, 10*time.Second))
		if a := out[1]; a.OK || a.ErrorClass != results.ErrConnection || a.Error == "" || a.HTTPStatus != 0 {
			t.Errorf("dropped request: %+v", a)
		}
		checkCold(t, out[0], l, 0, l.name(2, 0, 0))
	})
}

// A pod that never serves: the request times out, and the record says why
// from what the watches saw of the pod; a ksvc Knative marks failed is
// classified from its Ready condition.
//
// The lab stages a pod's failure while the client waits; on a loaded machine
// that can outlast the client's timeout (then the record is rightly a plain
// timeout), and so can the healthy instance's cold start (seen in CI under
// load: a 1 s timeout). Such a run proves nothing, so it is repeated with
// twice the timeout until every failure was staged, and the healthy
// instance answered, in time.
func TestColdStartClassifiesFailuresFromWatchedPodsAndConditions(t *testing.T) {
	for timeout := time.Second; ; timeout *= 2 {
		if classifiesFailures(t, timeout) {
			return
		}
		if timeout >= 16*time.Second {
			t.Fatalf("the lab could not stage the pods' failures within %v", timeout)
		}
		t.Logf("the lab staged the pods' failures too late for a %v client timeout: again with %v", timeout, 2*timeout)
	}
}

// classifiesFailures runs the test with a client timeout; false: the lab
// did not stage every pod failure in time, or the healthy instance timed
// out (nothing checked).
func classifiesFailures(t *testing.T, timeout time.Duration) bool {
	l := newLab(t, labOptions{behave: func(i int) behaviour {
		switch i {
		case 0:
			return behaviour{podFailure: "unschedulable"}
		case 1:
			return behaviour{podFailure: "image"}
		case 2:
			return behaviour{podFailure: "crash"}
		case 3:
			return behaviour{readyFalse: `pods "x" is forbidden: pod rejected: RuntimeClass "gvisor" not found`}
		case 4:
			return behaviour{readyFalse: `Unable to fetch image "dev.local/nope:v1": failed to resolve image to digest`}
		case 5:
			return behaviour{podFailure: "refused"}
		}
		return behaviour{}
	}})
	out := l.coldStart(l.cell(7, 0, timeout))
	for _, i := range []int{0, 1, 2, 5} {
		if !l.staged(l.name(7, 0, i)) {
			return false
		}
	}
	if a := out[5]; !a.OK && a.ErrorClass == results.ErrTimeout {
		return false
	}
	want := []struct{ class, msg string }{
		{results.ErrNotScheduled, "Insufficient memory"},
		{results.ErrImage, "ErrImageNeverPull"},
		{results.ErrCrashed, "exited 2"},
		{results.ErrRuntime, `RuntimeClass "gvisor" not found`},
		{results.ErrImage, "Unable to fetch image"},
		// Refused by the kubelet: its reason, not the containers' 137.
		{results.ErrNotScheduled, "refused by its node: OutOfcpu: Pod was rejected: Node didn't have enough resource: cpu"},
	}
	for i, w := range want {
		a := out[i]
		if a.OK || a.ErrorClass != w.class || !strings.Contains(a.Error, w.msg) || a.Instance != i {
			t.Errorf("instance %d: class %q error %q, want %q with %q", i, a.ErrorClass, a.Error, w.class, w.msg)
		}
		if (i < 3 && a.Cold.Pod == "") || (i < 3 || i == 5) && !strings.Contains(a.Error, "no reply within the client timeout") {
			t.Errorf("instance %d: the pod and the request's own failure belong in the record: %+v", i, a)
		}
		// The pods that never found room waited until the attempt's end.
		u := a.Unschedulable
		switch {
		case i != 0 && i != 5 && u != nil:
			t.Errorf("instance %d: %+v waited for room?", i, *u)
		case i != 0 && i != 5:
		case u == nil:
			t.Errorf("instance %d: no wait for room recorded", i)
		case u.Scheduled || u.WaitNS <= 0 || u.WaitNS > timeout.Nanoseconds() || !strings.Contains(u.Reason, w.msg[:17]):
			t.Errorf("instance %d: waited %+v, want unscheduled, for at most the %v timeout, for %q", i, *u, timeout, w.msg[:17])
		}
	}
	checkCold(t, out[6], l, 6, l.name(7, 0, 6))
	return true
}

// A pod that waited for room on a node and then answered is a cold start
// that says so: the scheduler's reason, the wait until it was scheduled. So
// is one whose first pod its node refused (OutOfcpu), answered by the
// ReplicaSet's replacement, which is the attempt's pod.
func TestColdStartPodThatWaitedForRoomSaysWhyAndHowLong(t *testing.T) {
	const wait = 300 * time.Millisecond
	l := newLab(t, labOptions{behave: func(i int) behaviour {
		return behaviour{waitForRoom: map[int]time.Duration{0: wait}[i], refusedFirst: i == 1}
	}})
	out := l.coldStart(l.cell(3, 0, 10*time.Second))
	for i, a := range out {
		checkCold(t, a, l, i, l.name(3, 0, i))
	}
	if u := out[2].Unschedulable; u != nil {
		t.Errorf("instance 2 never waited, recorded %+v", *u)
	}
	for i, reason := range []string{"0/1 nodes are available: 1 Insufficient cpu.", "refused by its node: OutOfcpu"} {
		a := out[i]
		u := a.Unschedulable
		if u == nil {
			t.Errorf("instance %d: no wait for room recorded", i)
			continue
		}
		created, _ := a.PhaseOffset(PhasePodCreated)
		scheduled, _ := a.PhaseOffset(PhasePodScheduled)
		if !u.Scheduled || !strings.Contains(u.Reason, reason) || u.WaitNS <= 0 || u.WaitNS > scheduled.Nanoseconds() {
			t.Errorf("instance %d: %+v, want scheduled after a wait of at most %v (pod_scheduled), for %q", i, *u, scheduled, reason)
		}
		if i == 0 && (u.WaitNS < wait.Nanoseconds() || u.WaitNS > (scheduled-created).Nanoseconds()) {
			t.Errorf("instance 0: waited %v, want ≥ %v and within pod_created..pod_scheduled (%v)", time.Duration(u.WaitNS), wait, scheduled-created)
		}
	}
}

// On a cluster that ignores initial-scale 0 the revision has a pod before
// the request: the reply is not a cold start and the record says so.
func TestColdStartAnswerFromAPodThatExistedBeforeIsNotCold(t *testing.T) {
	l := newLab(t, labOptions{behave: func(i int) behaviour { return behaviour{podAtReady: i == 0} }})
	out := l.coldStart(l.cell(2, 0, 10*time.Second))
	a := out[0]
	if a.OK || a.ErrorClass != results.ErrNotCold || !strings.Contains(a.Error, l.name(2, 0, 0)+"-00001-deployment-") || a.Cold.Pod != "" {
		t.Errorf("warm reply: ok=%v class=%q error=%q pod=%q", a.OK, a.ErrorClass, a.Error, a.Cold.Pod)
	}
	if a.HTTPStatus != http.StatusOK {
		t.Errorf("warm reply: HTTP %d, want the 200 kept in the record", a.HTTPStatus)
	}
	checkCold(t, out[1], l, 1, l.name(2, 0, 1))
}

// A pod that exists before the request but whose events the watch has not
// delivered (a loaded API server, seconds behind) is still seen as there
// before the request: the list taken before the release counts it, so the
// reply from it is not cold, and is not taken for a new pod's.
func TestColdStartPodTheWatchHasNotDeliveredIsNotCold(t *testing.T) {
	var l *lab
	l = newLab(t, labOptions{
		behave:        func(i int) behaviour { return behaviour{podAtReady: i == 0} },
		hidePodEvents: func(pod string) bool { return strings.HasPrefix(pod, l.name(2, 0, 0)+"-") },
	})
	out := l.coldStart(l.cell(2, 0, 10*time.Second))
	if a := out[0]; a.OK || a.ErrorClass != results.ErrNotCold || !strings.Contains(a.Error, l.name(2, 0, 0)+"-00001-deployment-") || a.Cold.Pod != "" || a.Cold.PriorPods != 1 {
		t.Errorf("warm reply the watch did not show: ok=%v class=%q error=%q pod=%q prior=%d", a.OK, a.ErrorClass, a.Error, a.Cold.Pod, a.Cold.PriorPods)
	}
	checkCold(t, out[1], l, 1, l.name(2, 0, 1))
}

// Ctrl-C while the requests wait for their pods: every instance still has
// its record, marked canceled, and ColdStart returns promptly.
func TestColdStartInterruptedWhileWaitingForPodsRecordsEveryAttemptAsCanceled(t *testing.T) {
	l := newLab(t, labOptions{behave: func(int) behaviour { return behaviour{podFailure: "unschedulable"} }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for l.totalHits() < 2 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	out := l.coldStartCtx(ctx, l.cell(2, 0, 30*time.Second))
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("ColdStart took %v after the interrupt", took)
	}
	for i, a := range out {
		if a.OK || a.ErrorClass != results.ErrCanceled || a.Instance != i || a.Start.IsZero() {
			t.Errorf("instance %d: ok=%v class=%q error=%q", i, a.OK, a.ErrorClass, a.Error)
		}
	}
}

// Interrupted while creating the cell's services (the API call cut by the
// interrupt): the attempt is canceled, not a platform failure, so that the
// runner cuts the cell and --resume measures it again.
func TestColdStartInterruptedWhileCreatingRecordsTheAttemptAsCanceled(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.dyn.PrependReactor("create", "services", func(clienttesting.Action) (bool, runtime.Object, error) {
		cancel()
		return true, nil, ctx.Err()
	})
	out := l.coldStartCtx(ctx, l.cell(1, 0, 30*time.Second))
	for i, a := range out {
		if a.OK || a.ErrorClass != results.ErrCanceled || a.Instance != i {
			t.Errorf("instance %d: ok=%v class=%q error=%q", i, a.OK, a.ErrorClass, a.Error)
		}
	}
}

func TestColdStartFreshCreatesNewServicesEveryIterationAndDeletesThem(t *testing.T) {
	l := newLab(t, labOptions{protocol: ProtocolFresh})
	first := l.coldStart(l.cell(2, 0, 10*time.Second))
	second := l.coldStart(l.cell(2, 1, 10*time.Second))
	for i := range 2 {
		checkCold(t, first[i], l, i, l.name(2, 0, i))
		checkCold(t, second[i], l, i, l.name(2, 1, i))
		if first[i].Cold.Revision == second[i].Cold.Revision {
			t.Errorf("instance %d: both iterations used revision %s", i, first[i].Cold.Revision)
		}
		if first[i].Cold.PriorPods+second[i].Cold.PriorPods != 0 {
			t.Errorf("instance %d: prior_pods %d, %d: a fresh revision has none", i, first[i].Cold.PriorPods, second[i].Cold.PriorPods)
		}
	}
	created := l.creates()
	want := []string{l.name(2, 0, 0), l.name(2, 0, 1), l.name(2, 1, 0), l.name(2, 1, 1)}
	// Within a cell the creations go out together, in any order; the
	// second cell's only after the first's.
	if len(created) == 4 {
		slices.Sort(created[:2])
		slices.Sort(created[2:])
	}
	if strings.Join(created, " ") != strings.Join(want, " ") {
		t.Errorf("created %v, want a new ksvc per instance and iteration %v", created, want)
	}
	for _, n := range want {
		if l.exists(n) {
			t.Errorf("fresh service %s still exists after its iteration", n)
		}
	}
}

func TestColdStartClassicReusesServicesAndWaitsForZeroPodsByWatch(t *testing.T) {
	const scaleDown = 300 * time.Millisecond
	l := newLab(t, labOptions{protocol: ProtocolClassic, behave: func(int) behaviour {
		return behaviour{scaleDownAfter: scaleDown}
	}})
	first := l.coldStart(l.cell(1, 0, 10*time.Second))
	checkCold(t, first[0], l, 0, l.name(1, 0, 0))
	second := l.coldStart(l.cell(1, 1, 10*time.Second))
	a := second[0]
	if !a.OK {
		t.Fatalf("second iteration: %s %s", a.ErrorClass, a.Error)
	}
	if a.Cold.Pod == "" || a.Cold.Pod == first[0].Cold.Pod || a.Cold.Revision != first[0].Cold.Revision {
		t.Errorf("second iteration: pod %q revision %q; want a new pod of the same revision as %q / %q", a.Cold.Pod, a.Cold.Revision, first[0].Cold.Pod, first[0].Cold.Revision)
	}
	if first[0].Cold.PriorPods != 0 || a.Cold.PriorPods != 1 {
		t.Errorf("prior_pods %d then %d, want 0 (first activation) then 1 (re-activation)", first[0].Cold.PriorPods, a.Cold.PriorPods)
	}
	if c := l.creates(); len(c) != 1 || c[0] != l.name(1, 0, 0) {
		t.Errorf("created %v: classic creates the service once, named without iteration", c)
	}
	l.mu.Lock()
	gone := append([]podGone(nil), l.gone...)
	l.mu.Unlock()
	if len(gone) == 0 || gone[0].pod != first[0].Cold.Pod {
		t.Fatalf("pods removed %+v: the first iteration's pod should have scaled to zero", gone)
	}
	// The request went out after the pod was gone, and soon after: the
	// watch woke the wait, not a periodic re-check (the tracker re-checks
	// every second) nor a fixed sleep.
	gap := a.Start.Sub(gone[0].at)
	t.Logf("second iteration released %v after the pod went", gap)
	if gap <= 0 || gap > 400*time.Millisecond {
		t.Errorf("second iteration released %v after the first pod went: want after it, and promptly", gap)
	}
	if !l.exists(l.name(1, 0, 0)) {
		t.Error("classic service deleted between iterations")
	}
}

func TestColdStartH2CReleasesTheStepInOneWrite(t *testing.T) {
	l := newLab(t, labOptions{http: H2C})
	var protos []string
	var mu sync.Mutex
	inner := l.ing.Config.Handler
	l.ing.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(probeHeader) == "" {
			mu.Lock()
			protos = append(protos, r.Proto)
			mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	})
	out := l.coldStart(l.cell(3, 0, 10*time.Second))
	for i, a := range out {
		checkCold(t, a, l, i, l.name(3, 0, i))
		if !a.Start.Equal(out[0].Start) || a.ReleaseSkewNS != 0 {
			t.Errorf("instance %d: start %v (first %v), skew %d: one connection, one write, one start", i, a.Start, out[0].Start, a.ReleaseSkewNS)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(protos, " ") != "HTTP/2.0 HTTP/2.0 HTTP/2.0" {
		t.Errorf("measured requests arrived as %v, want three HTTP/2.0", protos)
	}
}

func TestColdStartPoolActivatesEverySetOnceThenUsesThemInTurn(t *testing.T) {
	const scaleDown, sets, n = 300 * time.Millisecond, 3, 2
	l := newLab(t, labOptions{protocol: ProtocolPool, poolSize: sets, behave: func(int) behaviour {
		return behaviour{scaleDownAfter: scaleDown}
	}})
	l.exp.Spec.Warmups, l.exp.Spec.Iterations = 1, 3
	want := func(n, sets int) []string { // every service of the pool, sorted
		var names []string
		for set := range sets {
			for i := range n {
				names = append(names, l.name(n, set, i))
			}
		}
		return names
	}
	host := func(set, i int) string { return l.name(n, set, i) + "." + l.ns + ".example.com" }
	var samples [][]results.Attempt
	for it := -1; it < 3; it++ { // the warm-up, then 3 samples: sets 0, 1, 2, 0
		samples = append(samples, l.coldStart(l.cell(n, it, 10*time.Second)))
		if it < 2 {
			for _, name := range want(n, sets) {
				if !l.exists(name) {
					t.Fatalf("after iteration %d: pool service %s gone before the pool's last sample", it, name)
				}
			}
		}
	}
	c := l.creates()
	sort.Strings(c)
	if strings.Join(c, " ") != strings.Join(want(n, sets), " ") {
		t.Errorf("created %v, want every set once, at the first cell: %v", c, want(n, sets))
	}
	for _, name := range want(n, sets) {
		if l.exists(name) {
			t.Errorf("pool service %s still exists after the pool's last sample", name)
		}
	}
	// One untimed activation per service, then one GET per sample.
	for set, hits := range []int{3, 2, 2} {
		for i := range n {
			if h := l.hitsFor(host(set, i)); h != hits {
				t.Errorf("set %d instance %d: %d GETs, want %d (activation + samples)", set, i, h, hits)
			}
		}
	}
	l.mu.Lock()
	gone := append([]podGone(nil), l.gone...)
	l.mu.Unlock()
	goneAt := map[string]time.Time{}
	for _, g := range gone {
		goneAt[g.pod] = g.at
	}
	lastPod := map[string]string{} // revision → its previous sample's pod
	for it, batch := range samples {
		set := it % sets
		for i, a := range batch {
			checkCold(t, a, l, i, l.name(n, set, i))
			wantPrior := 1 + it/sets
			if a.Cold.PriorPods != wantPrior {
				t.Errorf("iteration %d instance %d: prior_pods %d, want %d (a re-activation)", it, i, a.Cold.PriorPods, wantPrior)
			}
			if prev := lastPod[a.Cold.Revision]; prev != "" {
				// The set's previous sample: its pod went before this
				// request, detected by the watch.
				at, ok := goneAt[prev]
				if !ok || !a.Start.After(at) {
					t.Errorf("iteration %d instance %d: released at %v while the pod %s of the set's previous sample was there (gone %v, %v)", it, i, a.Start, prev, at, ok)
				}
			}
			lastPod[a.Cold.Revision] = a.Cold.Pod
		}
	}
	if samples[0][0].Cold.Revision != l.name(n, 0, 0)+"-00001" || samples[0][0].Cold.Revision == samples[1][0].Cold.Revision ||
		samples[0][0].Cold.Revision != samples[3][0].Cold.Revision {
		t.Errorf("revisions by iteration %s %s %s %s: want sets used in turn", samples[0][0].Cold.Revision, samples[1][0].Cold.Revision,
			samples[2][0].Cold.Revision, samples[3][0].Cold.Revision)
	}
}

// The session does not depend on the order of the cells (a resumed run, a
// scheduler of its own): two pools' cells, interleaved and out of order,
// still get the pool's sets in turn, each sample a cold re-activation of
// its set; a pool goes after its last cell, whatever that cell's
// iteration, and nothing is left after Close.
func TestColdStartPoolCellsInAnyOrder(t *testing.T) {
	const scaleDown, sets = 300 * time.Millisecond, 2
	l := newLab(t, labOptions{protocol: ProtocolPool, poolSize: sets, behave: func(int) behaviour {
		return behaviour{scaleDownAfter: scaleDown}
	}})
	l.exp.Spec.Scales, l.exp.Spec.Warmups, l.exp.Spec.Iterations = []int{1, 2}, 1, 3
	// A shuffle of the experiment's cells, written out so that each pool's
	// last iteration (where the runner's order ends a pool) comes first.
	order := []struct{ n, it int }{{2, 2}, {1, 2}, {2, -1}, {1, 0}, {2, 1}, {1, -1}, {1, 1}, {2, 0}}
	byKey := map[bench.CellKey]bench.Cell{}
	for _, c := range l.exp.Cells(l.id) {
		byKey[c.Key()] = c
	}
	if len(order) != len(byKey) {
		t.Fatalf("the order has %d cells, the experiment %d", len(order), len(byKey))
	}
	poolNames := func(n int) []string {
		var names []string
		for set := range sets {
			for i := range n {
				names = append(names, l.name(n, set, i))
			}
		}
		return names
	}
	plan := l.exp.Spec.Warmups + l.exp.Spec.Iterations // cells per pool
	turns := map[int]int{}                             // N → samples so far
	lastPod := map[string]string{}                     // revision → its previous sample's pod
	goneAt := func(pod string) (time.Time, bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, g := range l.gone {
			if g.pod == pod {
				return g.at, true
			}
		}
		return time.Time{}, false
	}
	for _, o := range order {
		c, ok := byKey[bench.CellKey{Runtime: "runc", Scale: o.n, Iteration: o.it}]
		if !ok {
			t.Fatalf("cell N=%d iteration %d is not the experiment's", o.n, o.it)
		}
		k := turns[o.n]
		turns[o.n]++
		set := k % sets
		for i, a := range l.coldStart(c) {
			checkCold(t, a, l, i, l.name(o.n, set, i))
			if want := 1 + k/sets; a.Cold.PriorPods != want {
				t.Errorf("N=%d iteration %d instance %d: prior_pods %d, want %d (a re-activation)", o.n, o.it, i, a.Cold.PriorPods, want)
			}
			if prev := lastPod[a.Cold.Revision]; prev != "" {
				if at, ok := goneAt(prev); !ok || !a.Start.After(at) {
					t.Errorf("N=%d iteration %d instance %d: released while the pod %s of the set's previous sample was there", o.n, o.it, i, prev)
				}
			}
			lastPod[a.Cold.Revision] = a.Cold.Pod
		}
		for _, name := range poolNames(o.n) {
			if want := turns[o.n] < plan; l.exists(name) != want {
				t.Errorf("after N=%d iteration %d (sample %d of %d): pool service %s exists %v, want %v", o.n, o.it, turns[o.n], plan, name, !want, want)
			}
		}
	}
	l.closeSession()
	left, err := l.svcs().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(left.Items) != 0 {
		t.Errorf("ksvcs left after Close: %v %v", left, err)
	}
	if pods, err := l.kube.CoreV1().Pods(l.ns).List(context.Background(), metav1.ListOptions{}); err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left after Close: %v %v", pods, err)
	}
}

func TestColdStartClassicFailsTheCellWhenPodsDoNotScaleToZero(t *testing.T) {
	l := newLab(t, labOptions{protocol: ProtocolClassic, scaleToZero: 500 * time.Millisecond})
	first := l.coldStart(l.cell(2, 0, 10*time.Second))
	checkCold(t, first[0], l, 0, l.name(2, 0, 0))
	second := l.coldStart(l.cell(2, 1, 10*time.Second))
	for i, a := range second {
		if a.OK || a.ErrorClass != results.ErrPlatform || !strings.Contains(a.Error, "did not scale to zero") || a.Instance != i {
			t.Errorf("instance %d: %+v", i, a)
		}
	}
	for i := range 2 {
		if h := l.hitsFor(l.name(2, 0, i) + "." + l.ns + ".example.com"); h != 1 {
			t.Errorf("instance %d: %d GETs: a warm pod was measured", i, h)
		}
	}
}

func TestCleanDeletesOnlyLabelledServices(t *testing.T) {
	ksvc := func(name string, labels map[string]any) *unstructured.Unstructured {
		m := map[string]any{"name": name, "namespace": "cb-test"}
		if labels != nil {
			m["labels"] = labels
		}
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": m}}
	}
	id := bench.NewExperimentID(time.Now())
	// Someone's service named like coldbench's, without its labels, and a
	// service of another coldbench experiment.
	lookalike := ServiceName(id, 0, 1, 0, 0) + "x"
	other := ServiceName("cb-1-ffff", 0, 1, 0, 0)
	l := newLab(t, labOptions{id: id, protocol: ProtocolClassic, objects: []runtime.Object{
		ksvc(lookalike, nil),
		ksvc(other, map[string]any{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: "cb-1-ffff"}),
	}})
	out := l.coldStart(l.cell(2, 0, 10*time.Second))
	checkCold(t, out[0], l, 0, l.name(2, 0, 0))
	mine := []string{ServiceName(id, 0, 2, 0, 0), ServiceName(id, 0, 2, 0, 1)}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := l.p.Clean(ctx, id)
	if err != nil || n != 2 {
		t.Fatalf("Clean(%s) = %d, %v; want the experiment's 2 services", id, n, err)
	}
	for _, s := range mine {
		if l.exists(s) {
			t.Errorf("%s survived Clean", s)
		}
	}
	pods, err := l.kube.CoreV1().Pods(l.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left after Clean: %v %v", pods, err)
	}
	if !l.exists(lookalike) || !l.exists(other) {
		t.Fatalf("Clean(%s) deleted a service it did not label (lookalike %v, other experiment %v)", id, l.exists(lookalike), l.exists(other))
	}
	// `coldbench clean` without an experiment: every coldbench service, and
	// still nobody else's.
	n, err = l.p.Clean(ctx, "")
	if err != nil || n != 1 || l.exists(other) {
		t.Errorf("Clean(\"\") = %d, %v (other experiment left: %v)", n, err, l.exists(other))
	}
	if !l.exists(lookalike) {
		t.Error("Clean(\"\") deleted an unlabelled service")
	}
	for _, a := range l.dyn.Actions() {
		if d, ok := a.(interface{ GetName() string }); ok && a.GetVerb() == "delete" && d.GetName() == lookalike {
			t.Errorf("a delete was sent for the unlabelled %s", lookalike)
		}
	}
}

// A pool's cells that fail (here: its pods never scale to zero) are still
// its cells: once the last one is over, the pool's services go, not at the
// end of the run (their pods would stay alongside the next pools').
func TestColdStartPoolIsDeletedAfterItsLastCellEvenWhenCellsFail(t *testing.T) {
	const sets = 2
	l := newLab(t, labOptions{protocol: ProtocolPool, poolSize: sets, scaleToZero: 300 * time.Millisecond})
	l.exp.Spec.Scales, l.exp.Spec.Warmups, l.exp.Spec.Iterations = []int{1}, 0, 3
	cells := l.exp.Cells(l.id)
	for k, c := range cells {
		for _, a := range l.coldStart(c) {
			if a.OK || !strings.Contains(a.Error, "did not scale to zero") {
				t.Fatalf("iteration %d: %+v, want a failure: the pods never scale to zero", c.Iteration, a)
			}
		}
		for set := range sets {
			if want := k < len(cells)-1; l.exists(l.name(1, set, 0)) != want {
				t.Errorf("after cell %d of %d: pool service of set %d exists %v, want %v", k+1, len(cells), set, !want, want)
			}
		}
	}
}

// gatedDyn passes every call to the fake, but has each create wait for
// gate first.
type gatedDyn struct {
	dynamic.Interface
	gate func() error
}

// IsWatchListSemanticsUnSupported passes on what the fake says of itself:
// the informers ask their client (cache.ToListWatcherWithWatchListSemantics).
func (g gatedDyn) IsWatchListSemanticsUnSupported() bool {
	f, ok := g.Interface.(interface{ IsWatchListSemanticsUnSupported() bool })
	return ok && f.IsWatchListSemanticsUnSupported()
}

func (g gatedDyn) Resource(r schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return gatedResource{g.Interface.Resource(r), g.gate}
}

type gatedResource struct {
	dynamic.NamespaceableResourceInterface
	gate func() error
}

func (g gatedResource) Namespace(ns string) dynamic.ResourceInterface {
	return gatedNamespaced{g.NamespaceableResourceInterface.Namespace(ns), g.gate}
}

type gatedNamespaced struct {
	dynamic.ResourceInterface
	gate func() error
}

func (g gatedNamespaced) Create(ctx context.Context, obj *unstructured.Unstructured, opts metav1.CreateOptions, sub ...string) (*unstructured.Unstructured, error) {
	if err := g.gate(); err != nil {
		return nil, err
	}
	return g.ResourceInterface.Create(ctx, obj, opts, sub...)
}

// A cell's services are created together, not one after the other (at the
// study's N the round trips would add minutes of set-up): every create of
// a 4-service cell is held until all four are in flight. Created one by
// one, the first would wait for the others for ever (the guard fails it).
// An overloaded server's 429 is retried.
func TestColdStartCreatesTheCellsServicesTogether(t *testing.T) {
	const n = 4
	var mu sync.Mutex
	inFlight, refused := 0, 0
	all := make(chan struct{})
	gate := func() error {
		mu.Lock()
		if refused == 0 {
			refused++
			mu.Unlock()
			return apierrors.NewTooManyRequests("overloaded", 0)
		}
		inFlight++
		if inFlight == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-time.After(time.Minute):
			return errors.New("guard: the other creations never came while this one was in flight")
		}
	}
	l := newLab(t, labOptions{protocol: ProtocolFresh, gateCreate: gate})
	out := l.coldStart(l.cell(n, 0, 10*time.Second))
	for i, a := range out {
		checkCold(t, a, l, i, l.name(n, 0, i))
	}
}
