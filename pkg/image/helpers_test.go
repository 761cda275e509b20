package image

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// functionsRoot is the repository's functions/ directory.
const functionsRoot = "../../functions"

// missing skips a test whose external prerequisite is absent, except under
// CI=true where an absent prerequisite means a broken runner and must fail.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and "+format, args...)
	}
	t.Skipf(format, args...)
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, "%s is not in PATH", tool)
		}
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	builtBins map[string]string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// builtFunctions compiles every function once per test binary, for real.
func builtFunctions(t *testing.T) map[string]string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	requireTools(t, "go", cc)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "coldbench-fn-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bins := map[string]string{}
		for _, f := range Functions {
			p, err := BuildFunction(ctx, f.Name, functionsRoot, buildDir)
			if err != nil {
				buildErr = err
				return
			}
			bins[f.Name] = p
		}
		builtBins = bins
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBins
}

// fakeELF writes a minimal ELF64 executable header (enough for debug/elf);
// dynamic adds a PT_INTERP program header like a dynamically linked binary.
func fakeELF(t *testing.T, dir, name string, machine elf.Machine, dynamic bool, payload string) string {
	t.Helper()
	const ehsize, phentsize = 64, 56
	h := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Ehsize:    ehsize,
		Phentsize: phentsize,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var progs []elf.Prog64
	if dynamic {
		h.Phoff, h.Phnum = ehsize, 1
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP)})
	}
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, v := range []any{h, progs, []byte(payload)} {
		if err := binary.Write(f, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Chmod(0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
