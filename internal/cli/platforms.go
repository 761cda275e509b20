package cli

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/knative"
	"github.com/coldbench/coldbench/pkg/platform/node"
)

// registerPlatforms registers the platforms this program can run, once.
// They are registered here, explicitly, rather than by each platform
// package's init: the list (and its order, that of --platform's help and
// of messages) is read in one place, and importing a platform package for
// a helper registers nothing behind the reader's back.
var registerPlatforms = sync.OnceFunc(func() {
	bench.Register(node.Backend())
	bench.Register(knative.Backend())
})

// platformFlags are one command's values of every platform's flags.
type platformFlags map[string]bench.Flags

// register adds every platform's flags to fl.
func (pf platformFlags) register(fl *pflag.FlagSet) {
	for _, b := range bench.Backends() {
		if b.Flags != nil {
			pf[b.Name] = b.Flags.New()
			pf[b.Name].Register(fl)
		}
	}
}

// apply copies the platform's flags into its section of s (made if
// absent): all of them without a file, those changed reports with one.
func (pf platformFlags) apply(s *bench.Spec, changed func(string) bool, fromFile bool) {
	b := bench.LookupBackend(s.Platform)
	if b == nil || pf[b.Name] == nil {
		return
	}
	sec := s.Section(b.Name)
	if sec == nil {
		sec = b.NewSection()
		s.SetSection(b.Name, sec)
	}
	pf[b.Name].Apply(sec, changed, fromFile)
}

// applyResume copies the flags that say where to run, when given, into the
// sections of a recorded experiment: the one thing a resume may change.
func (pf platformFlags) applyResume(s *bench.Spec, changed func(string) bool) {
	for _, b := range bench.Backends() {
		sec := s.Section(b.Name)
		if sec == nil || pf[b.Name] == nil {
			continue
		}
		pf[b.Name].Apply(sec, func(n string) bool { return changed(n) && slices.Contains(b.Flags.Resume, n) }, true)
	}
}

// checkPlatformFlags refuses flags given on the command line that the
// platform would ignore.
func checkPlatformFlags(changed func(string) bool, platform string) error {
	if bench.LookupBackend(platform) == nil {
		return nil // Validate names the unknown platform
	}
	for _, b := range bench.Backends() {
		if b.Flags == nil || b.Name == platform {
			continue
		}
		for _, n := range b.Flags.Names {
			if changed(n) {
				return fmt.Errorf(b.Flags.Refusal, n, platform)
			}
		}
	}
	return nil
}

// platformVerbFlags lists the platforms' flags verb ("doctor" or "clean")
// uses.
func platformVerbFlags(verb string) []string {
	var names []string
	for _, b := range bench.Backends() {
		if b.Flags == nil {
			continue
		}
		switch verb {
		case "doctor":
			names = append(names, b.Flags.Doctor...)
		case "clean":
			names = append(names, b.Flags.Clean...)
		}
	}
	return names
}

// resumeFlags are the platforms' flags `run --resume` accepts.
func resumeFlags() []string {
	var names []string
	for _, b := range bench.Backends() {
		if b.Flags != nil {
			names = append(names, b.Flags.Resume...)
		}
	}
	return names
}

// platformHelp is --platform's help: each platform and what it runs on.
func platformHelp() string {
	var ps []string
	for _, b := range bench.Backends() {
		ps = append(ps, fmt.Sprintf("%s (%s)", b.Name, b.Summary))
	}
	return "platform: " + bench.OrList(ps)
}

// imageHelp is --image's help: each platform's default image.
func imageHelp() string {
	var ims []string
	for _, b := range bench.Backends() {
		im := b.Image
		if im == "" {
			im = bench.DefaultImage
		}
		ims = append(ims, im+" on "+b.Name)
	}
	return "function image for runtimes given by --runtimes (default " + strings.Join(ims, ", ") + ")"
}

// openNamedPlatform builds the platform the experiment names.
func openNamedPlatform(exp *bench.Experiment, log *slog.Logger) (bench.Platform, error) {
	b := bench.LookupBackend(exp.Spec.Platform)
	if b == nil {
		return nil, fmt.Errorf("--platform %q: not available; use %s", exp.Spec.Platform, bench.OrList(bench.BackendNames()))
	}
	return b.Open(exp, log)
}

// cleaned names what clean removed on the experiment's platform.
func cleaned(exp *bench.Experiment) string {
	if b := bench.LookupBackend(exp.Spec.Platform); b != nil && b.Cleaned != nil {
		return b.Cleaned(exp.Spec.Section(b.Name))
	}
	return "object(s)"
}
