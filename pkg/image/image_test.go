package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

func layerEntries(t *testing.T, img v1.Image) []tarEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("got %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []tarEntry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, b})
	}
}

func mustBuild(t *testing.T, s Spec) v1.Image {
	t.Helper()
	img, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildLayer(t *testing.T) {
	bin := fakeELF(t, t.TempDir(), "hello", elf.EM_X86_64, false, "payload")
	want, _ := os.ReadFile(bin)
	img := mustBuild(t, Spec{Binary: bin})

	entries := layerEntries(t, img)
	if len(entries) != 2 {
		t.Fatalf("layer has %d entries, want fn/ and fn/hello", len(entries))
	}
	dir, file := entries[0].hdr, entries[1].hdr
	if dir.Name != "fn/" || dir.Typeflag != tar.TypeDir || dir.Mode != 0o755 || dir.Uid != 0 || dir.Gid != 0 {
		t.Errorf("dir entry = %q type %c mode %o %d:%d, want fn/ dir 0755 0:0", dir.Name, dir.Typeflag, dir.Mode, dir.Uid, dir.Gid)
	}
	if file.Name != "fn/hello" || file.Typeflag != tar.TypeReg || file.Mode != 0o755 {
		t.Errorf("file entry = %q type %c mode %o, want fn/hello regular 0755", file.Name, file.Typeflag, file.Mode)
	}
	if file.Uid != 65532 || file.Gid != 65532 {
		t.Errorf("file owner = %d:%d, want 65532:65532", file.Uid, file.Gid)
	}
	if !file.ModTime.Equal(time.Unix(0, 0)) {
		t.Errorf("file mtime = %v, want Unix epoch", file.ModTime)
	}
	if !bytes.Equal(entries[1].body, want) {
		t.Error("layer file content differs from the binary")
	}

	layers, _ := img.Layers()
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type = %s, want %s", mt, types.OCILayer)
	}
}

func TestBuildNestedPathAndOwner(t *testing.T) {
	bin := fakeELF(t, t.TempDir(), "x", elf.EM_X86_64, false, "")
	img := mustBuild(t, Spec{Binary: bin, InImagePath: "/opt/cb/bin/fn", UID: 1000, GID: 2000})
	var names []string
	for _, e := range layerEntries(t, img) {
		names = append(names, e.hdr.Name)
		if e.hdr.Name == "opt/cb/bin/fn" && (e.hdr.Uid != 1000 || e.hdr.Gid != 2000) {
			t.Errorf("owner = %d:%d, want 1000:2000", e.hdr.Uid, e.hdr.Gid)
		}
	}
	if want := []string{"opt/", "opt/cb/", "opt/cb/bin/", "opt/cb/bin/fn"}; !reflect.DeepEqual(names, want) {
		t.Errorf("entries = %q, want %q", names, want)
	}
	cf, _ := img.ConfigFile()
	if cf.Config.User != "1000:2000" || !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/opt/cb/bin/fn"}) {
		t.Errorf("user %q entrypoint %q", cf.Config.User, cf.Config.Entrypoint)
	}
}

func TestBuildConfig(t *testing.T) {
	bin := fakeELF(t, t.TempDir(), "fn-go", elf.EM_X86_64, false, "")
	img := mustBuild(t, Spec{
		Ref:         "coldbench.local/fn-go:v1",
		Binary:      bin,
		ExposedPort: 8080,
		Labels:      map[string]string{"a": "b"},
	})
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q", c.User)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/fn/fn-go"}) || c.Cmd != nil {
		t.Errorf("Entrypoint = %q Cmd = %q", c.Entrypoint, c.Cmd)
	}
	if want := []string{"PATH=" + DefaultPath, "PORT=8080"}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("Env = %q, want %q", c.Env, want)
	}
	if want := map[string]struct{}{"8080/tcp": {}}; !reflect.DeepEqual(c.ExposedPorts, want) {
		t.Errorf("ExposedPorts = %v", c.ExposedPorts)
	}
	if c.WorkingDir != "/" || c.Labels["a"] != "b" {
		t.Errorf("WorkingDir %q Labels %v", c.WorkingDir, c.Labels)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform = %s/%s", cf.OS, cf.Architecture)
	}
	if !cf.Created.Equal(time.Unix(0, 0)) || len(cf.History) != 1 || !cf.History[0].Created.Equal(time.Unix(0, 0)) {
		t.Errorf("Created = %v, history %+v", cf.Created, cf.History)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type = %s", mt)
	}
	m, _ := img.Manifest()
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config media type = %s", m.Config.MediaType)
	}
}

func TestBuildEnvAndNoPort(t *testing.T) {
	bin := fakeELF(t, t.TempDir(), "pause", elf.EM_X86_64, false, "")
	img := mustBuild(t, Spec{
		Binary:      bin,
		InImagePath: "/pause",
		Entrypoint:  []string{"/pause", "-v"},
		UID:         65535,
		GID:         65535,
		Env:         []string{"FOO=bar", "PATH=/x", "EMPTY="},
	})
	cf, _ := img.ConfigFile()
	c := cf.Config
	if want := []string{"PATH=/x", "FOO=bar", "EMPTY="}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("Env = %q, want %q", c.Env, want)
	}
	if c.ExposedPorts != nil {
		t.Errorf("ExposedPorts = %v, want none", c.ExposedPorts)
	}
	if c.User != "65535:65535" || !reflect.DeepEqual(c.Entrypoint, []string{"/pause", "-v"}) {
		t.Errorf("User %q Entrypoint %q", c.User, c.Entrypoint)
	}
	if e := layerEntries(t, img); len(e) != 1 || e[0].hdr.Name != "pause" {
		t.Errorf("a binary at / needs no parent entries; got %d entries", len(e))
	}
}

func TestBuildDeterministic(t *testing.T) {
	dir := t.TempDir()
	bin := fakeELF(t, dir, "fn", elf.EM_X86_64, false, "same")
	spec := Spec{Binary: bin, ExposedPort: 8080, Labels: map[string]string{"x": "1", "y": "2", "z": "3"}}
	first := digestOf(t, mustBuild(t, spec))
	if again := digestOf(t, mustBuild(t, spec)); again != first {
		t.Fatalf("rebuild digest %s != %s", again, first)
	}

	// Same bytes elsewhere, with another mtime, give the same image.
	other := filepath.Join(t.TempDir(), "fn")
	b, _ := os.ReadFile(bin)
	if err := os.WriteFile(other, b, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	spec2 := spec
	spec2.Binary = other
	if d := digestOf(t, mustBuild(t, spec2)); d != first {
		t.Errorf("copied binary digest %s != %s", d, first)
	}

	spec3 := spec
	spec3.Created = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if d := digestOf(t, mustBuild(t, spec3)); d == first {
		t.Error("Created did not change the digest")
	}
	cf, _ := mustBuild(t, spec3).ConfigFile()
	if !cf.Created.Equal(spec3.Created) {
		t.Errorf("Created = %v", cf.Created)
	}

	changed := fakeELF(t, dir, "fn2", elf.EM_X86_64, false, "different")
	spec4 := spec
	spec4.Binary, spec4.InImagePath = changed, "/fn/fn"
	if d := digestOf(t, mustBuild(t, spec4)); d == first {
		t.Error("binary content did not change the digest")
	}
}

func TestBuildArch(t *testing.T) {
	dir := t.TempDir()
	arm := fakeELF(t, dir, "arm", elf.EM_AARCH64, false, "")
	cf, _ := mustBuild(t, Spec{Binary: arm}).ConfigFile()
	if cf.Architecture != "arm64" {
		t.Errorf("arch from aarch64 ELF = %q", cf.Architecture)
	}
	if _, err := Build(Spec{Binary: arm, Arch: "amd64"}); err == nil || !strings.Contains(err.Error(), "arm64") {
		t.Errorf("arch mismatch: err = %v", err)
	}
}

func TestBuildRejects(t *testing.T) {
	dir := t.TempDir()
	good := fakeELF(t, dir, "good", elf.EM_X86_64, false, "")
	dyn := fakeELF(t, dir, "dyn", elf.EM_X86_64, true, "")
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755)

	for name, tc := range map[string]struct {
		spec Spec
		want string
	}{
		"dynamic":     {Spec{Binary: dyn}, "dynamically linked"},
		"not ELF":     {Spec{Binary: script}, "not an ELF"},
		"no binary":   {Spec{}, "Binary is required"},
		"missing":     {Spec{Binary: filepath.Join(dir, "nope")}, "no such file"},
		"relative":    {Spec{Binary: good, InImagePath: "fn/x"}, "absolute"},
		"unclean":     {Spec{Binary: good, InImagePath: "/fn/../x"}, "absolute"},
		"root":        {Spec{Binary: good, InImagePath: "/"}, "absolute"},
		"bad env":     {Spec{Binary: good, Env: []string{"NOVALUE"}}, "KEY=VALUE"},
		"bad port":    {Spec{Binary: good, ExposedPort: 70000}, "out of range"},
		"negative id": {Spec{Binary: good, UID: -1}, "negative"},
		"bad ref":     {Spec{Binary: good, Ref: "UPPER/Case::x"}, "invalid ref"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Build(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestBuildAsRoot(t *testing.T) {
	bin := fakeELF(t, t.TempDir(), "fn", elf.EM_X86_64, false, "fn")
	img := mustBuild(t, Spec{Binary: bin, Root: true, UID: 1000})
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "0:0" {
		t.Fatalf("user %q, want 0:0", cfg.Config.User)
	}
}
