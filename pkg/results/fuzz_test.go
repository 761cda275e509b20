package results

import (
	"bytes"
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
