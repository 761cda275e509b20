package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// knativeLab locates the running lab for coldbench's knative platform.
type knativeLab struct {
	kubeconfig, ingress string
	kube                kubernetes.Interface
	dyn                 dynamic.Interface
	bin                 string
	lab                 testenv.Lab
}

func setupKnativeLab(t *testing.T) *knativeLab {
	t.Helper()
	testenv.Integration(t)
	lab := testenv.LabEnv(t)
	l := &knativeLab{kubeconfig: lab.Kubeconfig, ingress: strings.TrimSuffix(strings.TrimPrefix(lab.Ingress, "http://"), "/"), lab: lab}
	cfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if l.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if l.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := l.kube.Discovery().ServerVersion(); err != nil {
		testenv.MissingLab(t, "a running lab API server ("+err.Error()+")")
	}
	l.bin = testenv.BuildColdbench(t)
	return l
}

func suffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// args is a run on the lab in namespace ns. The footprint is off unless
// extra turns it on ("--footprint", the last occurrence wins): its settle
// and two reads per node add 2-4 s to every cell (testdata/lab/footprint.jsonl:
// the reads took 0.03-1.4 s), and only the tests that check footprints need
// them (the node agent's tests; the fault tests' experiment files keep the
// default, on).
func (l *knativeLab) args(ns string, extra ...string) []string {
	return append([]string{"run", "--platform", "knative", "--kubeconfig", l.kubeconfig, "--ingress", l.ingress,
		"-n", ns, "--timeout", "90s", "--footprint=false"}, extra...)
}

// study runs `coldbench run` on the lab in a new namespace (deleted at
// the end) with args, and returns its records and combined output.
func (l *knativeLab) study(t *testing.T, args ...string) (*results.Set, string) {
	t.Helper()
	ns := "cb-e2e-" + suffix()
	t.Cleanup(func() { l.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	out := filepath.Join(t.TempDir(), "records.jsonl")
	o, err := exec.Command(l.bin, l.args(ns, append(args, "-o", out)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, o)
	}
	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(set.Headers); n == 0 {
		t.Fatalf("no header in the records:\n%s", o)
	}
	if s, r, p := l.leftovers(t, ns, set.Headers[0].ExperimentID); s+r+p != 0 {
		t.Errorf("left behind: %d ksvcs, %d revisions, %d pods", s, r, p)
	}
	return set, string(o)
}

var ksvcs = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}
var revisions = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "revisions"}

// leftovers counts ksvcs, revisions and pods of one experiment.
func (l *knativeLab) leftovers(t *testing.T, ns, id string) (int, int, int) {
	t.Helper()
	return l.leftoversBy(t, ns, bench.LabelExperiment+"="+id)
}

// leftoversBy counts the ksvcs, revisions and pods in ns that match the
// label selector.
func (l *knativeLab) leftoversBy(t *testing.T, ns, selector string) (int, int, int) {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: selector}
	s, err := l.dyn.Resource(ksvcs).Namespace(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.dyn.Resource(revisions).Namespace(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.kube.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	return len(s.Items), len(r.Items), len(p.Items)
}

// Experiments 1-3 in one run: runc and crun, N = 1 and 3, every attempt a
// verified cold start through the ingress, nothing left afterwards.
func TestKnativeColdStarts(t *testing.T) {
	l := setupKnativeLab(t)
	ns := "cb-e2e-" + suffix()
	defer l.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	out := filepath.Join(t.TempDir(), "knative.jsonl")
	cmd := exec.Command(l.bin, l.args(ns, "--runtimes", "runc,crun", "--scales", "1,3", "--iterations", "2", "--warmups", "0", "-o", out)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("\n%s", stdout.String())
	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := (1 + 3) * 2 * 2; len(set.Attempts) != want {
		t.Fatalf("%d attempts, want %d", len(set.Attempts), want)
	}
	pods := map[string]bool{}
	for _, a := range set.Attempts {
		if !a.OK {
			t.Errorf("%s N=%d #%d: %s: %s", a.Runtime, a.Scale, a.Instance, a.ErrorClass, a.Error)
			continue
		}
		if a.Cold.Pod == "" || pods[a.Cold.Pod] || a.Cold.Revision == "" {
			t.Errorf("cold evidence %+v", a.Cold)
		}
		pods[a.Cold.Pod] = true
		for _, ph := range []string{"deployment_scaled", "pod_created", "pod_scheduled", "user_container_ready", "pod_ready", results.PhaseFunctionStart, results.PhaseFirstByte} {
			if _, ok := a.PhaseOffset(ph); !ok {
				t.Errorf("%s N=%d: phase %s missing: %+v", a.Runtime, a.Scale, ph, a.Phases)
			}
		}
		// The pod is born after the request and before the reply. Its Ready
		// condition may reach the API after the reply: the activator probes
		// the pod itself and forwards as soon as it answers.
		created, _ := a.PhaseOffset("pod_created")
		ready, _ := a.PhaseOffset("pod_ready")
		if created <= 0 || ready < created || created.Nanoseconds() > a.TTFBNS {
			t.Errorf("phases out of causal order: created %v ready %v ttfb %v", created, ready, time.Duration(a.TTFBNS))
		}
		checkKernelStamps(t, a)
	}
	if tb := set.Headers[0].Testbed; tb.Timestamps != results.TimestampsKernel {
		t.Errorf("header: timestamps %q (notes %q): want kernel", tb.Timestamps, tb.Notes)
	}
	for _, line := range []string{"runc", "crun"} {
		if !strings.Contains(stdout.String(), line) {
			t.Errorf("report lacks %s:\n%s", line, stdout.String())
		}
	}
	s, r, p := l.leftovers(t, ns, set.Headers[0].ExperimentID)
	if s+r+p != 0 {
		t.Errorf("left behind: %d ksvcs, %d revisions, %d pods", s, r, p)
	}
}

// The study's protocol: the same service every iteration, after its pods
// are gone; each sample must still be a new pod.
func TestKnativeClassicProtocol(t *testing.T) {
	l := setupKnativeLab(t)
	set, _ := l.study(t, "--protocol", "classic", "--runtimes", "runc", "--scales", "1", "--iterations", "2", "--warmups", "0")
	if len(set.Attempts) != 2 {
		t.Fatalf("%d attempts", len(set.Attempts))
	}
	a, b := set.Attempts[0], set.Attempts[1]
	if !a.OK || !b.OK || a.Cold.Revision != b.Cold.Revision || a.Cold.Pod == b.Cold.Pod || a.Cold.Pod == "" {
		t.Fatalf("classic samples: %+v\n%+v", a, b)
	}
	if a.Cold.PriorPods != 0 || b.Cold.PriorPods != 1 {
		t.Errorf("prior_pods %d, %d: want 0 (first activation) then 1 (re-activation)", a.Cold.PriorPods, b.Cold.PriorPods)
	}
}

// HTTP/2 cleartext through Traefik: a step's requests as streams of one
// connection, released in one write (one start for all), each a cold start.
func TestKnativeH2C(t *testing.T) {
	l := setupKnativeLab(t)
	set, _ := l.study(t, "--http", "h2c", "--runtimes", "runc", "--scales", "3", "--iterations", "1", "--warmups", "0")
	if len(set.Attempts) != 3 || set.Headers[0].Testbed.PlatformVersion["http"] != "h2c" {
		t.Fatalf("%d attempts, header %+v", len(set.Attempts), set.Headers[0].Testbed.PlatformVersion)
	}
	pods := map[string]bool{}
	for i, a := range set.Attempts {
		if !a.OK || a.Cold.Pod == "" || pods[a.Cold.Pod] {
			t.Fatalf("instance %d: %s %s, cold %+v", i, a.ErrorClass, a.Error, a.Cold)
		}
		pods[a.Cold.Pod] = true
		if !a.Start.Equal(set.Attempts[0].Start) || a.ReleaseSkewNS != 0 {
			t.Errorf("instance %d: start %v, skew %d ns: want one write, one start", i, a.Start, a.ReleaseSkewNS)
		}
		if _, ok := a.PhaseOffset(results.PhaseFunctionStart); !ok {
			t.Errorf("instance %d: no function_start: %+v", i, a.Phases)
		}
		checkKernelStamps(t, a)
	}
}

// checkKernelStamps: a's start is its request's transmit and its first
// byte the reply's receive, the kernel's stamps (issue 17), with the
// user-space ones beside them: the goroutine's start before the transmit,
// its read at or after the kernel's.
func checkKernelStamps(t *testing.T, a results.Attempt) {
	t.Helper()
	us, okS := a.PhaseOffset(results.PhaseUserStart)
	uf, okF := a.PhaseOffset(results.PhaseUserFirstByte)
	if a.Timestamps != results.TimestampsKernel || !okS || !okF || us > 0 || uf.Nanoseconds() < a.TTFBNS || a.ReleaseSkewUserNS < 0 {
		t.Errorf("%s N=%d #%d: timestamps %q (%s), user_start %v, user_first_byte %v, first byte %v",
			a.Runtime, a.Scale, a.Instance, a.Timestamps, a.TimestampsNote, us, uf, time.Duration(a.TTFBNS))
	}
}

// The pool protocol: two sets activated once (untimed), then used in turn;
// every sample a new pod of a revision that had scaled to zero.
func TestKnativePoolProtocol(t *testing.T) {
	l := setupKnativeLab(t)
	t0 := time.Now()
	set, o := l.study(t, "--protocol", "pool", "--pool-size", "2", "--window", "6s", "--runtimes", "runc",
		"--scales", "1", "--iterations", "3", "--warmups", "0")
	t.Logf("3 pool samples in %v", time.Since(t0).Round(time.Second))
	if !strings.Contains(o, "pool: every set activated once") {
		t.Errorf("no activation of the pool logged:\n%s", o)
	}
	if len(set.Attempts) != 3 || set.Headers[0].Testbed.PlatformVersion["protocol"] != "pool" {
		t.Fatalf("%d attempts, header %+v", len(set.Attempts), set.Headers[0].Testbed.PlatformVersion)
	}
	pods := map[string]bool{}
	for i, a := range set.Attempts {
		if !a.OK || a.Cold.Pod == "" || pods[a.Cold.Pod] {
			t.Fatalf("sample %d: %s %s, cold %+v", i, a.ErrorClass, a.Error, a.Cold)
		}
		pods[a.Cold.Pod] = true
		if want := 1 + i/2; a.Cold.PriorPods != want {
			t.Errorf("sample %d: prior_pods %d, want %d", i, a.Cold.PriorPods, want)
		}
	}
	r := []string{set.Attempts[0].Cold.Revision, set.Attempts[1].Cold.Revision, set.Attempts[2].Cold.Revision}
	if r[0] == r[1] || r[0] != r[2] {
		t.Errorf("revisions %v: want the two sets in turn", r)
	}
}

// Refusals: a RuntimeClass that does not exist, a wrong ingress, a
// namespace without permission. Each names the fix and creates nothing.
func TestKnativeRefusals(t *testing.T) {
	l := setupKnativeLab(t)
	ctx := context.Background()
	ns := "cb-e2e-" + suffix()
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"runtimeclass": {l.args(ns, "--runtimes", "runc,no-such-class"), `RuntimeClass "no-such-class" does not exist`},
		"ingress":      {append(l.args(ns, "--runtimes", "runc"), "--ingress", "127.0.0.1:1"), "pass --ingress HOST:PORT"},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := exec.Command(l.bin, c.args...).CombinedOutput()
			if err == nil || !strings.Contains(string(o), c.want) || !strings.Contains(string(o), "nothing was created") {
				t.Fatalf("err %v, output:\n%s\nwant %q", err, o, c.want)
			}
			if _, err := l.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
				t.Fatalf("namespace %s was created by a refused run", ns)
			}
		})
	}

	t.Run("permission", func(t *testing.T) {
		// A service account that may do nothing in namespace "default".
		sa := "cb-e2e-noperm-" + suffix()
		if _, err := l.kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer l.kube.CoreV1().ServiceAccounts("default").Delete(ctx, sa, metav1.DeleteOptions{})
		exp := int64(600)
		tok, err := l.kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		admin, err := clientcmd.LoadFromFile(l.kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cur := admin.Contexts[admin.CurrentContext]
		kc := clientcmdapi.NewConfig()
		kc.Clusters["lab"] = admin.Clusters[cur.Cluster]
		kc.AuthInfos["noperm"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
		kc.Contexts["noperm"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "noperm"}
		kc.CurrentContext = "noperm"
		path := filepath.Join(t.TempDir(), "noperm.kubeconfig")
		if err := clientcmd.WriteToFile(*kc, path); err != nil {
			t.Fatal(err)
		}
		args := []string{"run", "--platform", "knative", "--kubeconfig", path, "--ingress", l.ingress, "-n", "default", "--runtimes", "default"}
		o, err := exec.Command(l.bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(o), "not allowed: create services.serving.knative.dev") {
			t.Fatalf("err %v, output:\n%s", err, o)
		}
	})
}

// Ctrl-C mid-run: exit 130, records intact, no ksvc, revision or pod of
// the run left.
func TestKnativeInterrupt(t *testing.T) {
	l := setupKnativeLab(t)
	ns := "cb-e2e-" + suffix()
	defer l.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	out := filepath.Join(t.TempDir(), "int.jsonl")
	cmd := exec.Command(l.bin, l.args(ns, "--runtimes", "runc", "--scales", "2", "--iterations", "50", "--warmups", "0", "-o", out)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitForAttempts(t, out, 2, 5*time.Minute)
	time.Sleep(700 * time.Millisecond) // into the next cell
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\n%s", err, stderr.String())
	}
	set, err := results.ReadFile(out)
	if err != nil || len(set.Warnings) > 0 || len(set.Attempts) < 2 || len(set.Attempts)%2 != 0 {
		t.Fatalf("records after interrupt: %v, %+v", err, set)
	}
	s, r, p := l.leftovers(t, ns, set.Headers[0].ExperimentID)
	if s+r+p != 0 {
		t.Fatalf("after Ctrl-C: %d ksvcs, %d revisions, %d pods of the run remain\n%s", s, r, p, stderr.String())
	}
}

// Teardown is part of the step (issue 14): when `coldbench run` of a fresh
// experiment returns, no ksvc and no pod of the experiment is left, without
// running clean (study checks that), and every attempt's step records its
// set-up and teardown times.
func TestKnativeFreshRunLeavesNothingAndRecordsSetupAndTeardown(t *testing.T) {
	l := setupKnativeLab(t)
	set, _ := l.study(t, "--protocol", "fresh", "--runtimes", "runc", "--scales", "3", "--iterations", "2", "--warmups", "0")
	if want := 3 * 2; len(set.Attempts) != want {
		t.Fatalf("%d attempts, want %d", len(set.Attempts), want)
	}
	for _, a := range set.Attempts {
		if a.Step == nil || a.Step.SetupNS <= 0 || a.Step.TeardownNS <= 0 || a.Step.WallNS < a.Step.SetupNS+a.Step.TeardownNS {
			t.Errorf("N=%d iteration %d instance %d: step %+v, want set-up and teardown times within the wall time", a.Scale, a.Iteration, a.Instance, a.Step)
		}
	}
}
