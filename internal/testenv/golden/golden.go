// Package golden compares test output with a file kept under testdata, the
// one -update flag of every golden-file test rewriting it. It imports only
// the standard library, so the light packages' tests can use it.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata) from the current output")

// maxShown bounds the output quoted on a mismatch: a figure's SVG would
// drown the message, a table reads better whole.
const maxShown = 8 << 10

// Check fails t unless got equals the file at path byte for byte; with
// -update it writes got to path (creating its folder) instead.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	if len(got)+len(want) <= maxShown && utf8.Valid(got) && utf8.Valid(want) {
		t.Errorf("output differs from %s (run go test -update if the change is intended, and look at it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
		return
	}
	t.Errorf("output (%d bytes) differs from %s (%d bytes) (run go test -update if the change is intended, and look at it)", len(got), path, len(want))
}
