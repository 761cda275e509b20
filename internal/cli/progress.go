package cli

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/coldbench/coldbench/pkg/results"
)

// progress shows a bar on stderr when it is a terminal, and one log line per
// cell otherwise (CI logs, pipes).
type progress struct {
	p      *mpb.Progress
	bar    *mpb.Bar
	failed atomic.Int64 // read by the bar's render goroutine
	lg     *logs
	prev   io.Writer // the log lines' destination before the bar
}

func newProgress(total int, lg *logs) *progress {
	// total 0: not known in advance (a capacity search): no bar to fill.
	if total <= 0 || !term.IsTerminal(int(os.Stderr.Fd())) {
		return &progress{lg: lg}
	}
	return newBar(total, lg, os.Stderr)
}

// newBar draws the bar on w, and sends the log lines through it until close.
// (Auto refresh is what mpb does on a terminal anyway; tests draw into a
// buffer.)
func newBar(total int, lg *logs, w io.Writer) *progress {
	pr := &progress{lg: lg}
	pr.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	pr.bar = pr.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("attempts "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return fmt.Sprintf(" failed %d ", pr.failed.Load()) }), decor.EwmaETA(decor.ET_STYLE_GO, 30)),
	)
	// Log lines print above the bar instead of through it.
	pr.prev = lg.out.swap(pr.p, nil)
	return pr
}

func (pr *progress) onAttempts(done, total int, batch []results.Attempt) {
	for _, a := range batch {
		if !a.OK {
			pr.failed.Add(1)
		}
	}
	if pr.bar != nil {
		pr.bar.SetCurrent(int64(done))
		return
	}
	attempts := fmt.Sprintf("%d/%d", done, total)
	if total <= 0 {
		attempts = fmt.Sprint(done)
	}
	pr.lg.log.Info("progress", "attempts", attempts, "failed", pr.failed.Load(),
		"runtime", batch[0].Runtime, "n", batch[0].Scale, "iteration", batch[0].Iteration)
}

// close ends the bar (complete or not) and gives the log lines their
// destination back.
func (pr *progress) close() {
	if pr.p == nil {
		return
	}
	pr.lg.out.swap(pr.prev, func() {
		pr.bar.Abort(false)
		pr.p.Wait()
	})
}
