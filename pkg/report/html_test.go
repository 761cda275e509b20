package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// labRecordsFile is a real run on the lab's Knative: runc and crun at N = 1,
// 5, 10, 320 cold starts, each with its 12 platform phases and the node
// agent's 6 rt_ phases; labBeforeAgentFile the same experiment run before
// the node agent existed (the API server's view only, its values pinned
// below); nodeRecordsFile one of the node backend (its own 6 phases, a
// warm-up per cell).
const (
	labRecordsFile     = "../../testdata/lab/knative-runc-crun-n1-5-10.jsonl"
	labBeforeAgentFile = "../../testdata/lab/knative-runc-crun-n1-5-10-before-agent.jsonl"
	nodeRecordsFile    = "../plot/testdata/node-runc-crun.jsonl"
)

func renderHTML(t *testing.T, set *results.Set, meta Meta) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, set, meta, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// externalRef catches anything a browser could fetch: URLs, and the
// attributes and CSS that load resources.
var externalRef = regexp.MustCompile(`(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/|\bsrc\s*=|<link\b|<script\b|<iframe\b|<object\b|<embed\b|url\(|@import|xlink:href|\bhref\s*=\s*"[^#]`)

var (
	styleBlock = regexp.MustCompile(`(?is)<style\b[^>]*>(.*?)</style>`)
	textNode   = regexp.MustCompile(`>[^<]*<`)
)

// externalRefs returns what externalRef finds in page's markup (tags and
// attributes) and style sheets. Text is left out: the records' own text,
// such as the API server's URL in the testbed table, is shown as text
// (escaped, so it holds no "<"), which a browser never fetches.
func externalRefs(page string) []string {
	var found []string
	for _, m := range styleBlock.FindAllStringSubmatch(page, -1) {
		found = append(found, externalRef.FindAllString(m[1], -1)...)
	}
	return append(found, externalRef.FindAllString(textNode.ReplaceAllString(page, "><"), -1)...)
}

func TestExternalRefs(t *testing.T) {
	for _, bad := range []string{`<img src="x.png">`, `<a href="https://example.org/">x</a>`, `<style>p { background: url(x.png) }</style>`,
		`<style>@import "x.css";</style>`, `<link rel="stylesheet" href="x.css">`, `<svg><image xlink:href="x.png"/></svg>`, `<script>1</script>`} {
		if len(externalRefs("<p>ok</p>"+bad)) == 0 {
			t.Errorf("%s: not caught", bad)
		}
	}
	if got := externalRefs(`<td><code>https://192.0.2.2:6443</code></td><a href="#phases">x</a>`); len(got) != 0 {
		t.Errorf("text and in-page links caught: %q", got)
	}
}

// TestHTMLSelfContained: the report of a real run holds every part the
// issue asks for and references nothing outside itself.
func TestHTMLSelfContained(t *testing.T) {
	set, err := results.ReadFile(labBeforeAgentFile)
	if err != nil {
		t.Fatal(err)
	}
	page := renderHTML(t, set, MetaFromSet(set, "knative-runc-crun-n1-5-10.jsonl"))
	if m := externalRefs(page); len(m) > 0 {
		t.Errorf("the page references something outside itself: %q", m)
	}
	for _, want := range []string{
		"<!DOCTYPE html>", `<html lang="en">`, `<meta charset="utf-8">`, "<style>",
		// header, testbed, experiment
		"cb-20261126t075417-32155b", "knative-runc-crun-n1-5-10.jsonl", "AMD EPYC", "6.18.44-fc-v782", "hybrid",
		"v1.34.4", "containerd://1.6.20, kubelet v1.34.4", "<code>https://192.0.2.2:6443</code>", "traefik.ingress.networking.knative.dev",
		"RuntimeClass runc -&gt; handler runc", "RuntimeClass crun -&gt; handler crun",
		"The experiment as run (JSON)", "dev.local/coldbench/fn-go:v1", "requestTimeout", "1m40s",
		// statistics (the text table's cells): p99 starred at n = 10 and
		// 50, not at n = 100, and its footnote
		`id="statistics"`, "MEDIAN-95%CI", "2755.214", "[2433.033, 2989.477]", "3026.625*", "7086.818*",
		`<td class="num">11128.411</td>`, "p99 from fewer than 100 samples",
		// figures, phases, failures
		`id="fig-latency-vs-n"`, `id="fig-responded"`, `id="fig-latency-n1"`, `id="fig-p99-n10"`, `id="fig-cdf-n5"`, `id="fig-phases-n10"`,
		`id="phases"`, "<h3>N = 10</h3>", "runc (n = 100)", "crun (n = 10)",
		// pod_ready was seen in 97 of crun's 100 successful attempts at N = 10
		"<td><code>pod_ready</code></td><td class=\"num\">8485.447 (98)</td><td class=\"num\">7182.582 (97)</td>",
		"<td><code>first_byte</code></td><td class=\"num\">8536.995</td><td class=\"num\">7264.611</td>",
		"recorded in only k of the successful attempts",
		`id="failures"`, "No measured attempt failed.",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<svg "); n != 14 {
		t.Errorf("%d inline SVGs, want 14 (2 across N + 4 per N × 3)", n)
	}
	// The phase tables list the phases in time order, one table per N.
	if n := strings.Count(page, "<th scope=\"col\">PHASE</th>"); n != 3 {
		t.Errorf("%d phase tables, want 3 (one per N)", n)
	}
	phases := page[strings.Index(page, `id="phases"`):]
	phases = phases[:strings.Index(phases, "</table>")] // N = 1
	last := -1
	for _, name := range []string{"request_sent", "deployment_scaled", "pod_created", "pod_scheduled", "function_start",
		"queue_proxy_started", "first_byte", "pod_ready"} {
		i := strings.Index(phases, "<code>"+name+"</code>")
		if i < 0 || i < last {
			t.Errorf("N = 1 phase table: %s missing or out of time order", name)
		}
		last = i
	}
	if again := renderHTML(t, set, MetaFromSet(set, "knative-runc-crun-n1-5-10.jsonl")); again != page {
		t.Error("two renderings differ")
	}

	// The node backend: its own phases, no partial medians.
	set, err = results.ReadFile(nodeRecordsFile)
	if err != nil {
		t.Fatal(err)
	}
	page = renderHTML(t, set, MetaFromSet(set, "node-runc-crun.jsonl"))
	for _, want := range []string{"<code>sandbox_ready</code>", "<code>container_created</code>", "<code>address_known</code>",
		"runc (n = 8)", "runc version 1.1.5", "crun version 1.8.1"} {
		if !strings.Contains(page, want) {
			t.Errorf("node page lacks %q", want)
		}
	}
	if strings.Contains(page, "recorded in only k") || strings.Contains(page, "deployment_scaled") {
		t.Error("node page: Knative phases or partial medians")
	}
}

// TestHTMLFailuresAndEscaping: failures are listed by class with an example
// message; names from the records are escaped, never markup.
func TestHTMLFailuresAndEscaping(t *testing.T) {
	set, meta := fixture()
	for i := range set.Attempts {
		if set.Attempts[i].Runtime == "kata" && !set.Attempts[i].OK {
			set.Attempts[i].Error = `RunPodSandbox: <b>no</b> "kata" handler & more`
		}
	}
	set.Attempts = append(set.Attempts, results.Attempt{Type: results.TypeAttempt, Platform: "cri", Runtime: `<script>alert(1)</script>`,
		Scale: 1, OK: true, TTFBNS: 1e8})
	page := renderHTML(t, set, meta)
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b>no</b>") {
		t.Error("record text reached the page as markup")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the odd runtime name is missing (escaped)")
	}
	for _, want := range []string{
		"<td>timeout</td><td class=\"num\">2</td>", "<td>http_status</td><td class=\"num\">1</td>",
		"<td>sandbox</td>", "<td>unclassified</td>",
		"RunPodSandbox: &lt;b&gt;no&lt;/b&gt; &#34;kata&#34; handler &amp; more",
		"dropped a torn last record",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	wantFailed := 0
	for _, a := range set.Attempts {
		if !a.Warmup && !a.OK {
			wantFailed++
		}
	}
	if !strings.Contains(page, strconv.Itoa(wantFailed)+" measured attempt(s) failed") {
		t.Errorf("page does not say %d attempts failed", wantFailed)
	}
	if m := externalRefs(page); len(m) > 0 {
		t.Errorf("the page references something outside itself: %q", m)
	}
}

func TestWriteHTMLFileAndErrors(t *testing.T) {
	if err := WriteHTML(&bytes.Buffer{}, &results.Set{}, Meta{}, HTMLOptions{}); err == nil {
		t.Error("no attempts: want an error")
	}
	path := filepath.Join(t.TempDir(), "r.html")
	if err := WriteHTMLFile(context.Background(), path, labModel(t), Meta{}, HTMLOptions{Title: "runc vs crun"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("<title>runc vs crun</title>")) {
		t.Error("title not used")
	}
}

// TestAttemptsCSV: one row per attempt record (warm-ups included) with the
// raw values, empty latency for failures, a column per phase.
func TestAttemptsCSV(t *testing.T) {
	for _, tc := range []struct {
		file   string
		phases []string
	}{
		{labRecordsFile, []string{"request_sent", "deployment_scaled", "pod_created", "pod_scheduled", "sandbox_ready",
			"queue_proxy_started", "user_container_started", "queue_proxy_ready", "user_container_ready", "pod_ready",
			"function_start", "first_byte", "rt_sandbox_created", "rt_sandbox_started", "rt_user_container_created",
			"rt_user_container_started", "rt_queue_proxy_created", "rt_queue_proxy_started"}},
		{nodeRecordsFile, []string{"sandbox_ready", "container_created", "container_started", "address_known", "function_start", "first_byte"}},
	} {
		set, err := results.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteAttemptsCSV(&buf, set); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(set.Attempts)+1 {
			t.Fatalf("%s: %d rows, want header + %d attempts", tc.file, len(recs), len(set.Attempts))
		}
		head := recs[0]
		col := map[string]int{}
		for i, h := range head {
			col[h] = i
		}
		want := []string{"runtime", "scale", "iteration", "warmup", "ok", "error_class", "ttfb_ms", "ttfb_ns", "runtime_phases"}
		for _, p := range tc.phases {
			want = append(want, p+"_ms")
		}
		for _, w := range want {
			if _, ok := col[w]; !ok {
				t.Errorf("%s: no column %q in %v", tc.file, w, head)
			}
		}
		for i, a := range set.Attempts {
			r := recs[i+1]
			if r[col["runtime"]] != a.Runtime || r[col["ttfb_ns"]] != strconv.FormatInt(a.TTFBNS, 10) || r[col["warmup"]] != strconv.FormatBool(a.Warmup) ||
				r[col["runtime_phases"]] != a.RuntimePhases {
				t.Fatalf("%s: row %d = %v does not match attempt %+v", tc.file, i+1, r, a)
			}
			for _, p := range tc.phases {
				d, ok := a.PhaseOffset(p)
				if got := r[col[p+"_ms"]]; (ok && got != ms(float64(d))) || (!ok && got != "") {
					t.Fatalf("%s: row %d: %s_ms %q, want %s (recorded: %v)", tc.file, i+1, p, got, ms(float64(d)), ok)
				}
			}
		}
	}

	// Golden: a warm-up, a success and a failure that got half way (no
	// latency, not 0; the phases it reached; a message that needs quoting),
	// with runtime_phases notes: a success missing its rt_ phases, one
	// from before the notes (empty), a failure's partial: (quoted).
	start := time.Date(2026, 11, 26, 5, 56, 7, 265700696, time.UTC)
	phases := func(names ...string) []results.Phase {
		var ps []results.Phase
		for i, n := range names {
			ps = append(ps, results.Phase{Name: n, OffsetNS: int64(i+1) * 100_250_000})
		}
		return ps
	}
	small := &results.Set{Attempts: []results.Attempt{
		{Type: results.TypeAttempt, ExperimentID: "cb-x", Platform: "node", Runtime: "runc", Handler: "runc", Scale: 2,
			Iteration: -1, Warmup: true, Start: start, TTFBNS: 416_784_506, TotalNS: 416_911_965, OK: true, HTTPStatus: 200, Probes: 1,
			Phases:  phases(results.PhaseSandboxReady, results.PhaseContainerCreated, results.PhaseFirstByte),
			Cold:    results.Cold{SandboxID: "sb1", ContainerID: "c1", Address: "10.213.0.156:8080"},
			LoadAvg: [3]float64{6.03, 4.7, 2.8}, ReleaseSkewNS: 56_106,
			RuntimePhases: results.RuntimePhasesMissing + "no task_start c1: not seen within 2s of the reply"},
		{Type: results.TypeAttempt, ExperimentID: "cb-x", Platform: "node", Runtime: "crun", Handler: "crun", Scale: 2,
			Iteration: 0, Instance: 1, Start: start.Add(time.Second), TTFBNS: 256_692_783, TotalNS: 256_964_042, OK: true,
			HTTPStatus: 200, Probes: 3,
			Phases: phases(results.PhaseSandboxReady, results.PhaseContainerCreated, results.PhaseFunctionStart, results.PhaseFirstByte),
			Cold:   results.Cold{SandboxID: "sb2", ContainerID: "c2", Address: "10.213.0.157:8080"}},
		{Type: results.TypeAttempt, ExperimentID: "cb-x", Platform: "node", Runtime: "crun", Handler: "crun", Scale: 2,
			Iteration: 0, Instance: 0, Start: start.Add(time.Second), ErrorClass: results.ErrContainer,
			Error:  `StartContainer: rpc error: code = Unknown desc = open "/proc/9818/ns/pid", no such file`,
			Phases: phases(results.PhaseSandboxReady, results.PhaseContainerCreated),
			Cold:   results.Cold{SandboxID: "sb3", ContainerID: "c3"},
			RuntimePhases: results.RuntimePhasesPartial + "the attempt failed; containerd event stream lost: EOF; " +
				"none for rt_sandbox_created, rt_sandbox_started, rt_user_container_created, rt_user_container_started"},
	}}
	var buf bytes.Buffer
	if err := WriteAttemptsCSV(&buf, small); err != nil {
		t.Fatal(err)
	}
	golden(t, "attempts_csv", buf.Bytes())
}
