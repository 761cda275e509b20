// Package plot draws coldbench's figures from results records alone, as SVG
// and PNG, with gonum/plot and its embedded fonts (so the same records give
// the same bytes on any machine):
//
//	latency-nN    per runtime at N: mean, min–max, median with its 95% CI
//	p99-nN        per runtime at N: p99, with a warning when n < 100
//	latency-vs-n  mean latency against N, one line per runtime, 95% CI band
//	responded     per N: target vs instances that answered, per runtime
//	cdf-nN        per runtime at N: cumulative share of attempts answered
//	phases-nN     per runtime at N: median phase offsets as stacked bars
//	density-*     a density run's latency and memory vs density, and capacity
//
// Like stats and report it depends on no platform client.
package plot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/coldbench/coldbench/pkg/outfile"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// Image formats WriteDir can write.
const (
	FormatSVG = "svg"
	FormatPNG = "png"
)

// encoders turn a figure into a file's bytes, by image format: adding a
// format is adding an entry, and no code switches on the names.
var encoders = map[string]func(f *Figure, opt Options) ([]byte, error){
	FormatSVG: func(f *Figure, _ Options) ([]byte, error) { return f.SVG() },
	FormatPNG: func(f *Figure, opt Options) ([]byte, error) { return f.PNG(opt.DPI) },
}

// ImageFormats lists the image formats, in the order the figures are
// written (the default Options.Formats).
func ImageFormats() []string { return []string{FormatSVG, FormatPNG} }

// Options selects what is drawn.
type Options struct {
	// Scales are the N for the per-N figures (latency, p99, cdf, phases).
	// Empty means the smallest N in the records; see AllScales.
	Scales []int
	// AllScales draws the per-N figures for every N in the records.
	AllScales bool
	// Formats to write (FormatSVG, FormatPNG); empty means both.
	Formats []string
	// DPI of PNG output; 0 means DefaultDPI.
	DPI int
}

// Figures builds every figure the records support, in reading order: the
// figures across N first, then per N the latency, p99, CDF and phase
// figures. The phase figure is left out for an N without phase records.
func Figures(set *results.Set, opt Options) ([]*Figure, error) {
	if set == nil || len(set.Attempts) == 0 {
		return nil, fmt.Errorf("no attempt records to plot")
	}
	return ModelFigures(stats.FromSet(set), opt)
}

// ModelFigures is Figures of an analysis model.
func ModelFigures(m *stats.Model, opt Options) ([]*Figure, error) {
	return modelFigures(m, opt, false)
}

// modelFigures: with consume, m's phase offsets are dropped as they are
// copied (fromModel).
func modelFigures(m *stats.Model, opt Options, consume bool) ([]*Figure, error) {
	if m.Records == 0 {
		return nil, fmt.Errorf("no attempt records to plot")
	}
	d := fromModel(m, consume)
	if len(d.scales) == 0 {
		return nil, fmt.Errorf("no attempt records to plot")
	}
	scales, err := pickScales(d.scales, opt)
	if err != nil {
		return nil, err
	}
	figs := []*Figure{d.scaleFigure(), d.respondedFigure()}
	for _, n := range scales {
		figs = append(figs, d.latencyFigure(n), d.p99Figure(n), d.cdfFigure(n))
		if ph := d.phasesFigure(n); ph != nil {
			figs = append(figs, ph)
		}
	}
	return append(figs, d.densityFigures(m.Densities())...), nil // density.go
}

// ErrScales marks an Options.Scales value the records do not have (bad
// input: the CLI names its --scales flag).
var ErrScales = errors.New("--scales")

func pickScales(have []int, opt Options) ([]int, error) {
	if opt.AllScales {
		return have, nil
	}
	if len(opt.Scales) == 0 {
		return have[:1], nil
	}
	var out []int
	for _, n := range opt.Scales {
		if !slices.Contains(have, n) {
			return nil, fmt.Errorf("%w: no records at N = %d; the records have N = %s", ErrScales, n, joinInts(have))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// WriteDir writes every figure of set into dir; see WriteModel.
func WriteDir(ctx context.Context, dir string, set *results.Set, opt Options) ([]string, error) {
	if set == nil || len(set.Attempts) == 0 {
		return nil, fmt.Errorf("no attempt records to plot")
	}
	return WriteModel(ctx, dir, stats.FromSet(set), opt)
}

// WriteModel writes every figure of m into dir (created if missing) as
// <name>.svg and/or <name>.png and returns the paths written. The figures
// are rendered into a staging directory inside dir and moved into place
// only once all are done, so an error, a full disk or a cancelled ctx
// (checked between figures) leaves no new file in dir. m's phase offsets
// are released as the figures copy them (a 200 MB file's would otherwise
// be held twice): m is not for further use.
func WriteModel(ctx context.Context, dir string, m *stats.Model, opt Options) ([]string, error) {
	formats := opt.Formats
	if len(formats) == 0 {
		formats = ImageFormats()
	}
	for _, f := range formats {
		if encoders[f] == nil {
			return nil, fmt.Errorf("unknown image format %q; valid formats: %s", f, strings.Join(ImageFormats(), ", "))
		}
	}
	figs, err := modelFigures(m, opt, true)
	if err != nil {
		return nil, err
	}
	stage, err := outfile.NewDir(dir)
	if err != nil {
		return nil, err
	}
	defer stage.Abort() // no-op after Commit
	for _, fig := range figs {
		for _, format := range formats {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("writing figures: %w", err)
			}
			b, err := encoders[format](fig, opt)
			if err != nil {
				return nil, err
			}
			if err := stage.WriteFile(fig.Name+"."+format, b); err != nil {
				return nil, fmt.Errorf("writing figure: %w", err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("writing figures: %w", err)
	}
	return stage.Commit()
}

// WriteFiles streams and validates results files (with ropt) and writes
// their figures into dir; see WriteModel. It returns the paths written and
// the reader's warnings.
func WriteFiles(ctx context.Context, dir string, files []string, opt Options, ropt results.ReadOptions) (paths, warnings []string, err error) {
	m, err := stats.Load(ctx, ropt, files...)
	if err != nil {
		return nil, nil, err
	}
	if m.Records == 0 {
		return nil, m.Warnings, fmt.Errorf("no attempt records in %s", strings.Join(files, ", "))
	}
	paths, err = WriteModel(ctx, dir, m, opt)
	return paths, m.Warnings, err
}
