// Package synth writes synthetic but realistic records files, as `coldbench
// run` writes them (headers with an experiment and testbed, attempts with 8
// phases, cold-start evidence, load averages, ~2 % failures with messages),
// for the benchmarks of the readers (bench/report) and the tests that need
// a large file (interrupting report and plot mid-read). Deterministic: the
// same size gives the same file.
package synth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

var phaseNames = []string{"scheduled", "sandbox_ready", "container_created", "container_started",
	"pod_ready", "address_known", "function_start", "first_byte"}

// WriteFile writes realistic records until the file reaches size bytes:
// experiments of 3 runtimes × N in {1, 4, 16, 64} × 40 iterations (+2
// warm-ups), each a header followed by its cells, as `coldbench run` writes
// them.
func WriteFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(bw)
	rng := rand.New(rand.NewPCG(1, 2))
	runtimes := []string{"runc", "crun", "runsc"}
	scales := []int{1, 4, 16, 64}
	var written int64
	start := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	for e := 0; written < size; e++ {
		id := fmt.Sprintf("cb-20261126t%06d-%06x", e, rng.IntN(1<<24))
		h := results.Header{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: id, Created: start,
			Experiment: map[string]any{"apiVersion": "coldbench.dev/v1alpha1", "kind": "Experiment",
				"spec": map[string]any{"platform": "node", "scales": scales, "iterations": 40, "warmups": 2}},
			Testbed: results.Testbed{Hostname: "bench", CPUModel: "Synthetic CPU @ 3.0GHz", Cores: 16, Kernel: "6.8.0",
				CgroupMode: "v2", MemoryBytes: 64 << 30, RuntimeVersions: map[string]string{"runc": "1.2.0", "crun": "1.17", "runsc": "2024"}},
			Tool: results.ToolInfo{Name: "coldbench", Version: "bench", GoVersion: "go1.26"}}
		if err := enc.Encode(&h); err != nil {
			return err
		}
		for _, n := range scales {
			for it := -2; it < 40 && written < size; it++ {
				for ri, rt := range runtimes {
					for inst := 0; inst < n; inst++ {
						a := attempt(rng, id, rt, ri, n, it, inst, start)
						start = start.Add(time.Duration(a.TotalNS))
						if err := enc.Encode(&a); err != nil {
							return err
						}
					}
				}
				if err := bw.Flush(); err != nil {
					return err
				}
				fi, err := f.Stat()
				if err != nil {
					return err
				}
				written = fi.Size()
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func attempt(rng *rand.Rand, id, rt string, ri, n, it, inst int, start time.Time) results.Attempt {
	hex := func() string {
		var b strings.Builder
		for range 4 {
			fmt.Fprintf(&b, "%016x", rng.Uint64())
		}
		return b.String()
	}
	base := float64(200+100*ri) * (1 + 0.02*float64(n))
	ttfb := int64(base*1e6*(0.8+0.4*rng.Float64())) + 1
	a := results.Attempt{Type: results.TypeAttempt, ExperimentID: id, Platform: "node", Runtime: rt, Handler: rt,
		Scale: n, Iteration: it, Instance: inst, Warmup: it < 0, Start: start,
		TTFBNS: ttfb, TotalNS: ttfb + int64(rng.IntN(400000)), OK: true, HTTPStatus: 200, Probes: 1 + rng.IntN(30),
		Cold: results.Cold{SandboxID: hex(), ContainerID: hex(), Pod: fmt.Sprintf("fn-%s-%d-%d", rt, it+2, inst),
			Address: fmt.Sprintf("10.213.%d.%d:8080", rng.IntN(256), rng.IntN(256))},
		LoadAvg:       [3]float64{float64(rng.IntN(800)) / 100, float64(rng.IntN(800)) / 100, float64(rng.IntN(800)) / 100},
		ReleaseSkewNS: int64(rng.IntN(2000000)),
	}
	for i, name := range phaseNames {
		a.Phases = append(a.Phases, results.Phase{Name: name, OffsetNS: ttfb * int64(i+1) / int64(len(phaseNames))})
	}
	if rng.IntN(50) == 0 { // ~2 % failures
		a.OK, a.TTFBNS, a.HTTPStatus = false, 0, 0
		a.Phases = a.Phases[:3]
		if rng.IntN(2) == 0 {
			a.ErrorClass, a.Error = results.ErrTimeout, "no 2xx reply within 30s: last probe: dial tcp "+a.Cold.Address+": connect: connection refused"
		} else {
			a.ErrorClass, a.Error = results.ErrContainer, "StartContainer: rpc error: code = Unknown desc = failed to create containerd task: OCI runtime create failed"
		}
	}
	return a
}
