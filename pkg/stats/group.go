package stats

import (
	"github.com/coldbench/coldbench/pkg/results"
)

// Unclassified is the failure class of a failed attempt that carries no
// ErrorClass, so such failures are still counted and visible.
const Unclassified = "unclassified"

// Row is one line of a report: every measured attempt of one runtime at one
// scale on one platform.
type Row struct {
	Platform string
	Runtime  string
	Scale    int // N instances cold-started at once

	// Attempts counts measured (non-warm-up) attempts;
	// Successes + Failures == Attempts always.
	Attempts        int
	Successes       int
	Failures        int
	FailuresByClass map[string]int // never nil; empty ErrorClass -> Unclassified
	// Warmups counts warm-up attempts; they never enter any other field.
	Warmups int

	// TTFB summarizes time to first byte (Attempt.TTFBNS) over successful
	// attempts only.
	TTFB Summary

	// Steps summarizes the measured steps' untimed set-up and teardown and
	// the harness's own use of the node; nil when no measured attempt
	// carries step figures (records written before them).
	Steps *StepSummary
	// Waited summarizes the measured attempts whose pod waited for room on
	// a node; nil when none did.
	Waited *WaitSummary
	// Footprint summarizes what the successful measured attempts' instances
	// cost their node; nil when none has a footprint record.
	Footprint *FootprintSummary
	// DensitySteps counts the density run steps pooled in the row (0: a
	// sweep's cell): each met another density, so the row is no sample of
	// one; the density section has them apart.
	DensitySteps int
	// Clock says whose clock the measured attempts' stamps are; nil when
	// no record says (records written before kernel stamps).
	Clock *ClockSummary
}

// Group splits set's attempts into rows by (Platform, Runtime, Scale).
//
// Rows are ordered by platform, then runtime, each in order of first
// appearance in the set (so the report follows the experiment's runtime
// order rather than the alphabet), then by Scale ascending. A group that has
// only warm-ups still gets a row (Attempts = 0), so an interrupted run is
// visible rather than silently missing. Canceled attempts count as failures
// of class results.ErrCanceled. It is FromSet(set).Rows().
func Group(set *results.Set) []Row {
	if set == nil {
		return nil
	}
	return FromSet(set).Rows()
}
