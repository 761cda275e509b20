package knative

// BenchmarkFootprint1000: coldbench's memory and CPU while it tracks 1000
// Knative services, against client-go fakes (typed and dynamic) and a
// loopback ingress in this process.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/coldbench/coldbench/internal/testenv/helperproc"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/probe"
)

// footprintCluster plays Knative for the footprint benchmark, as cheaply as
// possible: a new ksvc is Ready at once with a revision Deployment at zero.
// The ingress runs in a process of its own (footprintIngress, via TestMain),
// like a real one, so its connections and buffers are not counted as
// coldbench's: it answers Knative's route probe, and holds a real GET until
// this process has created the revision's pod (ready), then replies.
type footprintCluster struct {
	ns      string
	kube    *fake.Clientset
	dyn     *dynamicfake.FakeDynamicClient
	ingress string // HOST:PORT

	mu     sync.Mutex
	byHost map[string]string            // host -> revision
	labels map[string]map[string]string // revision -> pod labels
	stdin  io.WriteCloser
}

func newFootprintCluster(tb testing.TB, ns string) *footprintCluster {
	c := &footprintCluster{ns: ns, kube: fake.NewClientset(), byHost: map[string]string{}, labels: map[string]map[string]string{},
		dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(kruntime.NewScheme(), map[schema.GroupVersionResource]string{ServiceGVR: "ServiceList"})}
	var lines *bufio.Scanner
	c.stdin, lines = helperproc.Start(tb, "COLDBENCH_FOOTPRINT_INGRESS")
	if !lines.Scan() {
		tb.Fatal("the ingress process said nothing")
	}
	c.ingress = strings.TrimSpace(lines.Text())
	gets := make(chan string, 1024)
	go func() {
		for lines.Scan() {
			if host, ok := strings.CutPrefix(lines.Text(), "GET "); ok {
				gets <- host
			}
		}
		close(gets)
	}()
	for range 8 {
		go func() {
			for host := range gets {
				c.coldStart(host)
			}
		}()
	}
	return c
}

func (c *footprintCluster) controller(ctx context.Context, w watch.Interface) {
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || ev.Type != watch.Added {
			continue
		}
		name := u.GetName()
		host, rev := name+"."+c.ns+".example.com", name+"-00001"
		labels := map[string]string{LabelRevision: rev, LabelService: name}
		tl, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
		for k, v := range tl {
			labels[k] = v
		}
		c.mu.Lock()
		c.byHost[host], c.labels[rev] = rev, labels
		c.mu.Unlock()
		zero := int32(0)
		c.kube.AppsV1().Deployments(c.ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: rev + "-deployment", Namespace: c.ns, Labels: labels},
			Spec: appsv1.DeploymentSpec{Replicas: &zero}}, metav1.CreateOptions{})
		u.Object["status"] = map[string]any{"observedGeneration": u.GetGeneration(), "latestCreatedRevisionName": rev, "url": "http://" + host,
			"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}
		c.dyn.Resource(ServiceGVR).Namespace(c.ns).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	}
}

// coldStart creates host's pod, ready, and lets the ingress reply.
func (c *footprintCluster) coldStart(host string) {
	c.mu.Lock()
	rev := c.byHost[host]
	labels := c.labels[rev]
	c.mu.Unlock()
	ready := []corev1.ContainerStatus{{Name: UserContainer, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		{Name: QueueProxy, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: rev + "-deployment-1", Namespace: c.ns, Labels: labels},
		Spec:   corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: UserContainer}, {Name: QueueProxy}}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}, ContainerStatuses: ready}}
	c.kube.CoreV1().Pods(c.ns).Create(context.Background(), pod, metav1.CreateOptions{})
	c.mu.Lock()
	fmt.Fprintf(c.stdin, "ready %s\n", host)
	c.mu.Unlock()
}

// TestMain runs the test binary as BenchmarkFootprint1000's ingress process
// when COLDBENCH_FOOTPRINT_INGRESS=1, and as the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("COLDBENCH_FOOTPRINT_INGRESS") == "1" {
		footprintIngress()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// footprintIngress is BenchmarkFootprint1000's ingress, a process of its
// own. It prints its address, then "GET host" for every real request, which
// it holds until "ready host" arrives on its stdin.
func footprintIngress() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "footprint ingress:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	held := map[string]chan struct{}{}
	fmt.Println(ln.Addr())
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			host := strings.TrimPrefix(sc.Text(), "ready ")
			mu.Lock()
			if ch := held[host]; ch != nil {
				close(ch)
				delete(held, host)
			}
			mu.Unlock()
		}
		os.Exit(0) // the benchmark is done
	}()
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(probeHeader) != "" {
			w.Header().Set(probeHashHeader, r.Header.Get(probeHashHeader))
			return
		}
		ch := make(chan struct{})
		mu.Lock()
		held[r.Host] = ch
		fmt.Println("GET " + r.Host)
		mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		w.Header().Set(probe.ProcessStartHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
		w.Write([]byte("ok"))
	}))
}

// procStatus reads a kB figure (VmRSS, VmHWM) of this process.
func procStatus(tb testing.TB, field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFootprint1000 runs one classic-protocol cell of N = 1000 (1000
// ksvcs created and watched, 1000 route probes, 1000 GETs released together
// on 1000 pre-dialled connections, 1000 cold pods seen by the watches), then
// starts the next iteration, which waits by watching for those 1000 pods to
// go, and measures the process while it waits. It reports the peak RSS
// (VmHWM, the whole run), the RSS and Go heap while waiting, and the CPU
// used while waiting as a percentage of one core. The ingress runs in a
// process of its own; this one also holds the fake API server (its copy of
// every object, a copy per watcher of every event): the figures are upper
// bounds for coldbench itself.
//
//	go test -run '^$' -bench Footprint1000 -benchtime 1x ./pkg/platform/knative/
func BenchmarkFootprint1000(b *testing.B) {
	const n = 1000
	idle := 10 * time.Second
	if s := os.Getenv("COLDBENCH_FOOTPRINT_IDLE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		idle = d
	}
	// The fakes' watchers hold 100 events and panic when full; a real API
	// server has no such limit, and 1000 services make bursts of 1000.
	defer func(n int32) { watch.DefaultChanSize = n }(watch.DefaultChanSize)
	watch.DefaultChanSize = 5000
	for i := 0; i < b.N; i++ {
		ns := "cb-footprint"
		c := newFootprintCluster(b, ns)
		exp := bench.Default()
		exp.Spec.Platform = Name
		exp.Spec.Runtimes = bench.RuntimesFromNames([]string{"runc"}, "")
		exp.Spec.SetSection(Name, &Spec{Namespace: ns, Protocol: ProtocolClassic,
			ReadinessTimeout: bench.Duration{Duration: 5 * time.Minute}, ScaleToZeroTimeout: bench.Duration{Duration: time.Hour}})
		if err := exp.CompleteAndValidate(true); err != nil {
			b.Fatal(err)
		}
		SpecOf(exp).Ingress = c.ingress
		p := NewWithClients(exp, c.kube, c.dyn, "https://fake-api", nil)
		ctx, cancel := context.WithCancel(context.Background())
		w, err := c.dyn.Resource(ServiceGVR).Namespace(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		go c.controller(ctx, w)
		// The fakes keep a copy of every call (for tests' assertions): drop
		// them as they come, coldbench does not hold them.
		go func() {
			for ctx.Err() == nil {
				c.kube.ClearActions()
				c.dyn.ClearActions()
				time.Sleep(50 * time.Millisecond)
			}
		}()

		rssStart := procStatus(b, "VmRSS")
		if os.Getenv("COLDBENCH_FOOTPRINT_TRACE") != "" {
			go func() {
				t0 := time.Now()
				for ctx.Err() == nil {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					fmt.Fprintf(os.Stderr, "%6.2fs RSS %4.0f MiB heap %4.0f MiB goroutines %d\n", time.Since(t0).Seconds(), procStatus(b, "VmRSS"), float64(ms.HeapInuse)/(1<<20), runtime.NumGoroutine())
					time.Sleep(250 * time.Millisecond)
				}
			}()
		}
		cell := bench.Cell{ExperimentID: bench.NewExperimentID(time.Now()), Runtime: exp.Spec.Runtimes[0], Scale: n,
			RequestTimeout: time.Minute}
		sess, err := p.Open(ctx, exp, cell.ExperimentID, nil)
		if err != nil {
			b.Fatal(err)
		}
		s := sess.(*session)
		t0, cpu0 := time.Now(), cpuTime()
		out := s.ColdStart(ctx, cell)
		cellWall, cellCPU := time.Since(t0), cpuTime()-cpu0
		ok, firstErr := 0, ""
		for _, a := range out {
			if a.OK {
				ok++
			} else if firstErr == "" {
				firstErr = a.ErrorClass + ": " + a.Error
			}
		}
		if ok != n {
			b.Fatalf("%d of %d cold starts OK; first failure: %s", ok, n, firstErr)
		}

		// Iteration 1: classic waits, by watching, until the 1000 pods are
		// gone. Measure the process while it waits.
		cell.Iteration = 1
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ColdStart(ctx, cell)
		}()
		time.Sleep(time.Second) // settle
		runtime.GC()
		t1, cpu1 := time.Now(), cpuTime()
		time.Sleep(idle)
		idleCPU := float64(cpuTime()-cpu1) / float64(time.Since(t1)) * 100
		rssIdle, hwm := procStatus(b, "VmRSS"), procStatus(b, "VmHWM")
		if f := os.Getenv("COLDBENCH_FOOTPRINT_HEAPPROFILE"); f != "" {
			if pf, err := os.Create(f); err == nil {
				pprof.WriteHeapProfile(pf)
				pf.Close()
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		select {
		case <-done:
			b.Fatal("the classic iteration did not wait for the pods to go")
		default:
		}
		cancel()
		<-done
		w.Stop()
		s.tr.close()

		b.ReportMetric(hwm, "peak-RSS-MiB")
		b.ReportMetric(rssIdle, "idle-RSS-MiB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "idle-heap-MiB")
		b.ReportMetric(idleCPU, "idle-CPU-%core")
		b.ReportMetric(float64(cellCPU)/float64(cellWall)*100, "cell-CPU-%core")
		b.ReportMetric(cellWall.Seconds(), "cell-s")
		fmt.Fprintf(os.Stderr, "footprint, %d services: RSS %.0f MiB before, peak %.0f MiB, %.0f MiB while waiting (Go heap %.0f MiB); CPU %.2f%% of a core over %v of waiting; the cell took %v (%.0f%% of a core)\n",
			n, rssStart, hwm, rssIdle, float64(ms.HeapInuse)/(1<<20), idleCPU, idle, cellWall.Round(time.Millisecond), float64(cellCPU)/float64(cellWall)*100)
	}
}
