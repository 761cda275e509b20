package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// AnnotationImageName is the index annotation containerd's importer takes
	// verbatim as the image name.
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationRefName is the OCI layout's tag annotation.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// WriteTarball writes imgs, keyed by image ref, to path as one archive that
// is both an OCI image layout and a docker-save archive (the dual format
// docker save has produced since 25.0):
//
//   - oci-layout, index.json and blobs/sha256/* form the OCI layout. Each
//     index.json entry carries io.containerd.image.name = the ref exactly as
//     given, which `ctr -n k8s.io images import` uses as the image name
//     without normalising it (containerd prefers the OCI layout when both
//     are present).
//   - manifest.json points at the same blobs, for docker load and
//     go-containerregistry's tarball package. Docker-format importers
//     normalise names (fn:v1 -> docker.io/library/fn:v1), hence not the
//     primary format.
//
// Output is deterministic and is written to a temporary file renamed into
// place, so a reader never sees a partial archive.
func WriteTarball(path string, imgs map[string]v1.Image) (err error) {
	if len(imgs) == 0 {
		return errors.New("image: WriteTarball: no images")
	}
	refs := sortedKeys(imgs)
	for _, ref := range refs {
		if _, err := name.ParseReference(ref); err != nil {
			return fmt.Errorf("image: invalid ref %q: %w", ref, err)
		}
		if imgs[ref] == nil {
			return fmt.Errorf("image: nil image for %q", ref)
		}
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := writeLayout(tmp, refs, imgs); err != nil {
		return fmt.Errorf("image: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

type blob struct {
	size int64
	open func() (io.ReadCloser, error)
}

func writeLayout(w io.Writer, refs []string, imgs map[string]v1.Image) error {
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	var docker tarball.Manifest
	dockerEntry := map[v1.Hash]int{} // manifest digest -> index into docker
	blobs := map[string]blob{}       // "blobs/sha256/<hex>" -> contents
	var blobOrder []string

	addBlob := func(h v1.Hash, size int64, open func() (io.ReadCloser, error)) string {
		p := "blobs/" + h.Algorithm + "/" + h.Hex
		if _, ok := blobs[p]; !ok {
			blobs[p] = blob{size, open}
			blobOrder = append(blobOrder, p)
		}
		return p
	}
	bytesBlob := func(b []byte) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}

	for _, ref := range refs {
		img := imgs[ref]
		rawManifest, err := img.RawManifest()
		if err != nil {
			return err
		}
		mt, err := img.MediaType()
		if err != nil {
			return err
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		rawConfig, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		cfgName, err := img.ConfigName()
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}

		addBlob(digest, int64(len(rawManifest)), bytesBlob(rawManifest))
		cfgPath := addBlob(cfgName, int64(len(rawConfig)), bytesBlob(rawConfig))
		var layerPaths []string
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			layerPaths = append(layerPaths, addBlob(d, size, l.Compressed))
		}

		annotations := map[string]string{AnnotationImageName: ref}
		tag, tagErr := name.NewTag(ref)
		if tagErr == nil {
			annotations[AnnotationRefName] = tag.TagStr()
		}
		desc := v1.Descriptor{
			MediaType:   mt,
			Size:        int64(len(rawManifest)),
			Digest:      digest,
			Annotations: annotations,
		}
		if cf.OS != "" && cf.Architecture != "" {
			desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		}
		index.Manifests = append(index.Manifests, desc)

		// One docker entry per image; docker has no place for digest refs.
		i, ok := dockerEntry[digest]
		if !ok {
			i = len(docker)
			dockerEntry[digest] = i
			docker = append(docker, tarball.Descriptor{Config: cfgPath, Layers: layerPaths})
		}
		if tagErr == nil {
			docker[i].RepoTags = append(docker[i].RepoTags, ref)
		}
	}

	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	dockerJSON, err := json.Marshal(docker)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	file := func(p string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = fmt.Errorf("%s: wrote %d bytes, expected %d", p, n, size)
		}
		return err
	}
	dir := func(p string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: 0o755, ModTime: epoch})
	}

	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := file("oci-layout", int64(len(layout)), bytes.NewReader(layout)); err != nil {
		return err
	}
	if err := file("index.json", int64(len(indexJSON)), bytes.NewReader(indexJSON)); err != nil {
		return err
	}
	if err := file("manifest.json", int64(len(dockerJSON)), bytes.NewReader(dockerJSON)); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	for _, p := range blobOrder {
		b := blobs[p]
		rc, err := b.open()
		if err != nil {
			return err
		}
		err = file(p, b.size, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}
