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
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func testImages(t *testing.T) map[string]v1.Image {
	t.Helper()
	dir := t.TempDir()
	goImg := mustBuild(t, Spec{Binary: fakeELF(t, dir, "fn-go", elf.EM_X86_64, false, "go"), ExposedPort: 8080})
	pause := mustBuild(t, Spec{Binary: fakeELF(t, dir, "pause", elf.EM_X86_64, false, "pause"), InImagePath: "/pause", UID: 65535, GID: 65535})
	return map[string]v1.Image{
		"coldbench.local/fn-go:v1":   goImg,
		"coldbench.local/pause:3.10": pause,
		"fn-short:v1":                goImg, // an alias docker-format import would rename
	}
}

// untar extracts a layout tarball so the layout package can open it.
func untar(t *testing.T, tarPath, dst string) []string {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		p := filepath.Join(dst, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteTarballOCILayout(t *testing.T) {
	imgs := testImages(t)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "images.tar")
	if err := WriteTarball(tarPath, imgs); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	root := t.TempDir()
	names := untar(t, tarPath, root)
	for _, want := range []string{"oci-layout", "index.json", "manifest.json"} {
		if !contains(names, want) {
			t.Errorf("archive lacks %s: %q", want, names)
		}
	}
	// goImg is stored once although it has two names.
	if blobs := countPrefix(names, "blobs/sha256/") - 1; blobs != 6 {
		t.Errorf("archive has %d blobs, want 6 (2 images x manifest, config, layer)", blobs)
	}

	p, err := layout.FromPath(root)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var gotRefs []string
	for _, desc := range im.Manifests {
		ref := desc.Annotations[AnnotationImageName]
		gotRefs = append(gotRefs, ref)
		want, ok := imgs[ref]
		if !ok {
			t.Errorf("unexpected image name %q", ref)
			continue
		}
		if r, _ := name.ParseReference(ref); desc.Annotations[AnnotationRefName] != r.Identifier() {
			t.Errorf("%s: ref.name = %q", ref, desc.Annotations[AnnotationRefName])
		}
		if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != "amd64" {
			t.Errorf("%s: platform = %+v", ref, desc.Platform)
		}
		got, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		if gd, wd := digestOf(t, got), digestOf(t, want); gd != wd {
			t.Errorf("%s: digest %s, want %s", ref, gd, wd)
		}
	}
	sort.Strings(gotRefs)
	if want := []string{"coldbench.local/fn-go:v1", "coldbench.local/pause:3.10", "fn-short:v1"}; !reflect.DeepEqual(gotRefs, want) {
		t.Errorf("names = %q, want exactly %q", gotRefs, want)
	}
}

func TestWriteTarballDockerReadable(t *testing.T) {
	imgs := testImages(t)
	tarPath := filepath.Join(t.TempDir(), "images.tar")
	if err := WriteTarball(tarPath, imgs); err != nil {
		t.Fatal(err)
	}
	for ref, want := range imgs {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tarball.ImageFromPath(tarPath, &tag)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		// The docker format has no manifest blob, so compare what it carries.
		gc, _ := got.ConfigName()
		wc, _ := want.ConfigName()
		if gc != wc {
			t.Errorf("%s: config %s, want %s", ref, gc, wc)
		}
		gl, _ := got.Layers()
		wl, _ := want.Layers()
		gd, _ := gl[0].Digest()
		wd, _ := wl[0].Digest()
		if len(gl) != 1 || gd != wd {
			t.Errorf("%s: layer %s, want %s", ref, gd, wd)
		}
	}
}

func TestWriteTarballDeterministic(t *testing.T) {
	imgs := testImages(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	if err := WriteTarball(a, imgs); err != nil {
		t.Fatal(err)
	}
	if err := WriteTarball(b, imgs); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two writes of the same images differ")
	}
}

func TestWriteTarballErrors(t *testing.T) {
	dir := t.TempDir()
	img := testImages(t)["coldbench.local/fn-go:v1"]
	for name, imgs := range map[string]map[string]v1.Image{
		"empty":   {},
		"bad ref": {"Not A Ref": img},
		"nil":     {"coldbench.local/x:v1": nil},
	} {
		if err := WriteTarball(filepath.Join(dir, "x.tar"), imgs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := WriteTarball(filepath.Join(dir, "missing", "x.tar"), map[string]v1.Image{"a/b:c": img}); err == nil {
		t.Error("missing directory: no error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, v := range list {
		if strings.HasPrefix(v, prefix) {
			n++
		}
	}
	return n
}
