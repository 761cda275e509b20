package knative

import (
	"context"
	"fmt"

	"github.com/coldbench/coldbench/pkg/bench"
)

// fresh gives every sample a new service born with no pod: a cell's set is
// its own (named by its iteration), created for it and deleted after it.
type fresh struct{ s *session }

func (fresh) name() string { return ProtocolFresh }

func (fresh) prepare(context.Context, bench.Cell) error { return nil }

func (fresh) set(cell bench.Cell) int { return cell.Iteration }

func (fresh) label(rt int, cell bench.Cell, set int) string {
	return fmt.Sprintf("r%d-n%d-i%d", rt, cell.Scale, set)
}

// beforeRelease has nothing to wait for: a new revision never had a pod.
func (fresh) beforeRelease(context.Context, []target) error { return nil }

// after deletes the cell's services (nothing reuses them) and waits until
// they and their pods are gone.
func (p fresh) after(ctx context.Context, _ bench.Cell, ts []target) error {
	return p.s.teardown(ctx, ts)
}
