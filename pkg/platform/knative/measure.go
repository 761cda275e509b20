package knative

import (
	"context"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/release"
	"github.com/coldbench/coldbench/pkg/results"
)

// measurementKinds make the measurements every session runs around each
// release. Each measurement's own file (measure_*.go) registers it in its
// init, so adding one is adding a file; they run in the order of their file
// names.
var measurementKinds []func(*session) bench.Measurement

func registerMeasurement(mk func(*session) bench.Measurement) {
	measurementKinds = append(measurementKinds, mk)
}

// measure releases one GET per Ready service at once (pkg/release): over
// HTTP/1.1 each on its own connection to the ingress, over h2c as streams
// of a few; connections are made before the release, so their set-up is
// not in the measured path. The session's measurements start just before
// the release and add what they saw once the replies are in.
func (s *session) measure(ctx context.Context, cell bench.Cell, ts []target) []results.Attempt {
	out := make([]results.Attempt, len(ts))
	insts := make([]bench.Instance, len(ts))
	var reqs []*release.Request
	var idx []int
	for i := range ts {
		insts[i] = bench.Instance{Name: ts[i].revision, Ready: ts[i].err == nil}
		if ts[i].err != nil {
			out[i] = *ts[i].err
			continue
		}
		reqs = append(reqs, release.NewRequest(ctx, s.ingress.Address, ts[i].host, cell.RequestTimeout))
		idx = append(idx, i)
	}
	started := s.measurements.Start(ctx, cell, insts, s.log)
	together := release.Together
	if s.spec.HTTP == H2C {
		together = release.TogetherH2
	}
	got, skew := together(reqs)
	for k, i := range idx {
		out[i] = got[k] // an attempt starts when its request does
	}
	var userSkew int64 // the same on every released attempt
	if len(got) > 0 {
		userSkew = got[0].ReleaseSkewUserNS
	}
	for i := range out {
		a := &out[i]
		a.Instance = i
		a.ReleaseSkewNS = skew.Nanoseconds()
		a.ReleaseSkewUserNS = userSkew
		if ts[i].err == nil {
			a.Cold.Revision = ts[i].revision
			a.Cold.Address = s.ingress.Address + " Host: " + ts[i].host
		}
	}
	started.Gather(ctx, cell, out)
	for i := range out {
		if ts[i].err != nil && ctx.Err() != nil { // e.g. its create cut by the interrupt
			out[i].ErrorClass = results.ErrCanceled
		}
	}
	return out
}
