package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coldbench/coldbench/pkg/platform/knative"
	"github.com/coldbench/coldbench/pkg/results"
)

// faultRun is one coldbench run with a fault injected while it runs.
type faultRun struct {
	runtimes string   // the experiment file's runtimes: YAML list entries
	extra    []string // more flags
	planned  int      // attempts the experiment plans
	// inject runs while coldbench does; p is coldbench, out its records,
	// ns the namespace it runs in.
	inject func(t *testing.T, p *process, out, ns string)
	// want: per runtime, the error class its failures must have ("" = none
	// may fail); any: failures allowed in these classes, at least one of
	// the first.
	want map[string]string
	any  []string
	// until, when set, ends the run with SIGINT once the records so far
	// satisfy it (planned is then an upper bound): for faults whose
	// recovery takes a time no iteration count can promise.
	until func([]results.Attempt) bool
}

// run runs f in a namespace of its own and checks: coldbench finishes (exit
// 0, 3 or 4 as its records say), every planned attempt is recorded once, failures carry the wanted
// reason, and `coldbench report` accounts for every attempt.
func (l *knativeLab) faultRun(t *testing.T, f faultRun) []results.Attempt {
	t.Helper()
	t0 := time.Now()
	ns := l.namespace(t, "cb-e2e-fault-")
	dir := t.TempDir()
	exp := filepath.Join(dir, "experiment.yaml")
	yaml := "apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nmetadata: {name: fault}\nspec:\n  platform: knative\n  runtimes:\n" +
		f.runtimes + "  scales: [1]\n  warmups: 0\n"
	if err := os.WriteFile(exp, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "fault.jsonl")
	args := append([]string{"run", "-f", exp, "--kubeconfig", l.kubeconfig, "--ingress", l.ingress, "-n", ns, "-o", out}, f.extra...)
	p := l.start(t, args...)
	if f.inject != nil {
		f.inject(t, p, out, ns)
	}
	stopped := f.until != nil && waitForRecords(out, p, 8*time.Minute, f.until)
	if stopped {
		p.cmd.Process.Signal(syscall.SIGINT)
	}
	// Failed attempts are records: the run finishes with 0 (none failed),
	// 3 (some) or 4 (all), checked against the records below; stopped, 130.
	code := 0
	if err := p.wait(t, 8*time.Minute); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || (stopped && ee.ExitCode() != 130) || (!stopped && ee.ExitCode() != 3 && ee.ExitCode() != 4) {
			t.Fatalf("coldbench did not finish (stopped with SIGINT: %v): %v\n%s\n%s", stopped, err, p.stdout.String(), p.stderr.String())
		}
		code = ee.ExitCode()
	}
	set, err := results.ReadFile(out)
	if err == nil && stopped {
		if code != 130 {
			t.Errorf("exit status %d after SIGINT, want 130", code)
		}
	} else if err == nil {
		failed := 0
		for _, a := range set.Attempts {
			if !a.OK {
				failed++
			}
		}
		want := 0
		switch {
		case failed > 0 && failed == len(set.Attempts):
			want = 4
		case failed > 0:
			want = 3
		}
		if code != want {
			t.Errorf("exit status %d with %d of %d attempts failed, want %d", code, failed, len(set.Attempts), want)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	classes := map[string]int{}
	for _, a := range set.Attempts {
		keys[fmt.Sprintf("%s/%d/%d/%d", a.Runtime, a.Scale, a.Iteration, a.Instance)] = true
		if a.OK {
			continue
		}
		classes[a.ErrorClass]++
		want, named := f.want[a.Runtime]
		switch {
		case named && a.ErrorClass != want:
			t.Errorf("%s iteration %d: %s: %s; want class %q", a.Runtime, a.Iteration, a.ErrorClass, a.Error, want)
		case !named && !slices.Contains(f.any, a.ErrorClass):
			t.Errorf("%s iteration %d: %s: %s; want one of %v", a.Runtime, a.Iteration, a.ErrorClass, a.Error, f.any)
		}
		t.Logf("recorded: %s iteration %d: %s: %.300s", a.Runtime, a.Iteration, a.ErrorClass, a.Error)
	}
	planned := f.planned
	if stopped {
		planned = len(set.Attempts)
	}
	if len(set.Attempts) != planned || len(keys) != planned {
		t.Errorf("%d records, %d distinct attempts; want %d", len(set.Attempts), len(keys), planned)
	}
	if len(f.any) > 0 && classes[f.any[0]] == 0 {
		t.Errorf("no failure of class %s recorded (fault not seen): %v", f.any[0], classes)
	}
	for rt, cls := range f.want {
		n := 0
		for _, a := range set.Attempts {
			if a.Runtime == rt && !a.OK {
				n++
			}
		}
		if cls != "" && n == 0 {
			t.Errorf("%s: no failure recorded, want class %s", rt, cls)
		}
	}
	l.reportAccounts(t, out, planned)
	if s, r, pods := l.leftovers(t, ns, set.Headers[0].ExperimentID); s+r+pods != 0 {
		t.Errorf("left behind: %d ksvcs, %d revisions, %d pods", s, r, pods)
	}
	t.Logf("%d attempts recorded, failures by class %v, in %v", len(set.Attempts), classes, time.Since(t0).Round(time.Second))
	return set.Attempts
}

// reportAccounts checks that `coldbench report` counts every attempt:
// successes + failures = attempts, failures = the sum of their classes.
func (l *knativeLab) reportAccounts(t *testing.T, out string, planned int) {
	t.Helper()
	o, err := execColdbench(l.bin, "report", "--format", "json", out)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, o)
	}
	var rep struct {
		Rows []struct {
			Runtime                       string
			Attempts, Successes, Failures int
			FailuresByClass               map[string]int `json:"failures_by_class"`
		}
	}
	if err := json.Unmarshal([]byte(o), &rep); err != nil {
		t.Fatalf("report json: %v\n%s", err, o)
	}
	total := 0
	for _, r := range rep.Rows {
		byClass := 0
		for _, n := range r.FailuresByClass {
			byClass += n
		}
		if r.Successes+r.Failures != r.Attempts || byClass != r.Failures {
			t.Errorf("report row %s: %d attempts = %d ok + %d failed (%v)?", r.Runtime, r.Attempts, r.Successes, r.Failures, r.FailuresByClass)
		}
		total += r.Attempts
	}
	if total != planned {
		t.Errorf("report counts %d attempts, want %d", total, planned)
	}
}

const goodRuntime = "  - {name: runc, handler: runc, image: dev.local/coldbench/fn-go:v1}\n"

// Faults of the function on the lab: a missing image, a function that
// crashes at start, a RuntimeClass deleted mid-run. Each is recorded as
// failures with its reason, the run goes on (a healthy runtime after it
// succeeds) and finishes, and the report accounts for every attempt. The
// three run at once, each in its own namespace, alongside the other
// parallel lab tests.
func TestKnativeFunctionFaults(t *testing.T) {
	t.Parallel()
	l := setupKnativeLab(t)
	t.Run("group", func(t *testing.T) {
		t.Run("image-missing", func(t *testing.T) {
			t.Parallel()
			// No registry answers at 127.0.0.1:1: by tag, Knative cannot
			// resolve the digest (the revision fails); by digest, the
			// kubelet cannot pull it (the pod fails). Nothing leaves the host.
			l.faultRun(t, faultRun{
				runtimes: "  - {name: missing-tag, handler: runc, image: \"127.0.0.1:1/coldbench/no-such:v1\"}\n" +
					"  - {name: missing-digest, handler: runc, image: \"127.0.0.1:1/coldbench/no-such@sha256:" + strings.Repeat("0", 64) + "\"}\n" + goodRuntime,
				extra: []string{"--iterations", "1", "--timeout", "20s"}, planned: 3,
				want: map[string]string{"missing-tag": results.ErrImage, "missing-digest": results.ErrImage, "runc": ""},
			})
		})
		t.Run("crash", func(t *testing.T) {
			t.Parallel()
			l.importImage(t, "crash", "coldbench.local/fn-crash:v1")
			l.faultRun(t, faultRun{
				runtimes: "  - {name: crash, handler: runc, image: coldbench.local/fn-crash:v1}\n" + goodRuntime,
				extra:    []string{"--iterations", "1", "--timeout", "20s"}, planned: 2,
				want: map[string]string{"crash": results.ErrCrashed, "runc": ""},
			})
		})
		t.Run("runtimeclass-deleted", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rc := "runc-doomed-" + suffix()
			if _, err := l.kube.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: rc}, Handler: "runc"}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.kube.NodeV1().RuntimeClasses().Delete(context.Background(), rc, metav1.DeleteOptions{}) })
			attempts := l.faultRun(t, faultRun{
				runtimes: "  - {name: doomed, handler: " + rc + ", image: dev.local/coldbench/fn-go:v1}\n" + goodRuntime,
				extra:    []string{"--iterations", "2", "--timeout", "20s"}, planned: 4,
				want: map[string]string{"doomed": results.ErrRuntime, "runc": ""},
				inject: func(t *testing.T, p *process, out, _ string) {
					if !waitForAttempt(out, p, 3*time.Minute, func(a results.Attempt) bool { return a.Runtime == "doomed" }) {
						t.Fatalf("no attempt on %s recorded\n%s", rc, p.stderr.String())
					}
					if err := l.kube.NodeV1().RuntimeClasses().Delete(ctx, rc, metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				},
			})
			for _, a := range attempts {
				if a.Runtime == "doomed" && a.Iteration == 0 && !a.OK {
					t.Errorf("doomed failed before its RuntimeClass was deleted: %s: %s", a.ErrorClass, a.Error)
				}
			}
		})
	})

}

// waitForService polls, every 50 ms for up to limit, until a ksvc exists in
// ns, and says whether one did.
func (l *knativeLab) waitForService(ns string, limit time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	svcs := l.dyn.Resource(knative.ServiceGVR).Namespace(ns)
	for ctx.Err() == nil {
		if list, err := svcs.List(ctx, metav1.ListOptions{}); err == nil && len(list.Items) > 0 {
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// okAfter fails t unless an attempt after the last failed one succeeded:
// the run recovered from the fault.
func okAfter(t *testing.T, attempts []results.Attempt) {
	t.Helper()
	if !recovered(attempts) {
		t.Errorf("no successful attempt after the fault: the run did not recover")
	}
}

// recovered says whether some attempt failed and one after the last failed
// one succeeded.
func recovered(attempts []results.Attempt) bool {
	lastFail := -1
	for _, a := range attempts {
		if !a.OK {
			lastFail = max(lastFail, a.Iteration)
		}
	}
	for _, a := range attempts {
		if lastFail >= 0 && a.OK && a.Iteration > lastFail {
			return true
		}
	}
	return false
}

// Faults of the cluster on the lab, with lab/ctl.sh: the kube-apiserver
// restarted (down for a minute) just after an attempt's ksvc was created;
// Traefik (the ingress,
// and the controller of Knative's ingresses) stopped until an attempt fails
// on it and started again. Each failure has its reason, the run recovers and
// finishes, the report accounts for every attempt. They stop lab daemons, so
// they run alone (not in parallel with any lab test).
func TestKnativeClusterFaults(t *testing.T) {
	l := setupKnativeLab(t)
	t.Run("apiserver-restart", func(t *testing.T) {
		var took time.Duration
		attempts := l.faultRun(t, faultRun{
			runtimes: goodRuntime,
			// After the API server, Knative's webhook and controllers take a
			// while, and the activator's informers a while longer: client-go
			// retries a broken watch with a backoff of up to 30 s plus as much
			// jitter, and until then the activator answers a new revision
			// with 404 "revision ... not found" (an http_status failure; seen
			// for a minute after a 65 s restart under load), and Traefik's
			// Knative provider may not have reconciled a new service's
			// ingress within the readiness timeout (ingress,
			// IngressNotConfigured). The kubelet cannot report to a server
			// that is down for a minute either, so the node controller may
			// taint the node unreachable once the server is back, until the
			// kubelet's next status: a pod created then waits for the
			// scheduler ("untolerated taint", not_scheduled; seen in CI).
			// So the run is stopped once it has recovered, not after a fixed
			// count.
			extra: []string{"--iterations", "40", "--timeout", "30s", "--readiness-timeout", "30s"}, planned: 40,
			any:   []string{results.ErrPlatform, results.ErrTimeout, results.ErrHTTPStatus, results.ErrIngress, results.ErrNotScheduled},
			until: recovered,
			inject: func(t *testing.T, p *process, out, ns string) {
				if !waitForAttempt(out, p, 3*time.Minute, func(a results.Attempt) bool { return a.Iteration == 1 }) {
					t.Fatalf("no second attempt\n%s", p.stderr.String())
				}
				// The restart must fall on an attempt, not on the teardown
				// between cells, which retries through it unseen. An
				// iteration is recorded once its teardown is over, so the
				// next ksvc in the namespace is the next iteration's, just
				// created: it needs the API server for a second or more yet
				// (Knative's controllers make its revision, the autoscaler
				// scales it from zero), and the server is down for longer
				// than the readiness and request timeouts.
				if !l.waitForService(ns, 3*time.Minute) {
					t.Fatalf("no ksvc created after the second attempt\n%s", p.stderr.String())
				}
				// A graceful restart, as in an upgrade: the API server stops
				// listening at once, drains for its request timeout (1 min),
				// then starts again; coldbench runs on meanwhile.
				t0 := time.Now()
				if err := l.labctlErr(t, "restart", "kube-apiserver", "90"); err != nil {
					t.Fatal(err)
				}
				took = time.Since(t0)
			},
		})
		okAfter(t, attempts)
		t.Logf("kube-apiserver restart took %v", took.Round(time.Second))
	})
	t.Run("ingress-stopped", func(t *testing.T) {
		var down time.Duration
		attempts := l.faultRun(t, faultRun{
			runtimes: goodRuntime,
			extra:    []string{"--iterations", "5", "--timeout", "30s", "--readiness-timeout", "10s"}, planned: 5,
			any: []string{results.ErrIngress, results.ErrConnection},
			inject: func(t *testing.T, p *process, out, _ string) {
				if !waitForAttempt(out, p, 3*time.Minute, func(a results.Attempt) bool { return a.Iteration == 1 }) {
					t.Fatalf("no second attempt\n%s", p.stderr.String())
				}
				t0 := time.Now()
				l.labctl(t, "stop", "traefik")
				seen := waitForAttempt(out, p, 90*time.Second, func(a results.Attempt) bool { return a.ErrorClass == results.ErrIngress })
				l.labctl(t, "start", "traefik")
				down = time.Since(t0)
				if !seen {
					t.Errorf("no attempt failed on the ingress while Traefik was down")
				}
			},
		})
		okAfter(t, attempts)
		t.Logf("Traefik down for %v", down.Round(time.Second))
	})
}
