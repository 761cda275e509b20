// Package image builds, saves and pushes the single-binary OCI images that
// coldbench runs as benchmark functions and pod sandboxes.
//
// Images are built without a daemon and reproducibly: the same binary and Spec
// always give the same digest, so results from different runs can be tied to
// exactly the image that produced them.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// DefaultUID and DefaultGID are the distroless "nonroot" ids.
	DefaultUID = 65532
	DefaultGID = 65532
	// DefaultPath is the PATH every image gets unless Spec.Env sets one.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Spec describes a single-binary image.
type Spec struct {
	// Ref is the image reference the image is meant for, e.g.
	// "coldbench.local/fn-go:v1". Build only validates it; WriteTarball and
	// Push take the ref explicitly.
	Ref string
	// Binary is the host path of a statically linked ELF executable.
	Binary string
	// Entrypoint defaults to []string{InImagePath}.
	Entrypoint []string
	// InImagePath is where Binary lives in the image; default /fn/<basename>.
	InImagePath string
	// UID and GID own the binary and are the image's User. Zero means the
	// default (65532); set Root to run as 0:0 instead.
	UID, GID int
	Root     bool
	// Env is appended to PATH (and PORT when ExposedPort is set); an entry
	// with the same name replaces the default.
	Env []string
	// ExposedPort, if non-zero, is declared as <port>/tcp and exported as PORT.
	ExposedPort int
	Labels      map[string]string
	// Created stamps the config, history and layer files; zero means the Unix
	// epoch so digests are reproducible. It is truncated to whole seconds.
	Created time.Time
	// Arch is the image architecture; default: taken from the binary's ELF
	// header (amd64 for x86-64), so the metadata cannot contradict the code.
	Arch string
}

// resolved is a Spec with defaults applied and validated.
type resolved struct {
	Spec
	created time.Time
	user    string
	env     []string
}

func (s Spec) resolve() (*resolved, error) {
	if s.Ref != "" {
		if _, err := name.ParseReference(s.Ref); err != nil {
			return nil, fmt.Errorf("image: invalid ref %q: %w", s.Ref, err)
		}
	}
	if s.Binary == "" {
		return nil, errors.New("image: Spec.Binary is required")
	}
	if s.InImagePath == "" {
		s.InImagePath = "/fn/" + filepath.Base(s.Binary)
	}
	if !path.IsAbs(s.InImagePath) || path.Clean(s.InImagePath) != s.InImagePath || s.InImagePath == "/" {
		return nil, fmt.Errorf("image: InImagePath %q must be a clean absolute file path", s.InImagePath)
	}
	if len(s.Entrypoint) == 0 {
		s.Entrypoint = []string{s.InImagePath}
	}
	switch {
	case s.Root:
		s.UID, s.GID = 0, 0
	default:
		if s.UID == 0 {
			s.UID = DefaultUID
		}
		if s.GID == 0 {
			s.GID = DefaultGID
		}
	}
	if s.UID < 0 || s.GID < 0 {
		return nil, fmt.Errorf("image: negative uid/gid %d:%d", s.UID, s.GID)
	}
	if s.ExposedPort < 0 || s.ExposedPort > 65535 {
		return nil, fmt.Errorf("image: ExposedPort %d out of range", s.ExposedPort)
	}
	env := []string{"PATH=" + DefaultPath}
	if s.ExposedPort != 0 {
		env = append(env, "PORT="+strconv.Itoa(s.ExposedPort))
	}
	for _, kv := range s.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("image: Env entry %q is not KEY=VALUE", kv)
		}
		replaced := false
		for i, have := range env {
			if strings.HasPrefix(have, k+"=") {
				env[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	created := s.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	return &resolved{
		Spec:    s,
		created: created.UTC().Truncate(time.Second),
		user:    fmt.Sprintf("%d:%d", s.UID, s.GID),
		env:     env,
	}, nil
}

// Build makes a one-layer linux image holding spec.Binary. It is
// deterministic: equal inputs give equal digests.
func Build(spec Spec) (v1.Image, error) {
	r, err := spec.resolve()
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(r.Binary)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	elfArch, err := checkStaticELF(r.Binary, bin)
	if err != nil {
		return nil, err
	}
	arch := r.Arch
	if arch == "" {
		arch = elfArch
	}
	if arch == "" {
		arch = "amd64"
	}
	if elfArch != "" && elfArch != arch {
		return nil, fmt.Errorf("image: %s is %s code but Spec.Arch is %s", r.Binary, elfArch, arch)
	}

	layer, err := binaryLayer(r, bin)
	if err != nil {
		return nil, err
	}

	cfg := &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: r.created},
		Config: v1.Config{
			User:       r.user,
			Entrypoint: append([]string(nil), r.Entrypoint...),
			Env:        r.env,
			WorkingDir: "/",
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	if r.ExposedPort != 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{strconv.Itoa(r.ExposedPort) + "/tcp": {}}
	}
	if len(r.Labels) > 0 {
		cfg.Config.Labels = make(map[string]string, len(r.Labels))
		for k, v := range r.Labels {
			cfg.Config.Labels[k] = v
		}
	}

	// OCI media types: what containerd and registries expect of new images.
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	base, err = mutate.ConfigFile(base, cfg)
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: r.created},
			CreatedBy: fmt.Sprintf("coldbench: COPY %s %s", filepath.Base(r.Binary), r.InImagePath),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("image: append layer: %w", err)
	}
	return img, nil
}

// binaryLayer returns a gzip layer with InImagePath's parent directories
// (root-owned, 0755) and the binary (uid:gid, 0755).
func binaryLayer(r *resolved, bin []byte) (v1.Layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	rel := strings.TrimPrefix(r.InImagePath, "/")
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeDir,
			Name:     strings.Join(parts[:i], "/") + "/",
			Mode:     0o755,
			ModTime:  r.created,
		}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     rel,
		Mode:     0o755,
		Uid:      r.UID,
		Gid:      r.GID,
		Size:     int64(len(bin)),
		ModTime:  r.created,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}

	// Compressed once here with the stdlib so the layer digest does not depend
	// on go-containerregistry's compressor or get recomputed on every read.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // zero header ModTime and no Name: reproducible
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	blob := gz.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	return plainLayer{layer}, nil
}

// plainLayer hides tarball's Descriptor method, whose empty (non-nil)
// annotations map makes Manifest() disagree with the marshalled manifest.
type plainLayer struct{ v1.Layer }

var elfArches = map[elf.Machine]string{
	elf.EM_X86_64:  "amd64",
	elf.EM_AARCH64: "arm64",
	elf.EM_RISCV:   "riscv64",
}

// checkStaticELF rejects what cannot run from a scratch image: non-ELF files
// and dynamically linked executables (the loader would be missing, which
// surfaces only at container start as a baffling "no such file").
func checkStaticELF(file string, bin []byte) (arch string, err error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("image: %s is not an ELF executable: %w", file, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("image: %s is an ELF %s, not an executable", file, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("image: %s is dynamically linked (has an ELF interpreter); build it with -static or CGO_ENABLED=0", file)
		}
	}
	return elfArches[f.Machine], nil
}
