package cli

import (
	"fmt"
	"log/slog"
	"os"

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
	failed int
	prev   *slog.Logger
}

func newProgress(total int) *progress {
	pr := &progress{prev: slog.Default()}
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return pr
	}
	pr.p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
	pr.bar = pr.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("attempts "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return fmt.Sprintf(" failed %d ", pr.failed) }), decor.EwmaETA(decor.ET_STYLE_GO, 30)),
	)
	// Log lines print above the bar instead of through it.
	slog.SetDefault(slog.New(slog.NewTextHandler(pr.p, &slog.HandlerOptions{Level: slogLevel})))
	return pr
}

func (pr *progress) onAttempts(done, total int, batch []results.Attempt) {
	for _, a := range batch {
		if !a.OK {
			pr.failed++
		}
	}
	if pr.bar != nil {
		pr.bar.SetCurrent(int64(done))
		return
	}
	slog.Info("progress", "attempts", fmt.Sprintf("%d/%d", done, total), "failed", pr.failed,
		"runtime", batch[0].Runtime, "n", batch[0].Scale, "iteration", batch[0].Iteration)
}

// close ends the bar (complete or not) and restores plain logging.
func (pr *progress) close() {
	if pr.p == nil {
		return
	}
	pr.bar.Abort(false)
	pr.p.Wait()
	slog.SetDefault(pr.prev)
}
