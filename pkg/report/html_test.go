package report

import (
	"bytes"
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

const labRecordsFile = "../plot/testdata/node-runc-crun.jsonl"

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

// TestHTMLSelfContained: the report of a real run holds every part the
// issue asks for and references nothing outside itself.
func TestHTMLSelfContained(t *testing.T) {
	set, err := results.ReadFile(labRecordsFile)
	if err != nil {
		t.Fatal(err)
	}
	page := renderHTML(t, set, MetaFromSet(set, "node-runc-crun.jsonl"))
	if m := externalRef.FindAllString(page, 5); len(m) > 0 {
		t.Errorf("the page references something outside itself: %q", m)
	}
	for _, want := range []string{
		"<!DOCTYPE html>", `<html lang="en">`, `<meta charset="utf-8">`, "<style>",
		// header, testbed, experiment
		"cb-20261126t055607-6290cd", "node-runc-crun.jsonl", "AMD EPYC", "6.18.44-fc-v782", "hybrid",
		"runc version 1.1.5", "crun version 1.8.1", "containerd", "1.6.20~ds1",
		"The experiment as run (JSON)", "coldbench.local/fn-go:v1", "requestTimeout",
		// statistics (the text table's cells) and the p99 footnote
		`id="statistics"`, "MEDIAN-95%CI", "974.230", "[882.556, 1063.278]", "605.321*", "p99 from fewer than 100 samples",
		// figures, phases, failures
		`id="fig-latency-vs-n"`, `id="fig-responded"`, `id="fig-latency-n1"`, `id="fig-p99-n4"`, `id="fig-cdf-n2"`, `id="fig-phases-n4"`,
		`id="phases"`, "sandbox_ready", "first_byte",
		`id="failures"`, "No measured attempt failed.",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<svg "); n != 14 {
		t.Errorf("%d inline SVGs, want 14 (2 across N + 4 per N × 3)", n)
	}
	if again := renderHTML(t, set, MetaFromSet(set, "node-runc-crun.jsonl")); again != page {
		t.Error("two renderings differ")
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
	if m := externalRef.FindAllString(page, 5); len(m) > 0 {
		t.Errorf("the page references something outside itself: %q", m)
	}
}

func TestWriteHTMLFileAndErrors(t *testing.T) {
	if err := WriteHTML(&bytes.Buffer{}, &results.Set{}, Meta{}, HTMLOptions{}); err == nil {
		t.Error("no attempts: want an error")
	}
	path := filepath.Join(t.TempDir(), "r.html")
	if err := WriteHTMLFile(path, []string{labRecordsFile}, HTMLOptions{Title: "runc vs crun"}); err != nil {
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
	set, err := results.ReadFile(labRecordsFile)
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
		t.Fatalf("%d rows, want header + %d attempts", len(recs), len(set.Attempts))
	}
	head := recs[0]
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, want := range []string{"runtime", "scale", "iteration", "warmup", "ok", "error_class", "ttfb_ms", "ttfb_ns",
		"sandbox_ready_ms", "container_created_ms", "container_started_ms", "address_known_ms", "function_start_ms", "first_byte_ms"} {
		if _, ok := col[want]; !ok {
			t.Errorf("no column %q in %v", want, head)
		}
	}
	for i, a := range set.Attempts {
		r := recs[i+1]
		if r[col["runtime"]] != a.Runtime || r[col["ttfb_ns"]] != strconv.FormatInt(a.TTFBNS, 10) || r[col["warmup"]] != strconv.FormatBool(a.Warmup) {
			t.Fatalf("row %d = %v does not match attempt %+v", i+1, r, a)
		}
		if d, ok := a.PhaseOffset(results.PhaseFirstByte); ok && r[col["first_byte_ms"]] != ms(float64(d)) {
			t.Fatalf("row %d: first_byte_ms %q, want %s", i+1, r[col["first_byte_ms"]], ms(float64(d)))
		}
	}

	// Golden: a warm-up, a success and a failure that got half way (no
	// latency, not 0; the phases it reached; a message that needs quoting).
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
			LoadAvg: [3]float64{6.03, 4.7, 2.8}, ReleaseSkewNS: 56_106},
		{Type: results.TypeAttempt, ExperimentID: "cb-x", Platform: "node", Runtime: "crun", Handler: "crun", Scale: 2,
			Iteration: 0, Instance: 1, Start: start.Add(time.Second), TTFBNS: 256_692_783, TotalNS: 256_964_042, OK: true,
			HTTPStatus: 200, Probes: 3,
			Phases: phases(results.PhaseSandboxReady, results.PhaseContainerCreated, results.PhaseFunctionStart, results.PhaseFirstByte),
			Cold:   results.Cold{SandboxID: "sb2", ContainerID: "c2", Address: "10.213.0.157:8080"}},
		{Type: results.TypeAttempt, ExperimentID: "cb-x", Platform: "node", Runtime: "crun", Handler: "crun", Scale: 2,
			Iteration: 0, Instance: 0, Start: start.Add(time.Second), ErrorClass: results.ErrContainer,
			Error:  `StartContainer: rpc error: code = Unknown desc = open "/proc/9818/ns/pid", no such file`,
			Phases: phases(results.PhaseSandboxReady, results.PhaseContainerCreated),
			Cold:   results.Cold{SandboxID: "sb3", ContainerID: "c3"}},
	}}
	buf.Reset()
	if err := WriteAttemptsCSV(&buf, small); err != nil {
		t.Fatal(err)
	}
	golden(t, "attempts_csv", buf.Bytes())
}
