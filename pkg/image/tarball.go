package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
	refs := slices.Sorted(maps.Keys(imgs))
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

func bytesBlob(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// archive is the contents of a layout tarball: the OCI index, the docker
// manifest and the blobs both point at, each stored once.
type archive struct {
	index       v1.IndexManifest
	docker      tarball.Manifest
	dockerEntry map[v1.Hash]int // manifest digest -> index into docker
	blobs       map[string]blob // "blobs/sha256/<hex>" -> contents
	blobOrder   []string        // the blobs in the order they were added
}

func writeLayout(w io.Writer, refs []string, imgs map[string]v1.Image) error {
	a := &archive{
		index:       v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex},
		dockerEntry: map[v1.Hash]int{},
		blobs:       map[string]blob{},
	}
	for _, ref := range refs {
		if err := a.add(ref, imgs[ref]); err != nil {
			return err
		}
	}
	return a.write(w)
}

// addBlob adds a blob (once) and returns its path in the archive.
func (a *archive) addBlob(h v1.Hash, size int64, open func() (io.ReadCloser, error)) string {
	p := "blobs/" + h.Algorithm + "/" + h.Hex
	if _, ok := a.blobs[p]; !ok {
		a.blobs[p] = blob{size, open}
		a.blobOrder = append(a.blobOrder, p)
	}
	return p
}

// imageParts is what the archive needs of an image.
type imageParts struct {
	rawManifest, rawConfig []byte
	mediaType              types.MediaType
	digest, configName     v1.Hash
	config                 *v1.ConfigFile
	layers                 []v1.Layer
}

func partsOf(img v1.Image) (ip imageParts, err error) {
	if ip.rawManifest, err = img.RawManifest(); err != nil {
		return ip, err
	}
	if ip.mediaType, err = img.MediaType(); err != nil {
		return ip, err
	}
	if ip.digest, err = img.Digest(); err != nil {
		return ip, err
	}
	if ip.rawConfig, err = img.RawConfigFile(); err != nil {
		return ip, err
	}
	if ip.configName, err = img.ConfigName(); err != nil {
		return ip, err
	}
	if ip.config, err = img.ConfigFile(); err != nil {
		return ip, err
	}
	ip.layers, err = img.Layers()
	return ip, err
}

// add adds img's blobs, its index entry (named ref) and its docker entry
// (tagged ref, unless ref is a digest).
func (a *archive) add(ref string, img v1.Image) error {
	ip, err := partsOf(img)
	if err != nil {
		return err
	}
	a.addBlob(ip.digest, int64(len(ip.rawManifest)), bytesBlob(ip.rawManifest))
	cfgPath := a.addBlob(ip.configName, int64(len(ip.rawConfig)), bytesBlob(ip.rawConfig))
	var layerPaths []string
	for _, layer := range ip.layers {
		d, err := layer.Digest()
		if err != nil {
			return err
		}
		size, err := layer.Size()
		if err != nil {
			return err
		}
		layerPaths = append(layerPaths, a.addBlob(d, size, layer.Compressed))
	}

	annotations := map[string]string{AnnotationImageName: ref}
	tag, tagErr := name.NewTag(ref)
	if tagErr == nil {
		annotations[AnnotationRefName] = tag.TagStr()
	}
	desc := v1.Descriptor{
		MediaType:   ip.mediaType,
		Size:        int64(len(ip.rawManifest)),
		Digest:      ip.digest,
		Annotations: annotations,
	}
	if cf := ip.config; cf.OS != "" && cf.Architecture != "" {
		desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	}
	a.index.Manifests = append(a.index.Manifests, desc)

	// One docker entry per image; docker has no place for digest refs.
	i, ok := a.dockerEntry[ip.digest]
	if !ok {
		i = len(a.docker)
		a.dockerEntry[ip.digest] = i
		a.docker = append(a.docker, tarball.Descriptor{Config: cfgPath, Layers: layerPaths})
	}
	if tagErr == nil {
		a.docker[i].RepoTags = append(a.docker[i].RepoTags, ref)
	}
	return nil
}

// write writes the archive: oci-layout, index.json, manifest.json, then
// the blobs, every entry dated at the epoch.
func (a *archive) write(w io.Writer) error {
	indexJSON, err := json.Marshal(a.index)
	if err != nil {
		return err
	}
	dockerJSON, err := json.Marshal(a.docker)
	if err != nil {
		return err
	}
	tw := epochTar{tar.NewWriter(w)}
	ociLayout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := tw.file("oci-layout", int64(len(ociLayout)), bytes.NewReader(ociLayout)); err != nil {
		return err
	}
	if err := tw.file("index.json", int64(len(indexJSON)), bytes.NewReader(indexJSON)); err != nil {
		return err
	}
	if err := tw.file("manifest.json", int64(len(dockerJSON)), bytes.NewReader(dockerJSON)); err != nil {
		return err
	}
	if err := tw.dir("blobs/"); err != nil {
		return err
	}
	if err := tw.dir("blobs/sha256/"); err != nil {
		return err
	}
	for _, p := range a.blobOrder {
		b := a.blobs[p]
		rc, err := b.open()
		if err != nil {
			return err
		}
		err = tw.file(p, b.size, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// epochTar writes entries dated at the epoch, so the archive depends on
// its contents alone.
type epochTar struct{ *tar.Writer }

// file writes a regular file of size bytes read from r.
func (tw epochTar) file(p string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	n, err := io.Copy(tw, r)
	if err == nil && n != size {
		err = fmt.Errorf("%s: wrote %d bytes, expected %d", p, n, size)
	}
	return err
}

func (tw epochTar) dir(p string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: 0o755, ModTime: time.Unix(0, 0)})
}
