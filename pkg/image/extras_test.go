package image

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestExtrasTable(t *testing.T) {
	for _, f := range Extras {
		if _, err := os.Stat(functionsRoot + "/" + f.SourceDir + "/" + f.Source); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
		if got, ok := LookupFunction(f.Name); !ok || got.DefaultRef != f.DefaultRef {
			t.Errorf("LookupFunction(%s) = %v, %v", f.Name, got, ok)
		}
		for _, g := range Functions {
			if g.Name == f.Name || g.DefaultRef == f.DefaultRef {
				t.Errorf("extra %s collides with function %s", f.Name, g.Name)
			}
		}
	}
	for name, ref := range map[string]string{"crash": "coldbench.local/fn-crash:v1", "coldbench": "coldbench.local/coldbench:v1",
		"coldbench-agent": "coldbench.local/coldbench-agent:v1"} {
		if f, _ := LookupFunction(name); f.DefaultRef != ref {
			t.Errorf("%s: DefaultRef %q, want %q", name, f.DefaultRef, ref)
		}
	}
	if !strings.Contains(functionNames(), "crash") || !strings.Contains(functionNames(), "coldbench, coldbench-agent") {
		t.Errorf("functionNames() = %s", functionNames())
	}
}

// The crash function exits non-zero at once, without listening.
func TestCrashFunction(t *testing.T) {
	requireTools(t, "cc")
	bin, err := BuildFunction(context.Background(), "crash", functionsRoot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "crash:") {
		t.Fatalf("exit %v, output %q", err, out)
	}
	f, _ := LookupFunction("crash")
	if _, err := Build(f.Spec(bin)); err != nil {
		t.Fatal(err) // also proves it is static
	}
}

// coldbench's own image: the static binary at /coldbench, run as 65532.
func TestColdbenchImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the coldbench command")
	}
	requireTools(t, "go")
	bin, err := BuildFunction(context.Background(), "coldbench", functionsRoot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := LookupFunction("coldbench")
	img, err := Build(f.Spec(bin))
	if err != nil {
		t.Fatal(err) // also proves it is static
	}
	cf, _ := img.ConfigFile()
	if !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/coldbench"}) || cf.Config.User != "65532:65532" || len(cf.Config.ExposedPorts) != 0 {
		t.Errorf("entrypoint %q user %q ports %v", cf.Config.Entrypoint, cf.Config.User, cf.Config.ExposedPorts)
	}
	out, err := exec.Command(bin, "run", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--print-records") {
		t.Errorf("coldbench run --help: %v\n%s", err, out)
	}
}

// The agent's image: its static binary at /coldbench-agent, run as 65532
// (deploy/agent.yaml adds the containerd socket's group, not uid 0), no
// port declared (it takes --port, not PORT). A stand-in static ELF: the
// image's shape does not depend on the program.
func TestColdbenchAgentImageSpec(t *testing.T) {
	f, ok := LookupFunction("coldbench-agent")
	if !ok || f.Language != Go || f.Port != 0 {
		t.Fatalf("coldbench-agent: %+v, %v", f, ok)
	}
	bin := fakeELF(t, t.TempDir(), "coldbench-agent", elf.EM_X86_64, false, "agent")
	img, err := Build(f.Spec(bin))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/coldbench-agent"}) || cf.Config.User != "65532:65532" ||
		len(cf.Config.ExposedPorts) != 0 || slices.ContainsFunc(cf.Config.Env, func(e string) bool { return strings.HasPrefix(e, "PORT=") }) {
		t.Errorf("entrypoint %q user %q ports %v env %q", cf.Config.Entrypoint, cf.Config.User, cf.Config.ExposedPorts, cf.Config.Env)
	}
	if _, err := os.Stat(functionsRoot + "/" + f.SourceDir + "/" + f.Source); err != nil {
		t.Error(err)
	}
}

// The agent built for real by the image builder: static (Build refuses
// anything else), and the program it is.
func TestColdbenchAgentImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the coldbench-agent command")
	}
	requireTools(t, "go")
	bin, err := BuildFunction(context.Background(), "coldbench-agent", functionsRoot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := LookupFunction("coldbench-agent")
	if _, err := Build(f.Spec(bin)); err != nil {
		t.Fatal(err) // also proves it is static
	}
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-containerd-socket") {
		t.Errorf("coldbench-agent -h: %v\n%s", err, out)
	}
}
