package tools

import (
	"os"
	"path/filepath"
	"testing"
)

// The Go side reads the same file the scripts source, with the same
// override rule, so a version bump moves both.
func TestVersionsFileAndOverrides(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "config"), 0o755)
	os.WriteFile(filepath.Join(root, VersionsFile), []byte("# c\n\nCONTAINERD_VERSION=v9.9.9\nGVISOR_VERSION=g1\n"), 0o644)
	t.Setenv("COLDBENCH_CACHE_DIR", "/c")
	t.Setenv("CONTAINERD_VERSION", "") // empty is unset: the file decides
	t.Setenv("GVISOR_VERSION", "")
	if d, err := ContainerdBin(root); err != nil || d != "/c/containerd/v9.9.9/bin" {
		t.Errorf("ContainerdBin = %q, %v", d, err)
	}
	t.Setenv("GVISOR_VERSION", "g2")
	if d, err := GVisorBin(root); err != nil || d != "/c/gvisor/g2/bin" {
		t.Errorf("GVisorBin with GVISOR_VERSION=g2 = %q, %v", d, err)
	}
	os.WriteFile(filepath.Join(root, VersionsFile), []byte("CONTAINERD_VERSION\n"), 0o644)
	if _, err := ContainerdBin(root); err == nil {
		t.Error("a line without = was accepted")
	}
}

// The repository's own file names every version the scripts build.
func TestRepositoryVersionsFile(t *testing.T) {
	v, err := Versions(RepoRoot())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"CONTAINERD_VERSION", "GVISOR_VERSION", "CRICTL_VERSION"} {
		if v[k] == "" {
			t.Errorf("%s missing from %s", k, VersionsFile)
		}
	}
}
