package cli

import (
	"bytes"
	"strings"
	"testing"
)

// While the bar runs, log lines go through it (mpb prints them above the
// bar); before and after, to stderr. The logger itself never changes.
func TestLogLinesGoThroughTheBar(t *testing.T) {
	lg := newLogs()
	var stderr, term bytes.Buffer
	lg.configure(&stderr, false)
	lg.log.Info("before")
	pr := newBar(3, lg, &term)
	lg.log.Info("during")
	lg.log.Debug("hidden") // Info without -v
	pr.close()
	lg.log.Info("after")
	for _, c := range []struct {
		out      *bytes.Buffer
		has, not []string
	}{
		{&stderr, []string{"msg=before", "msg=after"}, []string{"during", "hidden"}},
		{&term, []string{"msg=during", "attempts"}, []string{"before", "after", "hidden"}},
	} {
		for _, s := range c.has {
			if !strings.Contains(c.out.String(), s) {
				t.Errorf("lacks %q:\n%s", s, c.out)
			}
		}
		for _, s := range c.not {
			if strings.Contains(c.out.String(), s) {
				t.Errorf("has %q:\n%s", s, c.out)
			}
		}
	}
}
