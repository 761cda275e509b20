package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// measuredPlatform is fakePlatform whose session runs measurements around
// each cell's release, as a platform's session does.
type measuredPlatform struct {
	*fakePlatform
	ms  Measurements
	log *slog.Logger
}

func (p *measuredPlatform) Open(context.Context, *Experiment, string, map[CellKey]bool) (Session, error) {
	return p, nil
}

func (p *measuredPlatform) ColdStart(ctx context.Context, cell Cell) []results.Attempt {
	insts := make([]Instance, cell.Scale)
	for i := range insts {
		insts[i] = Instance{Name: instanceName(cell.Runtime.Name, cell.Scale, cell.Iteration, i), Ready: true}
	}
	started := p.ms.Start(ctx, cell, insts, p.log)
	out := p.fakePlatform.ColdStart(ctx, cell) // the release
	started.Gather(ctx, cell, out)
	return out
}

func instanceName(runtime string, scale, iteration, instance int) string {
	return fmt.Sprintf("%s-n%d-i%d-%d", runtime, scale, iteration, instance)
}

// marker adds a phase and the instance's name to every attempt it gathers.
type marker struct {
	insts    []Instance
	gathered int
}

func (m *marker) Name() string { return "marker" }

func (m *marker) Start(_ context.Context, _ Cell, insts []Instance) error {
	m.insts = insts
	return nil
}

func (m *marker) Gather(_ context.Context, _ Cell, attempts []results.Attempt) {
	m.gathered++
	for i := range attempts {
		attempts[i].Phases = append(attempts[i].Phases, results.Phase{Name: "marked", OffsetNS: int64(i + 1)})
		attempts[i].Cold.Pod = m.insts[i].Name
	}
}

// blind cannot observe any cell.
type blind struct{ started, gathered int }

func (b *blind) Name() string { return "blind" }

func (b *blind) Start(context.Context, Cell, []Instance) error {
	b.started++
	return errors.New("no view")
}

func (b *blind) Gather(context.Context, Cell, []results.Attempt) { b.gathered++ }

// A measurement plugged into a session adds to the attempts the runner
// records; one that cannot observe a cell is logged and not gathered, and
// the others still are.
func TestMeasurementsAddToTheRecords(t *testing.T) {
	h := newHarness(t, testExp(time.Hour))
	var logs bytes.Buffer
	mk, bl := &marker{}, &blind{}
	h.r.Platform = &measuredPlatform{fakePlatform: h.fp, ms: Measurements{bl, mk}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	out, err := h.r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cells := len(h.fp.cells)
	if cells != 12 || mk.gathered != cells || bl.started != cells || bl.gathered != 0 {
		t.Fatalf("%d cells: marker gathered %d; blind started %d, gathered %d", cells, mk.gathered, bl.started, bl.gathered)
	}
	if !strings.Contains(logs.String(), "measurement cannot observe the cell") || !strings.Contains(logs.String(), "measurement=blind") {
		t.Errorf("log: %s", logs.String())
	}
	set := h.read(t)
	if len(set.Attempts) != out.Attempts || out.Attempts != 24 {
		t.Fatalf("%d records, %d attempts", len(set.Attempts), out.Attempts)
	}
	for _, a := range set.Attempts {
		off, ok := a.PhaseOffset("marked")
		if !ok || off != time.Duration(a.Instance+1) || a.Cold.Pod != instanceName(a.Runtime, a.Scale, a.Iteration, a.Instance) {
			t.Errorf("%s N=%d iteration %d instance %d: phases %+v, pod %q", a.Runtime, a.Scale, a.Iteration, a.Instance, a.Phases, a.Cold.Pod)
		}
	}
}
