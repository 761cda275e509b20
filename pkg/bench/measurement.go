package bench

import (
	"context"
	"log/slog"

	"github.com/coldbench/coldbench/pkg/results"
)

// Instance is one of a cell's instances as measurements see it.
type Instance struct {
	// Name is the platform's name of what serves the instance (a Knative
	// revision, a node's container): what a measurement observes.
	Name string
	// Ready says its request is released. One that failed before (not
	// created, not Ready, not routed) already has its attempt, with the
	// reason: measurements leave it alone.
	Ready bool
}

// Measurement observes a session's cells, in the spirit of clusterloader2's
// measurements: started before a cell's release, gathered after its replies,
// it adds what it saw (phases, evidence, failure classes) to the cell's
// attempts. A session measures one cell at a time, so Start and Gather come
// in pairs on the same cell. Neither runs between the release and the
// replies: what a measurement costs is never in the measured latency. Where
// it reads the time, it reads a clock it is given (tests set it).
type Measurement interface {
	// Name names the measurement in logs.
	Name() string
	// Start is called, untimed, just before cell's release; instances are
	// in the order of the cell's attempts. An error says the measurement
	// cannot observe this cell: the session logs it and does not gather it.
	Start(ctx context.Context, cell Cell, instances []Instance) error
	// Gather is called after the replies with the cell's attempts (one per
	// instance, each with its request's Start) and adds to them. ctx ends
	// with the run: a measurement that waits for late evidence bounds the
	// wait itself.
	Gather(ctx context.Context, cell Cell, attempts []results.Attempt)
}

// Measurements are the measurements a session runs around each release, in
// this order.
type Measurements []Measurement

// Start starts each measurement on cell and returns those that started, the
// ones to gather: one that cannot observe the cell is logged through log
// and left out, so that the others still do.
func (ms Measurements) Start(ctx context.Context, cell Cell, instances []Instance, log *slog.Logger) Measurements {
	var started Measurements
	for _, m := range ms {
		if err := m.Start(ctx, cell, instances); err != nil {
			log.Warn("measurement cannot observe the cell", "measurement", m.Name(),
				"runtime", cell.Runtime.Name, "n", cell.Scale, "iteration", cell.Iteration, "err", err)
			continue
		}
		started = append(started, m)
	}
	return started
}

// Gather has each measurement add to the cell's attempts, in order.
func (ms Measurements) Gather(ctx context.Context, cell Cell, attempts []results.Attempt) {
	for _, m := range ms {
		m.Gather(ctx, cell, attempts)
	}
}
