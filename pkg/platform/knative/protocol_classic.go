package knative

import (
	"context"
	"fmt"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
)

// classic is the study's protocol: one set of services per runtime and N,
// created by its first cell and re-activated by every cell after scaling
// to zero (and the configured time interval).
type classic struct{ s *session }

func (classic) name() string { return ProtocolClassic }

func (classic) prepare(context.Context, bench.Cell) error { return nil }

func (classic) set(bench.Cell) int { return 0 }

func (classic) label(rt int, cell bench.Cell, _ int) string {
	return fmt.Sprintf("r%d-n%d", rt, cell.Scale)
}

// beforeRelease waits until the previous cell's pods are gone (a request
// sent while one drains would be answered warm), then the configured time
// interval, as the study did.
func (p classic) beforeRelease(ctx context.Context, ts []target) error {
	if err := p.s.waitScaledToZero(ctx, ts); err != nil {
		return err
	}
	if d := p.s.spec.TimeInterval.Duration; d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}

// after keeps the services for the next cell: Close removes them.
func (classic) after(context.Context, bench.Cell, []target) error { return nil }
