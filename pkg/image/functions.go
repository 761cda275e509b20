package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Language is the toolchain a function is built with.
type Language string

const (
	Go Language = "go"
	C  Language = "c"
)

// Function is a benchmark function (or the pod sandbox's pause process) that
// coldbench can build from the functions/ directory.
type Function struct {
	Name string
	// SourceDir is the function's directory under the functions root.
	SourceDir string
	// Source is the file compiled for C, and the marker file for Go (whose
	// whole package directory is built).
	Source     string
	Language   Language
	DefaultRef string
	// UID is the image's user and group id.
	UID int
	// Port is the HTTP port the function serves on; 0 for none (pause).
	Port int
	// InImagePath is the binary's path in the image; "" means /fn/<Name>.
	InImagePath string

	optLevel string // C only
}

// Functions lists the known functions in display order.
var Functions = []Function{
	{Name: "go-static", SourceDir: "go-static", Source: "main.go", Language: Go,
		DefaultRef: "coldbench.local/fn-go:v1", UID: DefaultUID, Port: 8080},
	{Name: "c-static", SourceDir: "c-static", Source: "server.c", Language: C,
		DefaultRef: "coldbench.local/fn-c:v1", UID: DefaultUID, Port: 8080, optLevel: "-O2"},
	// Like Kubernetes' pause image: uid 65535, entrypoint /pause, built for size.
	{Name: "pause", SourceDir: "pause", Source: "pause.c", Language: C,
		DefaultRef: "coldbench.local/pause:3.10", UID: 65535, InImagePath: "/pause", optLevel: "-Os"},
}

// Extras are images built only when named (`coldbench image build NAME`),
// never by --all: a test fixture, coldbench itself and its node agent.
var Extras = []Function{
	// Exits 1 at start without listening: the fault tests' crashing function.
	{Name: "crash", SourceDir: "crash", Source: "crash.c", Language: C,
		DefaultRef: "coldbench.local/fn-crash:v1", UID: DefaultUID, Port: 8080, optLevel: "-Os"},
	// The coldbench command, static, to run a study inside a cluster
	// (deploy/job.yaml). Its source is the module's cmd/coldbench, next to
	// the functions root.
	{Name: "coldbench", SourceDir: "../cmd/coldbench", Source: "main.go", Language: Go,
		DefaultRef: "coldbench.local/coldbench:v1", UID: DefaultUID, InImagePath: "/coldbench"},
	// coldbench's node agent, static, for its DaemonSet (deploy/agent.yaml):
	// the module's cmd/coldbench-agent. Non-root like the others: the
	// DaemonSet gives it containerd's socket through the socket's group
	// (supplementalGroups), not through uid 0.
	{Name: "coldbench-agent", SourceDir: "../cmd/coldbench-agent", Source: "main.go", Language: Go,
		DefaultRef: "coldbench.local/coldbench-agent:v1", UID: DefaultUID, InImagePath: "/coldbench-agent"},
}

// LookupFunction returns the Functions or Extras entry called name.
func LookupFunction(name string) (Function, bool) {
	for _, f := range append(Functions[:len(Functions):len(Functions)], Extras...) {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// Spec returns the image Spec for f built from binary, with f's default ref.
func (f Function) Spec(binary string) Spec {
	return Spec{
		Ref:         f.DefaultRef,
		Binary:      binary,
		InImagePath: f.InImagePath,
		UID:         f.UID,
		GID:         f.UID,
		ExposedPort: f.Port,
		Labels:      map[string]string{"dev.coldbench.function": f.Name},
	}
}

// BuildFunction compiles the named function into outDir/<name> and returns
// the binary's absolute path. srcDir is the functions root (holding
// go-static/, c-static/, pause/) or the function's own directory.
//
// Go functions are built with CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build
// -trimpath -buildvcs=false -ldflags "-s -w"; C functions with
// ${CC:-cc} -static -O2 (pause: -Os) for the host architecture.
func BuildFunction(ctx context.Context, name, srcDir, outDir string) (string, error) {
	f, ok := LookupFunction(name)
	if !ok {
		return "", fmt.Errorf("image: unknown function %q (known: %s)", name, functionNames())
	}
	dir, err := functionDir(f, srcDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	out, err := filepath.Abs(filepath.Join(outDir, f.Name))
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}

	var cmd *exec.Cmd
	switch f.Language {
	case Go:
		ldflags := "-s -w"
		if f.Name == "coldbench" {
			// Its results headers name the version and commit, as
			// `make build` and scripts/node-up.sh stamp them.
			ldflags += VersionLDFlags(ctx, dir)
		}
		cmd = exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	case C:
		cc := os.Getenv("CC")
		if cc == "" {
			cc = "cc"
		}
		cmd = exec.CommandContext(ctx, cc, "-static", f.optLevel, "-o", out, f.Source)
	default:
		return "", fmt.Errorf("image: function %s: unsupported language %q", f.Name, f.Language)
	}
	cmd.Dir = dir
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("image: building %s: %s: %w\n%s", f.Name, strings.Join(cmd.Args, " "), err, output)
	}
	return out, nil
}

// VersionLDFlags returns the -X flags that stamp coldbench's version (git
// describe --always --dirty) and commit into pkg/bench, read from the git
// checkout holding dir; "" outside one (the binary then says "dev").
func VersionLDFlags(ctx context.Context, dir string) string {
	git := func(args ...string) string {
		c := exec.CommandContext(ctx, "git", args...)
		c.Dir = dir
		b, err := c.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	version, commit := git("describe", "--always", "--dirty"), git("rev-parse", "HEAD")
	if version == "" || commit == "" {
		return ""
	}
	const pkg = "github.com/coldbench/coldbench/pkg/bench"
	return fmt.Sprintf(" -X %s.Version=%s -X %s.Commit=%s", pkg, version, pkg, commit)
}

// functionDir accepts either the functions root or the function's directory,
// so callers need not know which the CLI was given.
func functionDir(f Function, srcDir string) (string, error) {
	for _, d := range []string{filepath.Join(srcDir, f.SourceDir), srcDir} {
		if st, err := os.Stat(filepath.Join(d, f.Source)); err == nil && st.Mode().IsRegular() {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("image: function %s: %s not found in %s or %s",
		f.Name, f.Source, filepath.Join(srcDir, f.SourceDir), srcDir)
}

func functionNames() string {
	var names []string
	for _, f := range append(Functions[:len(Functions):len(Functions)], Extras...) {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}
