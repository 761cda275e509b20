package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/results"
)

// A density run on the real containerd: runc and gVisor, two steps of 3,
// capped at 6. Every attempt records the density it met and a footprint,
// the report's capacity is what the records say, and nothing of the run is
// left when the command returns (checked without clean).
func TestDensityEndToEnd(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	out := filepath.Join(t.TempDir(), "density.jsonl")
	stdout, err := execute(t, "density", "--endpoint", ep, "--runtimes", "runc,runsc", "--step", "3", "--max", "6",
		"--warmups", "1", "--footprint-settle", "1s", "-o", out)
	if err != nil {
		t.Fatalf("density: %v\n%s", err, stdout)
	}
	set, err := results.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	id := set.Headers[0].ExperimentID
	if left := experimentSandboxes(t, ep, id); left != 0 {
		t.Errorf("%d sandboxes of %s left after the density run returned", left, id)
	}
	type stepKey struct {
		rt   string
		step int
	}
	alive := map[stepKey]int{}
	answered := map[string]int{}
	for _, a := range set.Attempts {
		if a.Warmup {
			if a.Density != nil {
				t.Errorf("warm-up with a density: %+v", a.Density)
			}
			continue
		}
		if !a.OK {
			t.Errorf("%s step %d #%d failed: %s: %s", a.Runtime, a.Iteration, a.Instance, a.ErrorClass, a.Error)
			continue
		}
		answered[a.Runtime]++
		if a.Density == nil || a.Density.MemAvailableBytes == nil || a.Footprint == nil || a.Footprint.PSSAnonShmemBytes == nil {
			t.Errorf("%s step %d #%d: density %+v, footprint %v", a.Runtime, a.Iteration, a.Instance, a.Density, a.Footprint != nil)
			continue
		}
		alive[stepKey{a.Runtime, a.Iteration}] = a.Density.Alive
		if a.Iteration == 1 && (len(a.Density.Stop) != 1 || !strings.Contains(a.Density.Stop[0], "cap of 6")) {
			t.Errorf("%s's last step stops because %q, want the cap", a.Runtime, a.Density.Stop)
		}
	}
	for _, rt := range []string{"runc", "runsc"} {
		if alive[stepKey{rt, 0}] != 0 || alive[stepKey{rt, 1}] != 3 || answered[rt] != 6 {
			t.Errorf("%s: alive %d then %d, %d answered; want 0, 3 and 6", rt, alive[stepKey{rt, 0}], alive[stepKey{rt, 1}], answered[rt])
		}
		want := fmt.Sprintf("%s (%s): capacity 6 instances; stopped: cap of 6 instances reached", rt, id)
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	js, err := execute(t, "report", "--format", "json", out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Density []struct {
			Runtime  string `json:"runtime"`
			Capacity int    `json:"capacity"`
			Steps    []struct {
				Alive int `json:"alive_before"`
			} `json:"steps"`
		} `json:"density"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if len(rep.Density) != 2 || rep.Density[1].Runtime != "runsc" || rep.Density[1].Capacity != 6 || len(rep.Density[1].Steps) != 2 {
		t.Errorf("JSON report's density: %+v", rep.Density)
	}
}

// Bad density input is refused before anything is created, naming the
// flag and the fix.
func TestDensityRefusesBadInput(t *testing.T) {
	testenv.Integration(t)
	ep := testenv.Endpoint(t)
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"step 0", []string{"--step", "0"}, []string{"--step 0: must be positive"}},
		{"step above max", []string{"--step", "20", "--max", "10"}, []string{"spec.density.step (--step): 20 is above spec.density.max 10"}},
		{"failed share 1", []string{"--max-failed-share", "1"}, []string{"--max-failed-share", "[0, 1)"}},
		{"latency bound above the timeout", []string{"--max-latency", "1m", "--timeout", "30s"}, []string{"--max-latency", "can never stop the run"}},
		{"floor not a size", []string{"--min-mem-available", "lots"}, []string{`--min-mem-available "lots": not a size`}},
		{"floor above the machine's memory", []string{"--min-mem-available", "64Ti"}, []string{"--min-mem-available 64Ti is not below this node's memory", "well below"}},
		{"knative pool", []string{"--platform", "knative", "--protocol", "pool"}, []string{`spec.knative.protocol (--protocol): "pool" with a density run`}},
		{"knative past the retention", []string{"--platform", "knative", "--deadline", "55m"}, []string{"spec.deadline (--deadline): 55m0s is too long for a density run on Knative", "at most 50m0s"}},
		{"scales", []string{"--scales", "4"}, []string{"unknown flag: --scales"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".jsonl")
			args := append([]string{"density", "-o", out}, c.args...)
			if !strings.Contains(strings.Join(c.args, " "), "--platform") {
				args = append(args, "--endpoint", ep)
			}
			_, err := execute(t, args...)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Errorf("records file %s was created", out)
			}
		})
	}
}
