package stats

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/coldbench/coldbench/pkg/results"
)

// Phase views. A record holds two families of phases: the platform's own
// (on Knative the API server's sandbox_ready, *_started, *_ready, reported
// by a kubelet that lags, so sandbox_ready is typically stamped after the
// function already runs; on the node coldbench's CRI calls' replies) and the
// runtime-observed rt_ phases, containerd's own event stamps. Stacked
// together they contradict each other, so a figure or table shows one view:
// the runtime view when most attempts of every runtime it shows carry all
// rt_ phases (ChoosePhaseView), else the
// platform's view, as before rt_ phases existed. ChoosePhaseView is the one
// place that decides; pkg/plot's phase figure, pkg/report's phase tables and
// pkg/compare's per-runtime breakdown all call it.

// Names of the views, as the figure notes and the reports print them.
const (
	ViewRuntime   = "runtime view"
	ViewAPIServer = "API-server view" // knative
	ViewCRI       = "CRI view"        // node
	ViewPlatform  = "platform view"   // any other platform, or several
)

// prePodPhases are the platform's phases that come before the pod (or
// sandbox) exists: coldbench's own request stamps and, on Knative, what the
// API server reports of the scale-up before the kubelet has anything. The
// runtime view keeps them (nothing of the runtime's could contradict them)
// and drops every other platform phase.
var prePodPhases = []string{results.PhaseConnected, results.PhaseRequestSent, results.PhaseDeploymentScaled,
	results.PhasePodCreated, results.PhasePodScheduled}

// RuntimeViewPhase reports whether the runtime view shows the named phase:
// an rt_ phase, a phase before the pod exists, the function's own start or
// the first byte.
func RuntimeViewPhase(name string) bool {
	return strings.HasPrefix(name, results.RuntimePhasePrefix) || name == results.PhaseFunctionStart ||
		name == results.PhaseFirstByte || slices.Contains(prePodPhases, name)
}

// PrePodPhases lists the platform phases the runtime view keeps (a copy).
func PrePodPhases() []string { return slices.Clone(prePodPhases) }

// hasRuntimePhase reports whether a carries at least one rt_ phase.
func hasRuntimePhase(a *results.Attempt) bool {
	return slices.ContainsFunc(a.Phases, func(p results.Phase) bool {
		return strings.HasPrefix(p.Name, results.RuntimePhasePrefix)
	})
}

// RuntimePhasesOf is every rt_ phase an attempt on the platform has when
// all were seen: Knative's pods add the queue-proxy's container.
func RuntimePhasesOf(platform string) []string {
	p := []string{results.PhaseRTSandboxCreated, results.PhaseRTSandboxStarted,
		results.PhaseRTUserContainerCreated, results.PhaseRTUserContainerStarted}
	if platform == "knative" {
		p = append(p, results.PhaseRTQueueProxyCreated, results.PhaseRTQueueProxyStarted)
	}
	return p
}

// InRuntimeView reports whether the runtime view reads a (a successful
// attempt): it has every rt_ phase of its platform and its note is not
// "partial: ". Only such attempts, so that all the rt_ medians of a bar
// come from the same attempts: with a phase missing here and there, a
// segment between two medians would mix attempts.
func InRuntimeView(a *results.Attempt) bool {
	if strings.HasPrefix(a.RuntimePhases, results.RuntimePhasesPartial) {
		return false
	}
	for _, name := range RuntimePhasesOf(a.Platform) {
		if !slices.ContainsFunc(a.Phases, func(p results.Phase) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

// ViewCell is what the choice of a view reads of one cell: small, so that
// pkg/plot can keep it after dropping the model's offsets.
type ViewCell struct {
	Key CellKey
	// Successes counts successful measured attempts, WithRT those of them
	// the runtime view reads (InRuntimeView), AnyRT those with an rt_
	// phase at all.
	Successes, WithRT, AnyRT int
	// Sources are the distinct Attempt.RuntimePhases values that name a
	// source (containerd events, node agent), in first-seen order.
	Sources []string
}

// ViewCell returns what ChoosePhaseView reads of c.
func (c *Cell) ViewCell() ViewCell {
	return ViewCell{Key: c.Key, Successes: c.Successes, WithRT: c.WithRT, AnyRT: c.AnyRT, Sources: slices.Clone(c.rtSources)}
}

// coverage is a cell's attempts with runtime phases, in words:
// "gvisor at N=1: 3 of 20 successful attempts have all rt_ phases".
func (c ViewCell) coverage() string {
	return fmt.Sprintf("%s at N=%d: %d of %d successful attempts have all rt_ phases",
		RuntimeLabel(c.Key.Runtime), c.Key.Scale, c.WithRT, c.Successes)
}

// PhaseView is the view a figure or table shows, and why.
type PhaseView struct {
	// Runtime: the runtime view (RuntimeViewPhase phases, over the
	// attempts InRuntimeView); else every phase over every successful
	// attempt, as before rt_ phases existed.
	Runtime bool
	// Name is one of the View* names.
	Name string
	// Why says where the view's phases come from (runtime view) or why
	// there is no runtime view.
	Why string
	// Short (runtime view only) is, per cell not all of whose successful
	// attempts are in the view, their coverage in words: the others are
	// left out of its medians.
	Short []string
}

// MinRuntimeCoverage is the share of a cell's successful attempts that must
// have all rt_ phases for the cell to be shown in the runtime view.
const MinRuntimeCoverage = 0.5

// ChoosePhaseView decides the view of the cells one figure or table shows.
//
// The runtime view needs every cell that has successful attempts to have
// at least MinRuntimeCoverage of them with all rt_ phases (InRuntimeView),
// so that the runtimes set side by side are always in the same view and
// each bar speaks for most of its attempts: one runtime whose node agent
// was down, or whose events mostly came too late, turns the whole figure
// back to the platform's view (and the note names it and its coverage)
// rather than setting a bar of a few attempts, or of the API server's
// stamps, beside another. In the runtime view only the attempts
// InRuntimeView enter the medians, every one of them (the platform's
// phases too), so that all of a bar's rt_ medians come from the same
// attempts; the note gives each cell's coverage when it is not complete.
func ChoosePhaseView(cells []ViewCell) PhaseView {
	v := PhaseView{Name: platformViewName(cells)}
	var low, sources []string
	someRT := false
	for _, c := range cells {
		if c.Successes == 0 {
			continue
		}
		someRT = someRT || c.AnyRT > 0
		if float64(c.WithRT) < MinRuntimeCoverage*float64(c.Successes) {
			low = append(low, c.coverage())
			continue
		}
		if c.WithRT < c.Successes {
			v.Short = append(v.Short, c.coverage())
		}
		for _, s := range c.Sources {
			if !slices.Contains(sources, s) {
				sources = append(sources, s)
			}
		}
	}
	switch {
	case !someRT:
		v.Short = nil
		v.Why = "no rt_ phases in these records"
	case len(low) > 0:
		v.Short = nil
		v.Why = fmt.Sprintf("too few attempts with runtime phases, the runtime view needs %g%% of each runtime's (%s), "+
			"so every runtime is shown in the same view", 100*MinRuntimeCoverage, strings.Join(low, "; "))
	default:
		v.Runtime, v.Name = true, ViewRuntime
		v.Why = "containerd's events (" + sourceWords(sources) + ")"
	}
	return v
}

// Sentence is the view in words: its name, why, and in the runtime view
// which attempts and phases are left out.
func (v PhaseView) Sentence() string {
	s := v.Name + ": " + v.Why
	if !v.Runtime {
		return s + "."
	}
	s += "; the platform's own phases from the sandbox on are left out (they stay in the records, CSV and JSON)"
	if len(v.Short) > 0 {
		s += "; the successful attempts without all rt_ phases are left out of these medians (" + strings.Join(v.Short, "; ") + ")"
	}
	return s + "."
}

// Offsets returns the offsets (ns) of each phase the view shows in c,
// ascending: in the runtime view from the attempts InRuntimeView only
// (copies: c.RTPhases stays aligned by attempt), else c.Phases itself,
// which is sorted in place (as the HTML report always did).
func (v PhaseView) Offsets(c *Cell) map[string][]float64 {
	if !v.Runtime {
		for _, o := range c.Phases {
			slices.Sort(o)
		}
		return c.Phases
	}
	out := make(map[string][]float64, len(c.RTPhases))
	for name, col := range c.RTPhases {
		var o []float64
		for _, x := range col {
			if !math.IsNaN(x) {
				o = append(o, x)
			}
		}
		if len(o) > 0 {
			slices.Sort(o)
			out[name] = o
		}
	}
	return out
}

// sourceWords names where the rt_ phases came from.
func sourceWords(sources []string) string {
	var w []string
	for _, s := range sources {
		switch s {
		case results.RuntimePhasesFromAgent:
			w = append(w, "node agent")
		case results.RuntimePhasesFromEvents:
			w = append(w, "coldbench's subscription")
		}
	}
	if len(w) == 0 {
		return "source not recorded"
	}
	return strings.Join(w, "; ")
}

// platformViewName is the name of the platform's own view of the cells.
func platformViewName(cells []ViewCell) string {
	name := ""
	for _, c := range cells {
		n := ViewPlatform
		switch c.Key.Platform {
		case "knative":
			n = ViewAPIServer
		case "node":
			n = ViewCRI
		}
		if name != "" && name != n {
			return ViewPlatform
		}
		name = n
	}
	if name == "" {
		return ViewPlatform
	}
	return name
}

// RuntimeLabel is how a runtime is named in figures and notes: the
// platform's default runtime has no name in the records.
func RuntimeLabel(runtime string) string {
	if runtime == "" {
		return "(default)"
	}
	return runtime
}
