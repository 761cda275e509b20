package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// capacity's flags are checked before a platform is opened, each error
// naming the flag (and the spec field) and the fix.
func TestCapacityFlagsValidation(t *testing.T) {
	noPlatform(t)
	c := []string{"capacity", "--runtimes", "runc"}
	wantUsage(t, append(c, "--share", "1.5"), "spec.search.share (--share): 1.5", "at most 1")
	wantUsage(t, append(c, "--share", "0"), "--share 0: must be positive")
	wantUsage(t, append(c, "--max-n", "5000"), "spec.search.maxN (--max-n): 5000 is above 1000; pass --force")
	wantUsage(t, append(c, "--max-n", "200000", "--force"), "spec.search.maxN (--max-n): 200000 is above 100000; that is the hard limit")
	wantUsage(t, append(c, "--start-n", "0"), "--start-n 0: must be positive")
	wantUsage(t, append(c, "--start-n", "-3"), "spec.search.startN (--start-n): -3")
	wantUsage(t, append(c, "--start-n", "64", "--max-n", "8"), "spec.search.maxN (--max-n): 8 is below spec.search.startN (--start-n) 64")
	wantUsage(t, append(c, "--resolution", "1"), "spec.search.resolution (--resolution): 1", "0 = exact")
	wantUsage(t, append(c, "--resolution", "-0.1"), "spec.search.resolution (--resolution): -0.1")
	wantUsage(t, append(c, "--iterations", "0"), "--iterations 0: must be positive")
	wantUsage(t, append(c, "--iterations", "101"), "spec.search.iterations (--iterations): 101")
	wantUsage(t, append(c, "--scales", "1,4"), "unknown flag: --scales")
	wantUsage(t, append(c, "--timeout", "-1s"), "spec.requestTimeout")
	// Knative's classic and pool keep every probed N's services to the end.
	wantUsage(t, []string{"capacity", "--platform", "knative", "--runtimes", "runc", "--protocol", "pool"},
		`spec.knative.protocol (--protocol): "pool" with a capacity search`, `needs "fresh"`)
	wantUsage(t, []string{"capacity", "--platform", "knative", "--runtimes", "runc", "--protocol", "classic"},
		`spec.knative.protocol (--protocol): "classic" with a capacity search`)

	// A sweep's file under capacity: its N are refused, not ignored.
	file := filepath.Join(t.TempDir(), "sweep.yaml")
	if err := os.WriteFile(file, []byte("apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n  platform: node\n  runtimes: [{name: runc, handler: runc}]\n  scales: [1, 4]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, []string{"capacity", "-f", file}, "spec.scales: [1 4] set with spec.search", "remove spec.scales")
	// --resume changes nothing of the recorded search, and wants a search.
	wantUsage(t, []string{"capacity", "--resume", labRecords}, "records a sweep of fixed N", "coldbench run --resume")
	wantUsage(t, []string{"capacity", "--resume", labRecords, "--max-n", "10"}, "--max-n cannot change it")
}

// capacityLine matches the capacity table's line of a runtime that found
// capacity 5 (every instance from the 6th on fails) and ended.
var capacityLine = regexp.MustCompile(`(?m)^(runc|crun) +5 +6 +done +1 \(1/1\) pass; 2 \(2/2\) pass; 4 \(4/4\) pass; 8 \(5/8\) fail; 6 \(5/6\) fail; 5 \(5/5\) pass$`)

// capacity end to end through the CLI: exit 0 although probes failed (they
// are the findings), the capacity printed per runtime; interrupted, exit
// 130 and the file resumes (here or with run --resume) to the same answer.
func TestCapacityCommand(t *testing.T) {
	fail := func(_, inst int) bool { return inst >= 5 }
	usePlatform(t, &scriptedPlatform{fail: fail}, nil)
	args := func(out string) []string {
		return []string{"capacity", "--runtimes", "runc,crun", "--max-n", "64", "--warmups", "0", "-o", out}
	}
	code, out, errOut := cliRun(t, context.Background(), args(filepath.Join(t.TempDir(), "c.jsonl"))...)
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	if n := len(capacityLine.FindAllString(out, -1)); n != 2 {
		t.Fatalf("want capacity 5 for runc and crun:\n%s", out)
	}

	for _, resumeVerb := range []string{"capacity", "run"} {
		path := filepath.Join(t.TempDir(), "c.jsonl")
		ctx, cancel := context.WithCancel(context.Background())
		usePlatform(t, &scriptedPlatform{fail: fail, hook: func(_ context.Context, i int) {
			if i == 5 {
				cancel()
			}
		}}, nil)
		code, out, errOut := cliRun(t, ctx, args(path)...)
		cancel()
		if code != ExitInterrupted || !strings.Contains(errOut, "--resume "+path) || !strings.Contains(out, "unfinished (--resume)") {
			t.Fatalf("interrupted: exit %d, want %d, an unfinished search and how to resume\n%s%s", code, ExitInterrupted, out, errOut)
		}
		p := &scriptedPlatform{fail: fail}
		usePlatform(t, p, nil)
		code, out, errOut = cliRun(t, context.Background(), resumeVerb, "--resume", path)
		if code != ExitOK || len(capacityLine.FindAllString(out, -1)) != 2 {
			t.Fatalf("%s --resume: exit %d\n%s%s", resumeVerb, code, out, errOut)
		}
		// 12 probes in all, 5 recorded before the interrupt.
		if p.calls != 7 {
			t.Errorf("%s --resume measured %d cells, want the 7 not recorded", resumeVerb, p.calls)
		}
	}
}

// A resumed search whose remaining probes all fail has still found the
// capacity its earlier sessions measured: exit 0, not 4.
func TestCapacityResumedWhereEveryRemainingProbeFailsExits0(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	usePlatform(t, &scriptedPlatform{fail: func(_, inst int) bool { return inst >= 5 }, hook: func(_ context.Context, i int) {
		if i == 4 { // N = 1, 2, 4, 8 recorded: 5 answered at most
			cancel()
		}
	}}, nil)
	code, out, errOut := cliRun(t, ctx, "capacity", "--runtimes", "runc", "--max-n", "64", "--warmups", "0", "-o", path)
	cancel()
	if code != ExitInterrupted {
		t.Fatalf("interrupted: exit %d, want %d\n%s%s", code, ExitInterrupted, out, errOut)
	}
	usePlatform(t, &scriptedPlatform{fail: func(_, _ int) bool { return true }}, nil)
	code, out, errOut = cliRun(t, context.Background(), "capacity", "--resume", path)
	if code != ExitOK {
		t.Fatalf("resumed, every remaining probe failing: exit %d, want 0\n%s%s", code, out, errOut)
	}
}

// A search in which nothing ever answers is a broken set-up (image,
// RuntimeClass, ingress), not a capacity of 0: exit 4 like run's.
func TestCapacityWhereNothingAnswersExits4(t *testing.T) {
	usePlatform(t, &scriptedPlatform{fail: func(_, _ int) bool { return true }}, nil)
	code, out, errOut := cliRun(t, context.Background(), "capacity", "--runtimes", "runc", "--max-n", "8", "--warmups", "0",
		"-o", filepath.Join(t.TempDir(), "c.jsonl"))
	if code != ExitIncomplete || !strings.Contains(errOut, "all 1 attempts failed") {
		t.Fatalf("exit %d, want %d with every attempt failed\n%s%s", code, ExitIncomplete, out, errOut)
	}
}
