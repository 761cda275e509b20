package release

import (
	"os"
	"testing"
)

// TestMain runs the test binary as the release benchmarks' server when
// COLDBENCH_BENCH_SERVER=1 (benchServer), and as the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("COLDBENCH_BENCH_SERVER") == "1" {
		serveBench()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
