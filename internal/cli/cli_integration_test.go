package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/results"
)

// execute runs the CLI in-process and returns stdout and the error.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func sandboxCount(t *testing.T, ep string) int {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+node.SocketPath(ep), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Items)
}

// rawMedian is the textbook median, computed here independently of pkg/stats.
func rawMedian(v []int64) float64 {
	v = append([]int64(nil), v...)
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	if len(v)%2 == 1 {
		return float64(v[len(v)/2])
	}
	return float64(v[len(v)/2-1]+v[len(v)/2]) / 2
}

// The README's main job, smaller: runc and crun rows at two N, every attempt
// accounted for, and the printed median reproduced from the raw records.
func TestRunEndToEnd(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	out := filepath.Join(t.TempDir(), "run.jsonl")
	stdout, err := execute(t, "run", "--endpoint", ep, "--runtimes", "runc,crun", "--scales", "1,3",
		"--iterations", "3", "--warmups", "1", "-o", out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stdout)
	}
	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Headers) != 1 || len(set.Warnings) != 0 {
		t.Fatalf("headers %d, warnings %v", len(set.Headers), set.Warnings)
	}
	if want := (1 + 3) * (3 + 1) * 2; len(set.Attempts) != want {
		t.Fatalf("%d attempts, want %d", len(set.Attempts), want)
	}
	// Medians computed here from the raw records, independently of pkg/stats.
	type key struct {
		rt string
		n  int
	}
	lat := map[key][]int64{}
	for _, a := range set.Attempts {
		if a.Warmup {
			continue
		}
		if !a.OK {
			t.Errorf("attempt failed: %s %s", a.ErrorClass, a.Error)
			continue
		}
		k := key{a.Runtime, a.Scale}
		lat[k] = append(lat[k], a.TTFBNS)
	}
	for _, k := range []key{{"runc", 1}, {"runc", 3}, {"crun", 1}, {"crun", 3}} {
		v := lat[k]
		med := rawMedian(v)
		// Row: RUNTIME N ATTEMPTS OK FAIL MEAN STDEV MIN P50 ...
		want := fmt.Sprintf("%.3f", med/1e6)
		found := false
		// The main table only: the steps table under it has rows of the
		// same runtime and N.
		table, _, _ := strings.Cut(stdout, "\nsteps\n")
		for _, line := range strings.Split(table, "\n") {
			f := strings.Fields(line)
			if len(f) > 8 && f[0] == k.rt && f[1] == fmt.Sprint(k.n) {
				found = true
				if f[2] != fmt.Sprint(len(v)) || f[3] != fmt.Sprint(len(v)) || f[4] != "0" {
					t.Errorf("%v: attempts/ok/fail %v", k, f[2:5])
				}
				if f[8] != want {
					t.Errorf("%v: printed p50 %s, raw records give %s", k, f[8], want)
				}
			}
		}
		if !found {
			t.Errorf("no row for %v in:\n%s", k, stdout)
		}
	}
	if !strings.Contains(stdout, "raw records: "+out) {
		t.Errorf("output does not say where the records went:\n%s", stdout)
	}

	// report on the file alone, JSON: exact nanoseconds.
	js, err := execute(t, "report", "--format", "json", out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rows []struct {
			Runtime   string `json:"runtime"`
			Scale     int    `json:"scale"`
			Attempts  int    `json:"attempts"`
			Successes int    `json:"successes"`
			Failures  int    `json:"failures"`
			TTFB      struct {
				P50 *float64 `json:"p50"`
			} `json:"ttfb_ns"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if len(rep.Rows) != 4 {
		t.Fatalf("%d rows", len(rep.Rows))
	}
	for _, r := range rep.Rows {
		v := lat[key{r.Runtime, r.Scale}]
		if r.Successes+r.Failures != r.Attempts || r.TTFB.P50 == nil {
			t.Errorf("row %+v", r)
			continue
		}
		med := rawMedian(v)
		if *r.TTFB.P50 != med {
			t.Errorf("%s N=%d: json p50 %v, raw %v", r.Runtime, r.Scale, *r.TTFB.P50, med)
		}
	}
	for _, f := range []string{"csv", "markdown"} {
		if s, err := execute(t, "report", "--format", f, out); err != nil || !strings.Contains(s, "crun") {
			t.Errorf("report --format %s: %v\n%s", f, err, s)
		}
	}
}

// Bad input: one clear message naming the problem and the fix, non-zero
// exit, nothing created (no records file, no sandbox).
func TestRunRefusesBadInput(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.EndpointAlone(t)
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n  runtimes: [{name: runc, handler: runc}]\n  scales: [1]\n  iterationz: 3\n"), 0o644)
	before := sandboxCount(t, ep)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown handler", []string{"--runtimes", "runc,kata-fc"}, []string{`handler "kata-fc" is not configured`, "fix --runtimes"}},
		{"missing socket", []string{"--endpoint", "unix://" + filepath.Join(dir, "none.sock")}, []string{"containerd socket", "not found", "scripts/node-up.sh"}},
		{"unknown yaml field", []string{"-f", badYAML}, []string{`unknown field "spec.iterationz"`, `did you mean "spec.iterations"`}},
		{"zero N", []string{"--scales", "0"}, []string{"N = 0", "at least 1"}},
		{"huge N", []string{"--scales", "5000"}, []string{"--force"}},
		{"bad format", []string{"--format", "xml"}, []string{`--format "xml"`}},
		{"missing image", []string{"--image", "coldbench.local/nope:v9"}, []string{`image "coldbench.local/nope:v9" is not in containerd`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".jsonl")
			args := append([]string{"run", "--endpoint", ep, "-o", out}, c.args...)
			_, err := execute(t, args...)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Errorf("records file %s was created", out)
			}
		})
	}
	if after := sandboxCount(t, ep); after != before {
		t.Fatalf("sandboxes %d -> %d: refused runs created something", before, after)
	}
	// The process exit status is non-zero too.
	if code := Main([]string{"run", "--scales", "0"}); code == 0 {
		t.Fatal("exit status 0 for N = 0")
	}
}

func TestCleanOnlyTouchesColdbenchSandboxes(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.EndpointAlone(t)
	conn, err := grpc.NewClient("unix://"+node.SocketPath(ep), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx := context.Background()
	mk := func(name, ns string, labels map[string]string) string {
		resp, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Uid: name, Namespace: ns},
			Labels:   labels,
			Linux:    &runtimeapi.LinuxPodSandboxConfig{},
		}, RuntimeHandler: "runc"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.PodSandboxId
	}
	foreign := mk("coldbench-lookalike", "default", map[string]string{"app": "coldbench"})
	foreignLabelled := mk("other-ns", "default", map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal})
	ours := mk("ours", node.Namespace, map[string]string{bench.LabelManagedBy: bench.LabelManagedByVal, bench.LabelExperiment: "cb-test"})
	defer func() {
		for _, id := range []string{foreign, foreignLabelled} {
			rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
			rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		}
	}()
	if _, err := execute(t, "clean", "--endpoint", ep); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{foreign: true, foreignLabelled: true, ours: false} {
		_, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
		if exists := err == nil; exists != want {
			t.Errorf("sandbox %s exists=%v, want %v", id[:12], exists, want)
		}
	}
}
