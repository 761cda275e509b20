package node

import (
	"testing"

	"github.com/coldbench/coldbench/pkg/bench"
)

// UseMeasurements makes the sessions opened during t run the measurements
// mk makes (one per session), instead of the registered ones.
func UseMeasurements(t testing.TB, mk func() bench.Measurement) {
	saved := measurementKinds
	measurementKinds = []func(*session) bench.Measurement{func(*session) bench.Measurement { return mk() }}
	t.Cleanup(func() { measurementKinds = saved })
}
