package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
