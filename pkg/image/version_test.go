package image

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// coldbench's own image carries the commit it was built from.
func TestVersionLDFlags(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	got := VersionLDFlags(context.Background(), ".")
	want := "-X github.com/coldbench/coldbench/pkg/bench.Commit=" + strings.TrimSpace(string(head))
	if !strings.Contains(got, want) || !strings.Contains(got, "pkg/bench.Version=") {
		t.Errorf("VersionLDFlags = %q, want it to contain %q and a Version", got, want)
	}
	if got := VersionLDFlags(context.Background(), t.TempDir()); got != "" {
		t.Errorf("outside a checkout: %q, want none", got)
	}
}

// The binary built for coldbench's image says its commit (--version).
func TestBuiltColdbenchCarriesCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds coldbench: skipped under -short")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	bin, err := BuildFunction(context.Background(), "coldbench", "../../functions", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "(commit "+strings.TrimSpace(string(head))+")") {
		t.Errorf("--version: %q lacks the commit %s", out, head)
	}
}
