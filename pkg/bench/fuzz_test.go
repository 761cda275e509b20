package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: no input may panic the experiment decoder or the validator,
// and whatever decodes and validates must survive a round trip.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/experiments/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec: {scales: [1e9], iterations: -1}\n"))
	f.Add([]byte("[1, 2]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		exp, err := Decode(data)
		if err != nil {
			return
		}
		if err := exp.CompleteAndValidate(false); err != nil {
			return
		}
		if exp.TotalAttempts() < 0 {
			t.Fatalf("negative attempt count for %+v", exp.Spec)
		}
	})
}
