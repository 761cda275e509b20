package knative

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// pool measures what classic measures (re-activation of a revision that
// scaled to zero) without waiting for it between samples: each runtime and
// N has a pool of sets of services, all activated once (prepare), that the
// cells use in turn, each set having drained while the others were used.
// Its bookkeeping, not the order of the cells, gives each cell its set and
// says when the pool can go.
type pool struct {
	s     *session
	mu    sync.Mutex
	pools map[poolKey]*poolState
}

// poolState is the bookkeeping of one pool.
type poolState struct {
	primed   bool         // every set activated once (prepare)
	turns    int          // cells given a set so far
	measured map[int]bool // iterations measured
}

// poolKey names one pool: a runtime's services at one scale.
type poolKey struct {
	runtime string
	scale   int
}

func newPool(s *session) protocol { return &pool{s: s, pools: map[poolKey]*poolState{}} }

func (*pool) name() string { return ProtocolPool }

// set gives the sets in turn, in the order the cells come (whatever their
// iterations): the pool's first cell gets set 0, the set activated first
// and so the first to have drained, and each set comes back after every
// other, having drained the longest.
func (p *pool) set(cell bench.Cell) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.state(cell)
	pl.turns++
	return (pl.turns - 1) % p.sets(cell)
}

func (*pool) label(rt int, cell bench.Cell, set int) string {
	return fmt.Sprintf("r%d-n%d-p%d", rt, cell.Scale, set)
}

// beforeRelease waits until the set's pods of its previous turn are gone.
func (p *pool) beforeRelease(ctx context.Context, ts []target) error {
	return p.s.waitScaledToZero(ctx, ts)
}

// after deletes the pool once it has no cell left to measure, and waits
// until its services and their pods are gone.
func (p *pool) after(ctx context.Context, cell bench.Cell, _ []target) error {
	if !p.done(cell) {
		return nil
	}
	return p.s.teardown(ctx, p.all(cell))
}

// state is the bookkeeping of the cell's pool; p.mu is held.
func (p *pool) state(cell bench.Cell) *poolState {
	key := poolKey{cell.Runtime.Name, cell.Scale}
	pl := p.pools[key]
	if pl == nil {
		pl = &poolState{measured: map[int]bool{}}
		p.pools[key] = pl
	}
	return pl
}

// done records that cell was measured and reports whether its pool has
// no cell left to measure: every warm-up and iteration the experiment
// plans for its runtime and N was measured by this session or recorded by
// an earlier one. The pool's services can go then; Close removes those of
// a pool that never gets there (deadline, interrupt).
func (p *pool) done(cell bench.Cell) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.state(cell)
	pl.measured[cell.Iteration] = true
	for it := -p.s.exp.Spec.Warmups; it < p.s.exp.Spec.Iterations; it++ {
		if !pl.measured[it] && !p.s.done[bench.CellKey{Runtime: cell.Runtime.Name, Scale: cell.Scale, Iteration: it}] {
			return false
		}
	}
	return true
}

// sets is the number of sets of the cell's pool.
func (p *pool) sets(cell bench.Cell) int {
	return p.s.spec.PoolSets(cell.Scale, p.s.exp.Spec.Warmups+p.s.exp.Spec.Iterations)
}

// all is every service of every set of the cell's pool.
func (p *pool) all(cell bench.Cell) []target {
	var all []target
	for set := range p.sets(cell) {
		for i := range cell.Scale {
			all = append(all, target{name: ServiceName(cell.ExperimentID, p.s.runtimeIndex(cell), cell.Scale, set, i), owned: true})
		}
	}
	return all
}

// prepare, on the first cell of a runtime and N, creates
// every set of the pool and activates each once, set after set, with one
// untimed GET per service, so that every measured sample is a
// re-activation of a revision that scaled to zero, like the classic
// protocol's, and the sets drain one after the other. These GETs are not
// recorded (they are not samples); the log says how many answered.
func (p *pool) prepare(ctx context.Context, cell bench.Cell) error {
	s := p.s
	p.mu.Lock()
	primed := p.state(cell).primed
	p.mu.Unlock()
	if primed {
		return nil
	}
	sets := p.sets(cell)
	t0 := time.Now()
	ok, failed := 0, 0
	var firstErr string
	// Every set is created at once (Knative readies them in parallel), then
	// activated one after the other.
	sts := make([][]target, sets)
	errs := make([]error, sets)
	var wg sync.WaitGroup
	for set := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sts[set], errs[set] = s.ready(ctx, cell, set)
		}()
	}
	wg.Wait()
	for set, ts := range sts {
		if err := errs[set]; err != nil {
			return fmt.Errorf("preparing pool set %d of %s N=%d: %w", set, cell.Runtime.Name, cell.Scale, err)
		}
		s.waitRoutes(ctx, ts)
		answered := 0
		for _, a := range s.measure(ctx, cell, ts) {
			if a.OK || a.ErrorClass == results.ErrNotCold { // not cold: it was active, which is all priming needs
				answered++
				continue
			}
			failed++
			if firstErr == "" {
				firstErr = a.ErrorClass + ": " + a.Error
			}
		}
		ok += answered
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if answered == 0 {
			// Nothing of this set answered (a broken runtime, image…): the
			// other sets would wait as long for nothing. The samples record
			// the failure.
			failed += (sets - set - 1) * cell.Scale
			break
		}
	}
	attrs := []any{"runtime", cell.Runtime.Name, "n", cell.Scale, "sets", sets, "services", sets * cell.Scale,
		"answered", ok, "took", time.Since(t0).Round(time.Millisecond)}
	if failed > 0 {
		// A service that never answered is measured anyway: its sample will
		// be a first activation (prior_pods 0 in its record).
		s.log.Warn("pool: some services did not answer their untimed activation", append(attrs, "failed", failed, "first_error", firstErr)...)
	} else {
		s.log.Info("pool: every set activated once (untimed, not recorded)", attrs...)
	}
	p.mu.Lock()
	p.state(cell).primed = true
	p.mu.Unlock()
	return nil
}
