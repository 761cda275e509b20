package knative

import (
	"context"
	"fmt"

	"github.com/coldbench/coldbench/pkg/bench"
)

// protocol is what differs between the ways of getting cold starts out of
// Knative Services (spec.knative.protocol): which services a cell uses,
// whether they must first scale to zero, and when they go. ColdStart runs
// the same steps for every protocol; one file each says what its steps do.
type protocol interface {
	// name is the protocol's name in the spec and the testbed record.
	name() string
	// prepare readies, untimed, what must exist before the cell's own
	// services (pool: every set of its pool, activated once). An error
	// fails the cell.
	prepare(ctx context.Context, cell bench.Cell) error
	// set is the set of services the cell uses. Called once per cell: for
	// the pool, taking a set is the cell's turn.
	set(cell bench.Cell) int
	// label is the cell label (ServiceSpec.Cell) of the services of set,
	// for the runtime at index rt.
	label(rt int, cell bench.Cell, set int) string
	// beforeRelease waits, untimed, until the Ready services ts can start
	// cold (classic, pool: their earlier pods gone). An error fails the cell.
	beforeRelease(ctx context.Context, ts []target) error
	// after disposes of the cell's services once it is measured, before
	// the next cell starts (its time is the step's teardown). An error
	// leaves the rest to Session.Close.
	after(ctx context.Context, cell bench.Cell, ts []target) error
}

// protocols makes a session's protocol from its name: the one place that
// knows them all (the spec's validation, config.go, accepts the same names).
var protocols = map[string]func(*session) protocol{
	ProtocolFresh:   func(s *session) protocol { return fresh{s} },
	ProtocolClassic: func(s *session) protocol { return classic{s} },
	ProtocolPool:    newPool,
}

// newProto is the protocol the session's spec names.
func newProto(s *session) (protocol, error) {
	mk, ok := protocols[s.spec.Protocol]
	if !ok {
		return nil, fmt.Errorf("spec.knative.protocol %q: no such protocol", s.spec.Protocol)
	}
	return mk(s), nil
}
