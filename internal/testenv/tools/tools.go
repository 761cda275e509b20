// Package tools finds the programs coldbench's scripts build from the Go
// module proxy (containerd, ctr, runsc) where scripts/build-runtimes.sh puts
// them, so that no test depends on whatever the machine running it happens to
// have on its PATH: a fresh machine has none of them there. It imports only
// the standard library, so any package's tests can use it.
package tools

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// VersionsFile is the file, relative to the repository root, that holds the
// versions scripts/lib.sh builds (it sources the same file).
const VersionsFile = "config/versions.env"

// DefaultCacheDir is where scripts/build-runtimes.sh builds into, unless
// COLDBENCH_CACHE_DIR says otherwise (scripts/lib.sh).
const DefaultCacheDir = "/var/cache/coldbench"

// RepoRoot is the checkout's root directory: the nearest parent of the
// working directory that holds go.mod (tests run in their package's
// directory).
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// Versions reads root's VersionsFile. As in scripts/lib.sh, an environment
// variable of the same name overrides the file.
func Versions(root string) (map[string]string, error) {
	path := filepath.Join(root, VersionsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the build versions: %w", err)
	}
	defer f.Close()
	v := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok || k == "" || val == "" {
			return nil, fmt.Errorf("%s line %d: want KEY=value, got %q", path, n, line)
		}
		if env := os.Getenv(k); env != "" {
			val = env
		}
		v[k] = val
	}
	return v, sc.Err()
}

// ContainerdBin is the directory of the containerd build the scripts use
// (containerd, ctr, containerd-shim-runc-v2).
func ContainerdBin(root string) (string, error) {
	return binDir(root, "containerd", "CONTAINERD_VERSION")
}

// GVisorBin is the directory of the gVisor build (runsc and its shims).
func GVisorBin(root string) (string, error) { return binDir(root, "gvisor", "GVISOR_VERSION") }

func binDir(root, name, key string) (string, error) {
	v, err := Versions(root)
	if err != nil {
		return "", err
	}
	ver := v[key]
	if ver == "" {
		return "", fmt.Errorf("%s in %s: not set", key, filepath.Join(root, VersionsFile))
	}
	cache := os.Getenv("COLDBENCH_CACHE_DIR")
	if cache == "" {
		cache = DefaultCacheDir
	}
	return filepath.Join(cache, name, ver, "bin"), nil
}
