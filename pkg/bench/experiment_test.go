package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFileValid(t *testing.T) {
	exp, err := LoadFile("testdata/experiments/valid-full.yaml")
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
	if s.Runtimes[1].Image != "coldbench.local/fn-c:v1" || s.Runtimes[0].Image != DefaultImage {
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
	if s.Output != "results/study.jsonl" || s.Node.Port != 8080 {
		t.Errorf("output/node: %q %+v", s.Output, s.Node)
	}
	if exp.TotalAttempts() != (1+4+8)*(30+2)*3 {
		t.Errorf("total attempts %d", exp.TotalAttempts())
	}

	min, err := LoadFile("testdata/experiments/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := min.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	def := Default().Spec
	if min.Spec.Iterations != def.Iterations || min.Spec.Node.Endpoint != DefaultEndpoint || min.Spec.Platform != PlatformNode {
		t.Errorf("defaults not applied: %+v", min.Spec)
	}
}

func TestLoadFileInvalid(t *testing.T) {
	cases := map[string]string{
		"invalid-unknown-field.yaml":     `unknown field "spec.iteratons" (did you mean "spec.iterations"?)`,
		"invalid-unknown-nested.yaml":    `unknown field "spec.runtimes[0].runtimeClass"`,
		"invalid-wrong-type.yaml":        `field "spec.scales": want []int, got a string`,
		"invalid-bad-duration.yaml":      `field "spec.requestTimeout": soon is not a duration`,
		"invalid-apiversion.yaml":        "set apiVersion: coldbench.dev/v1alpha1",
		"invalid-zero-scale.yaml":        "spec.scales[1]: N = 0",
		"invalid-duplicate-runtime.yaml": `spec.runtimes[1].name: "runc" appears twice`,
	}
	files, _ := filepath.Glob("testdata/experiments/invalid-*.yaml")
	if len(files) != len(cases) {
		t.Fatalf("%d invalid files, %d cases: keep them in step", len(files), len(cases))
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			exp, err := LoadFile(filepath.Join("testdata/experiments", name))
			if err == nil {
				err = exp.CompleteAndValidate(false)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not contain %q", err, want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Spec)
		force  bool
		want   string // "" = valid
	}{
		{"default", func(*Spec) {}, false, ""},
		{"negative iterations", func(s *Spec) { s.Iterations = -1 }, false, "spec.iterations: -1"},
		{"zero iterations", func(s *Spec) { s.Iterations = 0 }, false, "spec.iterations: 0"},
		{"huge iterations", func(s *Spec) { s.Iterations = MaxIterations + 1 }, false, "spec.iterations"},
		{"negative warmups", func(s *Spec) { s.Warmups = -2 }, false, "spec.warmups"},
		{"N above cap", func(s *Spec) { s.Scales = []int{MaxScale + 1} }, false, "pass --force"},
		{"N above cap forced", func(s *Spec) { s.Scales = []int{MaxScale + 1} }, true, ""},
		{"N above hard cap forced", func(s *Spec) { s.Scales = []int{HardMaxScale + 1} }, true, "hard limit"},
		{"negative N", func(s *Spec) { s.Scales = []int{-3} }, false, "N = -3"},
		{"no scales", func(s *Spec) { s.Scales = nil }, false, "spec.scales: empty"},
		{"no runtimes", func(s *Spec) { s.Runtimes = nil }, false, "spec.runtimes: no runtime"},
		{"bad runtime name", func(s *Spec) { s.Runtimes[0].Name = "Run_C" }, false, `"Run_C" is not a valid name`},
		{"bad handler", func(s *Spec) { s.Runtimes[0].Handler = "kata qemu" }, false, "handler"},
		{"zero timeout", func(s *Spec) { s.RequestTimeout.Duration = 0 }, false, "spec.requestTimeout"},
		{"probe slower than timeout", func(s *Spec) {
			s.RequestTimeout.Duration = 500 * time.Millisecond
			s.ProbeInterval.Duration = time.Second
		}, false, "not shorter than"},
		{"tiny probe interval", func(s *Spec) { s.ProbeInterval.Duration = time.Microsecond }, false, "spec.probeInterval"},
		{"unknown platform", func(s *Spec) { s.Platform = "lambda" }, false, `unknown platform "lambda"`},
		{"bad port", func(s *Spec) { s.Node = &NodeSpec{Port: 70000} }, false, "spec.node.port"},
		{"bad endpoint", func(s *Spec) { s.Node = &NodeSpec{Endpoint: "tcp://1.2.3.4:1"} }, false, "spec.node.endpoint"},
		{"knative defaults", func(s *Spec) { s.Platform = PlatformKnative }, false, ""},
		{"knative with node section", func(s *Spec) { s.Platform = PlatformKnative; s.Node = &NodeSpec{} }, false, "spec.node: set, but spec.platform is \"knative\""},
		{"node with knative section", func(s *Spec) { s.Knative = &KnativeSpec{} }, false, "spec.knative: set"},
		{"knative bad protocol", func(s *Spec) { s.Platform = PlatformKnative; s.Knative = &KnativeSpec{Protocol: "lazy"} }, false, "spec.knative.protocol"},
		{"knative bad ingress", func(s *Spec) { s.Platform = PlatformKnative; s.Knative = &KnativeSpec{Ingress: "localhost"} }, false, "spec.knative.ingress"},
		{"knative bad namespace", func(s *Spec) { s.Platform = PlatformKnative; s.Knative = &KnativeSpec{Namespace: "Bad_NS"} }, false, "spec.knative.namespace"},
		{"knative short window", func(s *Spec) { s.Platform = PlatformKnative; s.Knative = &KnativeSpec{Window: "1s"} }, false, "spec.knative.window"},
		{"knative bad target", func(s *Spec) { s.Platform = PlatformKnative; s.Knative = &KnativeSpec{Target: "-2"} }, false, "spec.knative.target"},
		{"default runtime", func(s *Spec) { s.Runtimes = RuntimesFromNames([]string{"default"}, "") }, false, ""},
		{"knative h2c", func(s *Spec) { s.Platform = PlatformKnative; s.Knative = &KnativeSpec{HTTP: H2C} }, false, ""},
		{"knative bad http", func(s *Spec) { s.Platform = PlatformKnative; s.Knative = &KnativeSpec{HTTP: "h3"} }, false, `spec.knative.http (--http): "h3"`},
		{"knative pool", func(s *Spec) {
			s.Platform = PlatformKnative
			s.Knative = &KnativeSpec{Protocol: ProtocolPool, PoolSize: 4}
		}, false, ""},
		{"knative pool size without pool", func(s *Spec) { s.Platform = PlatformKnative; s.Knative = &KnativeSpec{PoolSize: 4} }, false, "spec.knative.poolSize (--pool-size) applies to the pool protocol only"},
		{"knative negative pool size", func(s *Spec) {
			s.Platform = PlatformKnative
			s.Knative = &KnativeSpec{Protocol: ProtocolPool, PoolSize: -1}
		}, false, "spec.knative.poolSize (--pool-size): -1"},
		{"knative interval without classic", func(s *Spec) {
			s.Platform = PlatformKnative
			s.Knative = &KnativeSpec{Protocol: ProtocolPool, TimeInterval: Duration{time.Second}}
		}, false, "spec.knative.timeInterval (--time-interval) applies to the classic protocol only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exp := Default()
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

func TestKnativeDefaults(t *testing.T) {
	exp := Default()
	exp.Spec.Platform = PlatformKnative
	exp.Spec.Runtimes = RuntimesFromNames([]string{"default", "kata-fc"}, "")
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	k := exp.Spec.Knative
	if k.Namespace != "coldbench" || k.Protocol != ProtocolFresh || k.HTTP != HTTP1 || k.ReadinessTimeout.Duration != 3*time.Minute {
		t.Errorf("knative defaults %+v", k)
	}
	if exp.Spec.Runtimes[0].Image != DefaultKnativeImage || exp.Spec.Runtimes[1].Handler != "kata-fc" || exp.Spec.Runtimes[0].Handler != "" {
		t.Errorf("runtimes %+v", exp.Spec.Runtimes)
	}
}

func TestPoolSetsShrinkAtLargeN(t *testing.T) {
	exp := Default()
	exp.Spec.Platform = PlatformKnative
	exp.Spec.Knative = &KnativeSpec{Protocol: ProtocolPool}
	if err := exp.CompleteAndValidate(false); err != nil {
		t.Fatal(err)
	}
	k := exp.Spec.Knative
	for n, want := range map[int]int{1: DefaultPoolSize, 8: DefaultPoolSize, 10: 9, 48: 2, 96: 1, 500: 1} {
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

func TestRuntimesFromNames(t *testing.T) {
	rs := RuntimesFromNames([]string{"runc", " crun", "default"}, "img:1")
	if len(rs) != 3 || rs[1].Name != "crun" || rs[1].Handler != "crun" || rs[2].Handler != "" || rs[2].Name != DefaultRuntimeName || rs[0].Image != "img:1" {
		t.Fatalf("%+v", rs)
	}
}

func TestDecodeEmpty(t *testing.T) {
	if _, err := Decode([]byte("  \n")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("got %v", err)
	}
	p := filepath.Join(t.TempDir(), "x.yaml")
	os.WriteFile(p, []byte("apiVersion: coldbench.dev/v1alpha1\nkind: Job\n"), 0o644)
	if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), "set kind: Experiment") {
		t.Fatalf("got %v", err)
	}
}

// Complete fills the defaults and nothing else; Validate only checks: it
// changes nothing, and refuses what Complete would have filled in.
func TestCompleteThenValidate(t *testing.T) {
	for _, platform := range []string{PlatformNode, PlatformKnative} {
		exp := Default()
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
