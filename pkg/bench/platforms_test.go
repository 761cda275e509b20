package bench_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/knative"
	"github.com/coldbench/coldbench/pkg/platform/node"
	"github.com/coldbench/coldbench/pkg/results"
)

// TestMain registers the platforms, as the CLI does, for every test of the
// package: experiments name them and hold their sections. These tests are
// an external package so that pkg/bench itself imports no platform.
func TestMain(m *testing.M) {
	bench.Register(node.Backend())
	bench.Register(knative.Backend())
	os.Exit(m.Run())
}

func TestLoadFileValid(t *testing.T) {
	exp, err := bench.LoadFile("testdata/experiments/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	s := exp.Spec
	if exp.Metadata.Name != "runtimes-on-node" || s.Platform != "node" || len(s.Runtimes) != 3 {
		t.Fatalf("decoded %+v", exp)
	}
	if s.Runtimes[1].Image != "coldbench.local/fn-c:v1" || s.Runtimes[0].Image != bench.DefaultImage {
		t.Errorf("images: %q, %q", s.Runtimes[0].Image, s.Runtimes[1].Image)
	}
	if s.Runtimes[2].Handler != "" || s.Runtimes[1].Annotations["io.kubernetes.cri.untrusted-workload"] != "false" {
		t.Errorf("runtime 2/1: %+v %+v", s.Runtimes[2], s.Runtimes[1])
	}
	if got := s.Scales; len(got) != 3 || got[2] != 8 {
		t.Errorf("scales %v", got)
	}
	if s.Iterations != 30 || s.Warmups != 2 || s.RequestTimeout.Duration != 20*time.Second ||
		s.Deadline.Duration != 2*time.Hour || s.ProbeInterval.Duration != time.Millisecond {
		t.Errorf("numbers: %+v", s)
	}
	if s.Output != "results/study.jsonl" || node.SpecOf(exp).Port != 8080 {
		t.Errorf("output/node: %q %+v", s.Output, node.SpecOf(exp))
	}
	if exp.TotalAttempts() != (1+4+8)*(30+2)*3 {
		t.Errorf("total attempts %d", exp.TotalAttempts())
	}

	min, err := bench.LoadFile("testdata/experiments/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := min.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	def := bench.Default().Spec
	if min.Spec.Iterations != def.Iterations || node.SpecOf(min).Endpoint != node.DefaultEndpoint || min.Spec.Platform != node.Name {
		t.Errorf("defaults not applied: %+v", min.Spec)
	}
}

func TestKnativeDefaults(t *testing.T) {
	exp := bench.Default()
	exp.Spec.Platform = knative.Name
	exp.Spec.Runtimes = bench.RuntimesFromNames([]string{"default", "kata-fc"}, "")
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	k := knative.SpecOf(exp)
	if k.Namespace != "coldbench" || k.Protocol != knative.ProtocolFresh || k.HTTP != knative.HTTP1 || k.ReadinessTimeout.Duration != 3*time.Minute {
		t.Errorf("knative defaults %+v", k)
	}
	if exp.Spec.Runtimes[0].Image != knative.DefaultImage || exp.Spec.Runtimes[1].Handler != "kata-fc" || exp.Spec.Runtimes[0].Handler != "" {
		t.Errorf("runtimes %+v", exp.Spec.Runtimes)
	}
}

func TestPoolSetsShrinkAtLargeN(t *testing.T) {
	exp := bench.Default()
	exp.Spec.Platform = knative.Name
	exp.Spec.SetSection(knative.Name, &knative.Spec{Protocol: knative.ProtocolPool})
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	k := knative.SpecOf(exp)
	for n, want := range map[int]int{1: knative.DefaultPoolSize, 8: knative.DefaultPoolSize, 10: 9, 48: 2, 96: 1, 500: 1} {
		if got := k.PoolSets(n, 100); got != want {
			t.Errorf("default pool: PoolSets(%d, 100) = %d, want %d", n, got, want)
		}
	}
	if got := k.PoolSets(1, 5); got != 5 {
		t.Errorf("PoolSets(1, 5) = %d: never more sets than samples", got)
	}
	k.PoolSize = 20
	if got := k.PoolSets(500, 100); got != 20 {
		t.Errorf("explicit pool size 20 at N = 500: %d sets, want 20 (as given)", got)
	}
}

// Complete fills the defaults and nothing else; Validate only checks: it
// changes nothing, and refuses what Complete would have filled in.
func TestCompleteThenValidate(t *testing.T) {
	for _, platform := range []string{node.Name, knative.Name} {
		exp := bench.Default()
		exp.Spec.Platform = platform
		if err := exp.Validate(false); err == nil || !strings.Contains(err.Error(), "spec."+platform) {
			t.Errorf("%s, not completed: got %v, want the empty %s section refused", platform, err, platform)
		}
		before, _ := json.Marshal(exp)
		exp.Validate(false)
		if after, _ := json.Marshal(exp); string(after) != string(before) {
			t.Errorf("%s: Validate changed the experiment:\n%s\n%s", platform, before, after)
		}
		exp.Complete()
		if err := exp.Validate(false); err != nil {
			t.Errorf("%s, completed: %v", platform, err)
		}
		once, _ := json.Marshal(exp)
		exp.Complete()
		if twice, _ := json.Marshal(exp); string(twice) != string(once) {
			t.Errorf("%s: Complete is not idempotent:\n%s\n%s", platform, once, twice)
		}
	}
}

// --ingress and --kubeconfig are checked before any client exists.
func TestValidateIngressAndKubeconfig(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ingress, kubeconfig, want string
	}{
		{"127.0.0.1:31080", kc, ""},
		{"[::1]:80", "", ""},
		{"127.0.0.1:99999", "", `port "99999" is not a TCP port (1-65535)`},
		{"127.0.0.1:0", "", "not a TCP port"},
		{"127.0.0.1:http", "", "not a TCP port"},
		{"http://127.0.0.1:31080", "", "without a scheme"},
		{"127.0.0.1", "", "give HOST:PORT"},
		{":31080", "", "give HOST:PORT"},
		{"", filepath.Join(t.TempDir(), "missing"), "spec.knative.kubeconfig (--kubeconfig)"},
		{"", t.TempDir(), "is a directory"},
	} {
		e := bench.Default()
		e.Spec.Platform = knative.Name
		e.Spec.SetSection(knative.Name, &knative.Spec{Ingress: tc.ingress, Kubeconfig: tc.kubeconfig})
		err := e.CompleteAndValidate(false)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q %q: %v", tc.ingress, tc.kubeconfig, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q %q: got %v, want %q", tc.ingress, tc.kubeconfig, err, tc.want)
		}
	}
}

// Files recorded before timeInterval was refused outside the classic
// protocol (the fresh protocol ignored it) still resume.
func TestLoadResumeIgnoresAnOldFreshTimeInterval(t *testing.T) {
	exp := bench.Default()
	exp.Spec.Platform = knative.Name
	exp.Spec.SetSection(knative.Name, &knative.Spec{Protocol: knative.ProtocolFresh})
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	knative.SpecOf(exp).TimeInterval = bench.Duration{30 * time.Second} // as older versions accepted it
	h := results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: bench.NewExperimentID(time.Now()), Created: time.Now(), Experiment: exp}
	line, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.jsonl")
	if err := os.WriteFile(path, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := bench.LoadResume(path, nil)
	if err != nil {
		t.Fatalf("resume of an older fresh file with timeInterval: %v", err)
	}
	if k := knative.SpecOf(res.Exp); k.Protocol != knative.ProtocolFresh || k.TimeInterval.Duration != 0 {
		t.Errorf("resumed knative spec %+v", k)
	}
}

// A resume on another machine, where the recorded kubeconfig does not
// exist, is not refused when the resume gives one that does: what may
// change is applied before the recorded experiment is validated.
func TestLoadResumeAdjustsBeforeValidating(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exp := bench.Default()
	exp.Spec.Platform = knative.Name
	exp.Spec.SetSection(knative.Name, &knative.Spec{Kubeconfig: kc})
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	knative.SpecOf(exp).Kubeconfig = filepath.Join(dir, "gone") // as recorded elsewhere
	h := results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: bench.NewExperimentID(time.Now()), Created: time.Now(), Experiment: exp}
	line, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "r.jsonl")
	if err := os.WriteFile(path, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bench.LoadResume(path, nil); err == nil {
		t.Fatal("a recorded kubeconfig that does not exist was accepted without a replacement")
	}
	res, err := bench.LoadResume(path, func(e *bench.Experiment) error { knative.SpecOf(e).Kubeconfig = kc; return nil })
	if err != nil {
		t.Fatalf("resume with a kubeconfig given: %v", err)
	}
	if knative.SpecOf(res.Exp).Kubeconfig != kc {
		t.Errorf("kubeconfig %q, want %q", knative.SpecOf(res.Exp).Kubeconfig, kc)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*bench.Spec)
		force  bool
		want   string // "" = valid
	}{
		{"default", func(*bench.Spec) {}, false, ""},
		{"negative iterations", func(s *bench.Spec) { s.Iterations = -1 }, false, "spec.iterations: -1"},
		{"zero iterations", func(s *bench.Spec) { s.Iterations = 0 }, false, "spec.iterations: 0"},
		{"huge iterations", func(s *bench.Spec) { s.Iterations = bench.MaxIterations + 1 }, false, "spec.iterations"},
		{"negative warmups", func(s *bench.Spec) { s.Warmups = -2 }, false, "spec.warmups"},
		{"N above cap", func(s *bench.Spec) { s.Scales = []int{bench.MaxScale + 1} }, false, "pass --force"},
		{"N above cap forced", func(s *bench.Spec) { s.Scales = []int{bench.MaxScale + 1} }, true, ""},
		{"N above hard cap forced", func(s *bench.Spec) { s.Scales = []int{bench.HardMaxScale + 1} }, true, "hard limit"},
		{"negative N", func(s *bench.Spec) { s.Scales = []int{-3} }, false, "N = -3"},
		{"no scales", func(s *bench.Spec) { s.Scales = nil }, false, "spec.scales: empty"},
		{"no runtimes", func(s *bench.Spec) { s.Runtimes = nil }, false, "spec.runtimes: no runtime"},
		{"bad runtime name", func(s *bench.Spec) { s.Runtimes[0].Name = "Run_C" }, false, `"Run_C" is not a valid name`},
		{"bad handler", func(s *bench.Spec) { s.Runtimes[0].Handler = "kata qemu" }, false, "handler"},
		{"zero timeout", func(s *bench.Spec) { s.RequestTimeout.Duration = 0 }, false, "spec.requestTimeout"},
		{"probe slower than timeout", func(s *bench.Spec) {
			s.RequestTimeout.Duration = 500 * time.Millisecond
			s.ProbeInterval.Duration = time.Second
		}, false, "not shorter than"},
		{"tiny probe interval", func(s *bench.Spec) { s.ProbeInterval.Duration = time.Microsecond }, false, "spec.probeInterval"},
		{"footprint settle too short", func(s *bench.Spec) {
			s.Footprint = &bench.FootprintSpec{Settle: bench.Duration{Duration: 100 * time.Millisecond}}
		}, false, "spec.footprint.settle (--footprint-settle): 100ms; must be between 1s and 10m0s"},
		{"footprint settle too long", func(s *bench.Spec) { s.Footprint = &bench.FootprintSpec{Settle: bench.Duration{Duration: time.Hour}} }, false, "or turn footprint off (--footprint=false)"},
		{"footprint off, settle ignored", func(s *bench.Spec) { s.Footprint = &bench.FootprintSpec{Off: true} }, false, ""},
		{"footprint interleaved", func(s *bench.Spec) {
			s.Footprint = &bench.FootprintSpec{Settle: bench.Duration{Duration: time.Second}, Interleave: true}
		}, false, ""},
		{"interleave without footprint", func(s *bench.Spec) { s.Footprint = &bench.FootprintSpec{Off: true, Interleave: true} }, false, "set with footprint off"},
		{"interleave with one iteration", func(s *bench.Spec) {
			s.Iterations = 1
			s.Footprint = &bench.FootprintSpec{Settle: bench.Duration{Duration: time.Second}, Interleave: true}
		}, false, "1 iteration(s); the A/B needs at least 2"},
		{"unknown platform", func(s *bench.Spec) { s.Platform = "lambda" }, false, `unknown platform "lambda"`},
		{"bad port", func(s *bench.Spec) { s.SetSection(node.Name, &node.Spec{Port: 70000}) }, false, "spec.node.port"},
		{"bad endpoint", func(s *bench.Spec) { s.SetSection(node.Name, &node.Spec{Endpoint: "tcp://1.2.3.4:1"}) }, false, "spec.node.endpoint"},
		{"knative defaults", func(s *bench.Spec) { s.Platform = knative.Name }, false, ""},
		{"knative with node section", func(s *bench.Spec) { s.Platform = knative.Name; s.SetSection(node.Name, &node.Spec{}) }, false, "spec.node: set, but spec.platform is \"knative\""},
		{"node with knative section", func(s *bench.Spec) { s.SetSection(knative.Name, &knative.Spec{}) }, false, "spec.knative: set"},
		{"knative bad protocol", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{Protocol: "lazy"})
		}, false, "spec.knative.protocol"},
		{"knative bad ingress", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{Ingress: "localhost"})
		}, false, "spec.knative.ingress"},
		{"knative bad namespace", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{Namespace: "Bad_NS"})
		}, false, "spec.knative.namespace"},
		{"knative short window", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{Window: "1s"})
		}, false, "spec.knative.window"},
		{"knative bad target", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{Target: "-2"})
		}, false, "spec.knative.target"},
		{"default runtime", func(s *bench.Spec) { s.Runtimes = bench.RuntimesFromNames([]string{"default"}, "") }, false, ""},
		{"knative h2c", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{HTTP: knative.H2C})
		}, false, ""},
		{"knative bad http", func(s *bench.Spec) { s.Platform = knative.Name; s.SetSection(knative.Name, &knative.Spec{HTTP: "h3"}) }, false, `spec.knative.http (--http): "h3"`},
		{"knative pool", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{Protocol: knative.ProtocolPool, PoolSize: 4})
		}, false, ""},
		{"knative pool size without pool", func(s *bench.Spec) { s.Platform = knative.Name; s.SetSection(knative.Name, &knative.Spec{PoolSize: 4}) }, false, "spec.knative.poolSize (--pool-size) applies to the pool protocol only"},
		{"knative negative pool size", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{Protocol: knative.ProtocolPool, PoolSize: -1})
		}, false, "spec.knative.poolSize (--pool-size): -1"},
		{"knative interval without classic", func(s *bench.Spec) {
			s.Platform = knative.Name
			s.SetSection(knative.Name, &knative.Spec{Protocol: knative.ProtocolPool, TimeInterval: bench.Duration{time.Second}})
		}, false, "spec.knative.timeInterval (--time-interval) applies to the classic protocol only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exp := bench.Default()
			c.mutate(&exp.Spec)
			err := exp.CompleteAndValidate(c.force)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case c.want != "" && err == nil:
				t.Fatal("accepted")
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

// namedLikeAField is the section of a backend that cannot be registered.
type namedLikeAField struct{}

func (*namedLikeAField) Complete()                {}
func (*namedLikeAField) Validate(*bench.Problems) {}

// A backend named like a field every spec has would make its section and
// that field two JSON keys alike (encoding/json drops both): refused.
func TestRegisterRefusesANameTakenBySpec(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "spec.scales is a field of every spec") {
			t.Errorf("Register(\"scales\"): %v, want a panic naming spec.scales", r)
		}
	}()
	bench.Register(bench.Backend{Name: "scales", NewSection: func() bench.Section { return &namedLikeAField{} },
		Open: func(*bench.Experiment, *slog.Logger) (bench.Platform, error) { return nil, nil }})
}
