package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// attemptsCSVHeader: identity, outcome, latencies (ms with 3 decimals and
// ns as recorded), probing and host load, the cold-start evidence, then one
// "<phase>_ms" column per phase name in first-seen order.
var attemptsCSVHeader = []string{
	"experiment_id", "platform", "runtime", "handler", "scale", "iteration", "instance", "warmup", "start",
	"ok", "http_status", "error_class", "error",
	"ttfb_ms", "total_ms", "ttfb_ns", "total_ns",
	"probes", "release_skew_ns", "loadavg_1m", "loadavg_5m", "loadavg_15m",
	"sandbox_id", "container_id", "pod", "revision", "address",
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
	header := append([]string{}, attemptsCSVHeader...)
	for _, p := range phases {
		header = append(header, p+"_ms")
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if set == nil {
		cw.Flush()
		return cw.Error()
	}
	itoa := strconv.Itoa
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, a := range set.Attempts {
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
		skew := ""
		if a.ReleaseSkewNS != 0 {
			skew = i64(a.ReleaseSkewNS)
		}
		start := ""
		if !a.Start.IsZero() {
			start = a.Start.UTC().Format(time.RFC3339Nano)
		}
		load := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		rec := []string{
			a.ExperimentID, a.Platform, a.Runtime, a.Handler, itoa(a.Scale), itoa(a.Iteration), itoa(a.Instance),
			strconv.FormatBool(a.Warmup), start,
			strconv.FormatBool(a.OK), status, a.ErrorClass, a.Error,
			ttfbMS, totalMS, ttfbNS, totalNS,
			itoa(a.Probes), skew, load(a.LoadAvg[0]), load(a.LoadAvg[1]), load(a.LoadAvg[2]),
			a.Cold.SandboxID, a.Cold.ContainerID, a.Cold.Pod, a.Cold.Revision, a.Cold.Address,
		}
		for _, name := range phases {
			cell := ""
			if d, ok := a.PhaseOffset(name); ok {
				cell = ms(float64(d.Nanoseconds()))
			}
			rec = append(rec, cell)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteAttemptsCSVFile reads results files and writes every attempt record
// to path as CSV; see WriteAttemptsCSV.
func WriteAttemptsCSVFile(path string, files []string) error {
	set, err := results.ReadFiles(files...)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating attempts CSV: %w", err)
	}
	if err := WriteAttemptsCSV(f, set); err != nil {
		f.Close()
		return fmt.Errorf("writing attempts CSV: %w", err)
	}
	return f.Close()
}
