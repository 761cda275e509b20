package node

import (
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// measurementKinds make the measurements every session runs around each
// cell's release. A measurement's own file (measure_*.go) registers it in
// its init, so adding one (footprint: per-instance memory and CPU) is adding
// a file. They are gathered after every instance answered and before the
// teardown: the instances still run.
var measurementKinds []func(*session) bench.Measurement

func registerMeasurement(mk func(*session) bench.Measurement) {
	measurementKinds = append(measurementKinds, mk)
}

// instances describes the cell's instances to the measurements: the
// sandboxes' names (what `crictl pods` shows), all released.
func instances(insts []*instance) []bench.Instance {
	out := make([]bench.Instance, len(insts))
	for i, in := range insts {
		out[i] = bench.Instance{Name: in.sandbox.Metadata.Name, Ready: true}
	}
	return out
}

// replyObserver is a measurement that also reads each instance just after
// its first byte: untimed for that instance, while others of the cell may
// still be starting, so it must be cheap (a few small files).
type replyObserver interface {
	afterReply(in *instance, a *results.Attempt)
}

// replyObservers are the started measurements that observe replies.
func replyObservers(ms bench.Measurements) []replyObserver {
	var out []replyObserver
	for _, m := range ms {
		if o, ok := m.(replyObserver); ok {
			out = append(out, o)
		}
	}
	return out
}
