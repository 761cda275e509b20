package report

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/coldbench/coldbench/pkg/outfile"
	"github.com/coldbench/coldbench/pkg/results"
)

// attemptsCSVHeader: identity, outcome, latencies (ms with 3 decimals and
// ns as recorded), probing and host load, the cold-start evidence, where
// the rt_ phases come from or why they are missing (runtime_phases: without
// it a spreadsheet cannot tell an rt_ cell empty for a reason from one of
// a run without them), then one "<phase>_ms" column per phase name in
// first-seen order.
var attemptsCSVHeader = []string{
	"experiment_id", "platform", "runtime", "handler", "scale", "iteration", "instance", "warmup", "start",
	"ok", "http_status", "error_class", "error",
	"ttfb_ms", "total_ms", "ttfb_ns", "total_ns",
	"probes", "release_skew_ns", "loadavg_1m", "loadavg_5m", "loadavg_15m",
	"sandbox_id", "container_id", "pod", "revision", "address", "runtime_phases",
	"release_skew_user_ns", "timestamps", "timestamps_note",
}

// WriteAttemptsCSV writes one row per attempt record, warm-ups included
// (warmup = true), in file order: a spreadsheet's view of the raw records.
// Latency cells are empty for a failed attempt (never a fake 0), and a phase
// cell is empty when the attempt did not reach or record that phase.
func WriteAttemptsCSV(w io.Writer, set *results.Set) error {
	var phases []string
	if set != nil {
		for _, a := range set.Attempts {
			for _, p := range a.Phases {
				phases = appendUnique(phases, p.Name)
			}
		}
	}
	aw, err := newAttemptsWriter(w, phases)
	if err != nil {
		return err
	}
	if set != nil {
		for i := range set.Attempts {
			if err := aw.write(&set.Attempts[i]); err != nil {
				return err
			}
		}
	}
	return aw.flush()
}

// attemptsWriter writes attempts CSV rows one at a time.
type attemptsWriter struct {
	cw     *csv.Writer
	phases []string
	rec    []string
}

func newAttemptsWriter(w io.Writer, phases []string) (*attemptsWriter, error) {
	header := append([]string{}, attemptsCSVHeader...)
	for _, p := range phases {
		header = append(header, p+"_ms")
	}
	aw := &attemptsWriter{cw: csv.NewWriter(w), phases: phases}
	return aw, aw.cw.Write(header)
}

func (aw *attemptsWriter) flush() error {
	aw.cw.Flush()
	return aw.cw.Error()
}

func (aw *attemptsWriter) write(a *results.Attempt) error {
	itoa := strconv.Itoa
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	ttfbMS, totalMS, ttfbNS, totalNS := "", "", "", ""
	if a.OK || a.TTFBNS > 0 {
		ttfbMS, ttfbNS = ms(float64(a.TTFBNS)), i64(a.TTFBNS)
	}
	if a.OK || a.TotalNS > 0 {
		totalMS, totalNS = ms(float64(a.TotalNS)), i64(a.TotalNS)
	}
	status := ""
	if a.HTTPStatus != 0 {
		status = itoa(a.HTTPStatus)
	}
	skew, userSkew := "", ""
	if a.ReleaseSkewNS != 0 {
		skew = i64(a.ReleaseSkewNS)
	}
	if a.ReleaseSkewUserNS != 0 {
		userSkew = i64(a.ReleaseSkewUserNS)
	}
	start := ""
	if !a.Start.IsZero() {
		start = a.Start.UTC().Format(time.RFC3339Nano)
	}
	load := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	rec := append(aw.rec[:0],
		a.ExperimentID, a.Platform, a.Runtime, a.Handler, itoa(a.Scale), itoa(a.Iteration), itoa(a.Instance),
		strconv.FormatBool(a.Warmup), start,
		strconv.FormatBool(a.OK), status, a.ErrorClass, a.Error,
		ttfbMS, totalMS, ttfbNS, totalNS,
		itoa(a.Probes), skew, load(a.LoadAvg[0]), load(a.LoadAvg[1]), load(a.LoadAvg[2]),
		a.Cold.SandboxID, a.Cold.ContainerID, a.Cold.Pod, a.Cold.Revision, a.Cold.Address, a.RuntimePhases,
		userSkew, a.Timestamps, a.TimestampsNote,
	)
	for _, name := range aw.phases {
		cell := ""
		if d, ok := a.PhaseOffset(name); ok {
			cell = ms(float64(d.Nanoseconds()))
		}
		rec = append(rec, cell)
	}
	aw.rec = rec
	return aw.cw.Write(rec)
}

// WriteAttemptsCSVFile writes StreamAttemptsCSV's output to path, whole
// or not at all (outfile.WriteFile): an error, a full disk or a cancelled
// ctx leaves path as it was. It returns the reader's warnings.
func WriteAttemptsCSVFile(ctx context.Context, path string, files []string, ropt results.ReadOptions) ([]string, error) {
	var warnings []string
	err := outfile.WriteFile(ctx, path, func(w io.Writer) error {
		var err error
		warnings, err = StreamAttemptsCSV(ctx, w, files, ropt)
		return err
	})
	if err != nil {
		return warnings, fmt.Errorf("attempts CSV: %w", err)
	}
	return warnings, nil
}

// StreamAttemptsCSV streams results files (validated with ropt) and writes
// every attempt record to w as CSV (see WriteAttemptsCSV), in two passes:
// the first learns the phase names (the columns), the second writes the
// rows, so no record is held in memory. It returns the reader's warnings.
func StreamAttemptsCSV(ctx context.Context, w io.Writer, files []string, ropt results.ReadOptions) ([]string, error) {
	var phases []string
	r := results.NewReader(ropt)
	for _, f := range files {
		err := r.ReadFile(ctx, f, func(rec results.Record) error {
			if rec.Attempt != nil {
				for _, p := range rec.Attempt.Phases {
					if !slices.Contains(phases, p.Name) {
						phases = append(phases, p.Name)
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	warnings := r.Warnings()
	bw := bufio.NewWriterSize(w, 256*1024)
	aw, err := newAttemptsWriter(bw, phases)
	if err != nil {
		return warnings, err
	}
	r = results.NewReader(ropt) // the same checks, so the same records
	for _, f := range files {
		err := r.ReadFile(ctx, f, func(rec results.Record) error {
			if rec.Attempt == nil {
				return nil
			}
			return aw.write(rec.Attempt)
		})
		if err != nil {
			return warnings, err
		}
	}
	if err := aw.flush(); err != nil {
		return warnings, err
	}
	return warnings, bw.Flush()
}
