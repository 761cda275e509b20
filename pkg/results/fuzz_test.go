package results

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzRead: no byte stream may panic the reader; a stream it accepts keeps
// every attempt it reports, and appending a torn fragment never turns an
// accepted stream into an error.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"type":"header","schema":"coldbench.dev/records/v1","experiment_id":"x"}` + "\n" + `{"type":"attempt","runtime":"runc","scale":1,"ttfb_ns":5,"ok":true}` + "\n"))
	f.Add([]byte(`{"type":"attempt","phases":[{"name":"a","offset_ns":-1}]}` + "\n" + `{"type":"att`))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		if !bytes.HasSuffix(data, []byte("\n")) && len(data) > 0 {
			return // already ends in a fragment
		}
		torn := append(append([]byte(nil), data...), []byte(`{"type":"attempt","runt`)...)
		s2, err := Read(bytes.NewReader(torn))
		if err != nil {
			t.Fatalf("a torn tail made an accepted stream fail: %v", err)
		}
		if len(s2.Attempts) != len(s.Attempts) || len(s2.Warnings) != len(s.Warnings)+1 {
			t.Fatalf("torn tail changed the records: %d -> %d attempts, %d -> %d warnings", len(s.Attempts), len(s2.Attempts), len(s.Warnings), len(s2.Warnings))
		}
	})
}

// FuzzValidate: whatever the bytes, what the reader accepts (strictly or
// leniently) is consistent: every attempt follows a header of its
// experiment, no (experiment, session) header or attempt key repeats, no
// time is negative, ok has a ttfb, 0 ≤ instance < scale. Lenient reading
// accounts for every non-blank line (accepted + skipped + a torn last
// line), and agrees with strict reading when that succeeds.
func FuzzValidate(f *testing.F) {
	h := `{"type":"header","schema":"coldbench.dev/records/v1","experiment_id":"x"}` + "\n"
	a := `{"type":"attempt","experiment_id":"x","runtime":"runc","scale":2,"instance":1,"iteration":0,"ttfb_ns":5,"ok":true,"phases":[{"name":"a","offset_ns":3}]}` + "\n"
	f.Add([]byte(h + a))
	f.Add([]byte(h + a + a))
	f.Add([]byte(a + h))
	f.Add([]byte(h + h + a))
	f.Add([]byte(h + `{"type":"attempt","experiment_id":"x","scale":0,"ttfb_ns":-5,"ok":true}` + "\n" + a))
	f.Add([]byte(h + `{"type":"attempt","experiment_id":"x","scale":1,"warmup":true,"iteration":-1,"ttfb_ns":1,"ok":true,"phases":[{"name":"function_start","offset_ns":-4}]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines++
			}
		}
		strict, serr := Read(bytes.NewReader(data))
		if serr == nil {
			checkConsistent(t, strict)
		}
		var lenient Set
		r := NewReader(ReadOptions{Lenient: true})
		if err := r.Read(context.Background(), bytes.NewReader(data), "", lenient.add); err != nil {
			t.Fatalf("lenient read failed: %v", err)
		}
		checkConsistent(t, &lenient)
		torn := 0
		for _, w := range r.Warnings() {
			if strings.Contains(w, "torn last record") {
				torn++
			}
		}
		if got := len(lenient.Headers) + len(lenient.Attempts) + r.Skipped() + torn; got != lines {
			t.Fatalf("%d non-blank lines, but %d headers + %d attempts + %d skipped + %d torn", lines, len(lenient.Headers), len(lenient.Attempts), r.Skipped(), torn)
		}
		if serr == nil && (r.Skipped() != 0 || len(lenient.Attempts) != len(strict.Attempts) || len(lenient.Headers) != len(strict.Headers)) {
			t.Fatalf("strict accepted %d/%d records, lenient kept %d/%d and skipped %d", len(strict.Headers), len(strict.Attempts), len(lenient.Headers), len(lenient.Attempts), r.Skipped())
		}
	})
}

// checkConsistent re-checks an accepted set from scratch, by record order
// (Set keeps headers and attempts apart, so "header before attempt" is
// checked as "some header of the experiment exists").
func checkConsistent(t *testing.T, s *Set) {
	t.Helper()
	type hk struct {
		exp     string
		session int
	}
	headers := map[hk]bool{}
	exps := map[string]bool{}
	for _, h := range s.Headers {
		k := hk{h.ExperimentID, h.Session}
		if headers[k] {
			t.Fatalf("accepted two headers for %+v", k)
		}
		headers[k], exps[h.ExperimentID] = true, true
	}
	type ak struct {
		exp, runtime               string
		scale, iteration, instance int
		warmup                     bool
	}
	seen := map[ak]bool{}
	for _, a := range s.Attempts {
		k := ak{a.ExperimentID, a.Runtime, a.Scale, a.Iteration, a.Instance, a.Warmup}
		switch {
		case seen[k]:
			t.Fatalf("accepted a duplicate attempt %+v", k)
		case !exps[a.ExperimentID]:
			t.Fatalf("accepted an attempt of %q without its header", a.ExperimentID)
		case a.TTFBNS < 0 || a.TotalNS < 0 || a.ReleaseSkewNS < 0 || a.ReleaseSkewUserNS < 0:
			t.Fatalf("accepted a negative time: %+v", a)
		case a.OK && a.TTFBNS == 0:
			t.Fatalf("accepted ok without a ttfb: %+v", a)
		case a.Scale < 1 || a.Instance < 0 || a.Instance >= a.Scale:
			t.Fatalf("accepted scale %d instance %d", a.Scale, a.Instance)
		case !a.Warmup && a.Iteration < 0:
			t.Fatalf("accepted measured iteration %d", a.Iteration)
		}
		for _, p := range a.Phases {
			if p.OffsetNS < 0 && !MayPrecedeStart(p.Name) {
				t.Fatalf("accepted a negative phase offset: %+v", p)
			}
		}
		seen[k] = true
	}
}
