// Package host reads the host coldbench runs on and tunes it:
//
//   - what the machine is, for the header record (testbed.go: Collect,
//     CgroupMode, LoadAvg, Summary): numbers without their machine are not
//     comparable;
//   - what the harness itself uses per step (self.go: StepMeter, ReadSelf):
//     its CPU time and peak RSS;
//   - the CPU frequency settings that make cold-start figures noisy
//     (governor, boost; host.go): CPUFreqState reports them for the header
//     record, Tune sets them for measuring and Restore puts them back
//     afterwards (the previous values kept in a state file in between).
package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/coldbench/coldbench/pkg/outfile"
)

// State is what tune changed, saved so restore can undo it exactly.
type State struct {
	// Files maps a sysfs path to the value it held before tuning.
	Files map[string]string `json:"files"`
}

// Tuner works on a sysfs tree (normally "/sys").
type Tuner struct {
	Sysfs     string
	StateFile string // where the previous state is kept between tune and restore
}

// Default uses the real /sys and coldbench's state directory.
func Default() *Tuner {
	return &Tuner{Sysfs: "/sys", StateFile: "/var/lib/coldbench/host-tune-state.json"}
}

// ErrNotExposed means the host has neither a cpufreq governor nor a boost
// switch (typical in VMs): there is nothing to tune.
var ErrNotExposed = errors.New("this host exposes no CPU governor and no boost switch (typical in VMs): nothing to tune, nothing changed")

// The CPU frequency files, relative to sysfs.
const (
	governors    = "devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor" // a glob: every cpu's
	cpu0Governor = "devices/system/cpu/cpu0/cpufreq/scaling_governor"
	boostFile    = "devices/system/cpu/cpufreq/boost"         // "1": boost on
	noTurboFile  = "devices/system/cpu/intel_pstate/no_turbo" // "0": boost on (Intel)
)

// CPUFreqState returns cpu0's governor and the boost state ("on"/"off"), or
// empty strings where the host does not expose them.
func CPUFreqState() (governor, boost string) { return cpuFreqState("/sys") }

func cpuFreqState(sysfs string) (governor, boost string) {
	if b, err := os.ReadFile(filepath.Join(sysfs, cpu0Governor)); err == nil {
		governor = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(sysfs, boostFile)); err == nil {
		boost = onOff(bytes.Equal(bytes.TrimSpace(b), []byte("1")))
	} else if b, err := os.ReadFile(filepath.Join(sysfs, noTurboFile)); err == nil {
		boost = onOff(bytes.Equal(bytes.TrimSpace(b), []byte("0")))
	}
	return governor, boost
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// targets lists the files tune writes and the value each gets.
func (t *Tuner) targets() map[string]string {
	want := map[string]string{}
	govs, _ := filepath.Glob(filepath.Join(t.Sysfs, governors))
	for _, g := range govs {
		want[g] = "performance"
	}
	if p := filepath.Join(t.Sysfs, boostFile); exists(p) {
		want[p] = "0"
	}
	if p := filepath.Join(t.Sysfs, noTurboFile); exists(p) {
		want[p] = "1"
	}
	return want
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Tune sets every governor to performance and turns boost off, after saving
// the previous values. Tuning twice keeps the first saved state.
func (t *Tuner) Tune() ([]string, error) {
	want := t.targets()
	if len(want) == 0 {
		return nil, ErrNotExposed
	}
	prev := State{Files: map[string]string{}}
	if old, err := t.load(); err == nil {
		prev = *old // already tuned: keep the original values
	}
	for p := range want {
		if _, ok := prev.Files[p]; ok {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		prev.Files[p] = strings.TrimSpace(string(b))
	}
	if err := t.save(&prev); err != nil {
		return nil, err
	}
	var changed []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if err := os.WriteFile(p, []byte(want[p]), 0o644); err != nil {
			return changed, fmt.Errorf("writing %q to %s: %w (run `coldbench host restore` to undo the rest)", want[p], p, err)
		}
		changed = append(changed, fmt.Sprintf("%s: %s -> %s", p, prev.Files[p], want[p]))
	}
	return changed, nil
}

// Restore writes back the values saved by Tune and forgets them.
func (t *Tuner) Restore() ([]string, error) {
	st, err := t.load()
	if errors.Is(err, os.ErrNotExist) {
		if len(t.targets()) == 0 {
			return nil, ErrNotExposed
		}
		return nil, fmt.Errorf("no saved state in %s: `coldbench host tune` was not run (or was restored already)", t.StateFile)
	}
	if err != nil {
		return nil, err
	}
	var restored []string
	for _, p := range slices.Sorted(maps.Keys(st.Files)) {
		if err := os.WriteFile(p, []byte(st.Files[p]), 0o644); err != nil {
			return restored, fmt.Errorf("restoring %s to %q: %w", p, st.Files[p], err)
		}
		restored = append(restored, fmt.Sprintf("%s: %s", p, st.Files[p]))
	}
	return restored, os.Remove(t.StateFile)
}

func (t *Tuner) load() (*State, error) {
	b, err := os.ReadFile(t.StateFile)
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading saved host state %s: %w", t.StateFile, err)
	}
	return &st, nil
}

func (t *Tuner) save(st *State) error {
	if err := os.MkdirAll(filepath.Dir(t.StateFile), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	// Whole or not at all: restore must never read half a state.
	return outfile.WriteFile(context.Background(), t.StateFile, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
