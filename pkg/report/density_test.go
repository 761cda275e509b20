package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// A density run's records: the HTML page has the density table, with the
// capacity and the reason, and the density figures under their heading.
func TestHTMLDensity(t *testing.T) {
	set := &results.Set{Headers: []results.Header{{Type: results.TypeHeader, Schema: results.SchemaVersion, ExperimentID: "cb-d"}}}
	pss := int64(6 << 20)
	for step, alive := range []int{0, 2} {
		var stop []string
		if step == 1 {
			stop = []string{"cap of 4 instances reached (spec.density.max)"}
		}
		for i := range 2 {
			ns := int64((alive + i + 1) * int(time.Millisecond))
			set.Attempts = append(set.Attempts, results.Attempt{Type: results.TypeAttempt, ExperimentID: "cb-d", Platform: "node", Runtime: "runc",
				Scale: 2, Iteration: step, Instance: i, Start: time.Unix(int64(100+step), 0), OK: true, TTFBNS: ns, TotalNS: ns,
				Density: &results.Density{Alive: alive, Stop: stop}, Footprint: &results.Footprint{PSSAnonShmemBytes: &pss}})
		}
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, set, MetaFromSet(set, "density.jsonl"), HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{`<h3 id="density">Density</h3>`, "runc (cb-d): capacity 4 instances; stopped: cap of 4 instances reached", "<h3>Density</h3>",
		`id="fig-density-latency"`, `id="fig-density-memory"`, `id="fig-density-capacity"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
