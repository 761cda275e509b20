package report

import (
	"bytes"
	"html"
	"strings"
	"testing"

	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

// rtSet is node records of runc and gvisor at N=1 with rt_ phases, gvisor's
// sandbox starting 400 ms later; one gvisor attempt has no rt_ phases.
func rtSet() *results.Set {
	set := &results.Set{Headers: []results.Header{{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "e"}}}
	for i := range 12 {
		for _, rt := range []string{"gvisor", "runc"} { // gvisor first: runc is the baseline all the same
			extra := int64(0)
			if rt == "gvisor" {
				extra = 400
			}
			j := int64(i % 5)
			ph := func(name string, ms int64) results.Phase { return results.Phase{Name: name, OffsetNS: ms * 1e6} }
			a := ok("node", rt, 1, (150+extra+j)*1e6)
			a.ExperimentID, a.Iteration = "e", i
			a.Phases = []results.Phase{ph(results.PhaseRTSandboxCreated, 5+j), ph(results.PhaseRTSandboxStarted, 80+extra+2*j),
				ph(results.PhaseSandboxReady, 95+extra+j), ph(results.PhaseRTUserContainerCreated, 100+extra+j),
				ph(results.PhaseRTUserContainerStarted, 130+extra+j), ph(results.PhaseFunctionStart, 128+extra+j),
				ph(results.PhaseFirstByte, 150+extra+j)}
			a.RuntimePhases = results.RuntimePhasesFromEvents
			if rt == "gvisor" && i == 3 {
				a.Phases = a.Phases[2:3]
				a.Phases = append(a.Phases, ph(results.PhaseFunctionStart, 500), ph(results.PhaseFirstByte, 520))
				a.RuntimePhases = results.RuntimePhasesMissing + "containerd event stream lost"
			}
			set.Attempts = append(set.Attempts, a)
		}
	}
	return set
}

func TestTextReportLeadsWithTheBreakdown(t *testing.T) {
	out := string(render(t, FormatTable, rtSet(), Meta{}))
	for _, want := range []string{
		"Where the runtimes differ (N=1): median segment (ms) per runtime and its difference from runc, Hodges–Lehmann shift [95% CI]",
		"runtime view: containerd's events (coldbench's subscription); the platform's own phases from the sandbox on are left out",
		"the successful attempts without all rt_ phases are left out of these medians (gvisor at N=1: 11 of 12 successful attempts have all rt_ phases)",
		"gvisor vs runc at N=1: the largest growth is rt_sandbox_created→rt_sandbox_started, +400.000 ms [95% CI +",
		"rt_sandbox_created→rt_sandbox_started                76.500       476.000        +400.000 [+398.000, +401.000]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "→"+results.PhaseSandboxReady) {
		t.Errorf("the breakdown has a segment of sandbox_ready:\n%s", out)
	}
	if b, tbl := strings.Index(out, "Where the runtimes differ"), strings.Index(out, "RUNTIME"); b < 0 || tbl < b {
		t.Errorf("the breakdown does not lead the table:\n%s", out)
	}
	// The other formats are as they were.
	if md := string(render(t, FormatMarkdown, rtSet(), Meta{})); strings.Contains(md, "Where the runtimes differ") {
		t.Errorf("markdown has the breakdown:\n%s", md)
	}
}

func TestHTMLSaysWhichView(t *testing.T) {
	page := html.UnescapeString(renderHTML(t, rtSet(), Meta{}))
	for _, want := range []string{
		`<section id="differences">`,
		"runtime view: containerd's events (coldbench's subscription)",
		"gvisor vs runc at N=1: the largest growth is rt_sandbox_created→rt_sandbox_started, +400.000 ms",
		"gvisor (n = 11)", // the phase table's n: the attempts with rt_ phases
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML page lacks %q", want)
		}
	}
	phases := page[strings.Index(page, `<section id="phases">`):]
	phases = phases[:strings.Index(phases, "</section>")]
	if strings.Contains(phases, "<code>sandbox_ready</code>") {
		t.Error("the runtime view's phase table has sandbox_ready")
	}
	if d, s := strings.Index(page, `<section id="differences">`), strings.Index(page, `<section id="summary">`); d > s {
		t.Error("the differences do not lead the page")
	}

	// Records without rt_ phases: the API server's view, as before, and no
	// breakdown.
	m, err := stats.NewModel().Load(t.Context(), results.ReadOptions{}, labBeforeAgentFile)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := HTML(HTMLOptions{}).Report(t.Context(), &buf, m, Meta{}); err != nil {
		t.Fatal(err)
	}
	lab := buf.String()
	if !strings.Contains(lab, "<p>API-server view: no rt_ phases in these records.</p>") || strings.Contains(lab, `id="differences"`) {
		t.Error("the lab's page from before the agent does not say it shows the API server's view, or has a breakdown")
	}

	// The lab's records with the node agent: its view, the breakdown first,
	// no sandbox_ready (the kubelet's late report) in the phase tables.
	if m, err = stats.NewModel().Load(t.Context(), results.ReadOptions{}, labRecordsFile); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := HTML(HTMLOptions{}).Report(t.Context(), &buf, m, Meta{}); err != nil {
		t.Fatal(err)
	}
	lab = html.UnescapeString(buf.String())
	for _, want := range []string{`<section id="differences">`, "runtime view: containerd's events (node agent)", "crun vs runc at N=5: the largest growth is request_sent→deployment_scaled, +"} {
		if !strings.Contains(lab, want) {
			t.Errorf("the lab's page with the agent lacks %q", want)
		}
	}
	if phases := lab[strings.Index(lab, `<section id="phases">`):]; strings.Contains(phases[:strings.Index(phases, "</section>")], "<code>sandbox_ready</code>") {
		t.Error("the lab's page with the agent: the phase tables have sandbox_ready")
	}
}
