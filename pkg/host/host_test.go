package host

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p, v string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// A sysfs tree in a temp dir stands in for a bare-metal host's (this machine
// exposes neither file; TestRealHost covers that case).
func TestTuneRestore(t *testing.T) {
	sys := t.TempDir()
	g0 := filepath.Join(sys, "devices/system/cpu/cpu0/cpufreq/scaling_governor")
	g1 := filepath.Join(sys, "devices/system/cpu/cpu1/cpufreq/scaling_governor")
	boost := filepath.Join(sys, "devices/system/cpu/cpufreq/boost")
	write(t, g0, "schedutil")
	write(t, g1, "powersave")
	write(t, boost, "1")
	tu := &Tuner{Sysfs: sys, StateFile: filepath.Join(t.TempDir(), "state.json")}
	changed, err := tu.Tune()
	if err != nil || len(changed) != 3 {
		t.Fatalf("tune: %v %v", changed, err)
	}
	if read(t, g0) != "performance" || read(t, g1) != "performance" || read(t, boost) != "0" {
		t.Fatal("not tuned")
	}
	// Tuning again must not overwrite the saved originals with tuned values.
	if _, err := tu.Tune(); err != nil {
		t.Fatal(err)
	}
	if _, err := tu.Restore(); err != nil {
		t.Fatal(err)
	}
	if read(t, g0) != "schedutil" || read(t, g1) != "powersave" || read(t, boost) != "1" {
		t.Fatalf("restored %s %s %s", read(t, g0), read(t, g1), read(t, boost))
	}
	if _, err := tu.Restore(); err == nil || !strings.Contains(err.Error(), "was not run") {
		t.Fatalf("second restore: %v", err)
	}
}

func TestRealHost(t *testing.T) {
	tu := &Tuner{Sysfs: "/sys", StateFile: filepath.Join(t.TempDir(), "state.json")}
	if len(tu.targets()) > 0 {
		t.Skip("this host exposes cpufreq; the fake-sysfs test covers tuning")
	}
	if _, err := tu.Tune(); !errors.Is(err, ErrNotExposed) {
		t.Fatalf("tune on a host without cpufreq: %v", err)
	}
	if _, err := os.Stat(tu.StateFile); err == nil {
		t.Fatal("state saved although nothing was tuned")
	}
}

// CPUFreqState reads what Tune writes and Restore puts back.
func TestCPUFreqStateFollowsTuning(t *testing.T) {
	for _, sw := range []struct{ path, on string }{
		{"devices/system/cpu/cpufreq/boost", "1"},
		{"devices/system/cpu/intel_pstate/no_turbo", "0"},
	} {
		sys := t.TempDir()
		write(t, filepath.Join(sys, "devices/system/cpu/cpu0/cpufreq/scaling_governor"), "schedutil")
		write(t, filepath.Join(sys, sw.path), sw.on)
		if gov, boost := cpuFreqState(sys); gov != "schedutil" || boost != "on" {
			t.Errorf("%s: before tuning: %q, %q", sw.path, gov, boost)
		}
		tu := &Tuner{Sysfs: sys, StateFile: filepath.Join(t.TempDir(), "state.json")}
		if _, err := tu.Tune(); err != nil {
			t.Fatal(err)
		}
		if gov, boost := cpuFreqState(sys); gov != "performance" || boost != "off" {
			t.Errorf("%s: tuned: %q, %q", sw.path, gov, boost)
		}
		if _, err := tu.Restore(); err != nil {
			t.Fatal(err)
		}
		if gov, boost := cpuFreqState(sys); gov != "schedutil" || boost != "on" {
			t.Errorf("%s: restored: %q, %q", sw.path, gov, boost)
		}
	}
	if gov, boost := cpuFreqState(t.TempDir()); gov != "" || boost != "" {
		t.Errorf("nothing exposed: %q, %q", gov, boost)
	}
}
