package cli

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/coldbench/coldbench/pkg/bench"
)

// leakyPlatform is a scriptedPlatform whose session's clean-up fails,
// leaving objects behind that it can list (bench.Inventory) unless blind.
type leakyPlatform struct {
	scriptedPlatform
	blind  bool // not an Inventory: see leakyBlind
	mu     sync.Mutex
	listed []string // experiment ids Leftovers was asked about
}

type leakySession struct{ *scriptedPlatform }

// Close fails as an overloaded API server makes it fail.
func (leakySession) Close() error {
	return errors.New(`deleting ksvc "cbab12-r0-n250-i0-7": context deadline exceeded`)
}

func (p *leakyPlatform) Open(context.Context, *bench.Experiment, string, map[bench.CellKey]bool) (bench.Session, error) {
	return leakySession{&p.scriptedPlatform}, nil
}

func (p *leakyPlatform) Leftovers(_ context.Context, id string) ([]bench.Leftover, error) {
	p.mu.Lock()
	p.listed = append(p.listed, id)
	p.mu.Unlock()
	return []bench.Leftover{
		{Kind: "ksvc", Count: 212, Names: []string{"cbab12-r0-n250-i0-7", "cbab12-r0-n250-i0-8", "cbab12-r0-n250-i0-9"}},
		{Kind: "pod", Count: 0},
	}, nil
}

func (p *leakyPlatform) CleanFlags() []string {
	return []string{"--platform", "scripted", "--namespace", "my ns"}
}

// leakyBlind is a leakyPlatform that cannot list what is left.
type leakyBlind struct{ scriptedPlatform }

func (p *leakyBlind) Open(context.Context, *bench.Experiment, string, map[bench.CellKey]bool) (bench.Session, error) {
	return leakySession{&p.scriptedPlatform}, nil
}

// A clean-up that fails after the run is never a silent exit 0: the run
// fails, naming what is left and the command that removes it; an interrupt
// keeps its status, and the message still appears.
func TestRunWhoseCleanUpFailsNamesTheLeftoversAndExitsNonZero(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     func() bench.Platform
		sig   bool // SIGINT during the second cell
		code  int
		wants []string
		inv   bool
	}{
		{"all answered", func() bench.Platform { return &leakyPlatform{} }, false, ExitFailure,
			[]string{"the clean-up after the run failed", "context deadline exceeded", "212 ksvc (cbab12-r0-n250-i0-7, cbab12-r0-n250-i0-8, cbab12-r0-n250-i0-9, …)",
				"coldbench clean --platform scripted --namespace 'my ns' --experiment cb-"}, true},
		{"interrupted", func() bench.Platform { return &leakyPlatform{} }, true, ExitInterrupted,
			[]string{"--resume", "212 ksvc", "coldbench clean --platform scripted --namespace 'my ns' --experiment cb-"}, true},
		{"platform that cannot list", func() bench.Platform { return &leakyBlind{} }, false, ExitFailure,
			[]string{"the clean-up after the run failed", "coldbench clean --platform scripted --experiment cb-"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			p := tc.p()
			if tc.sig {
				p.(*leakyPlatform).hook = func(_ context.Context, i int) {
					if i == 1 {
						cancel(signalCause{syscall.SIGINT})
					}
				}
			}
			usePlatform(t, p, nil)
			code, out, errOut := cliRun(t, ctx, runArgs(t)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.wants {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if lp, ok := p.(*leakyPlatform); ok && tc.inv {
				if len(lp.listed) != 1 || !strings.Contains(errOut, "--experiment "+lp.listed[0]) {
					t.Errorf("leftovers listed for %v; the command must name that experiment:\n%s", lp.listed, errOut)
				}
			}
		})
	}
}
