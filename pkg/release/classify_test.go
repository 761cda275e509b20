package release

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// The one classifier: the class and the wording of each way an exchange
// ends, before any reply or while reading it, whichever release saw it.
func TestClassify(t *testing.T) {
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	reset := errors.New("connection reset by peer")
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		replied bool
		status  int
		err     error
		ok      bool
		class   string
		msg     string
	}{
		{"connection before the reply", live, false, 0, reset, false, results.ErrConnection, "connection reset by peer"},
		{"timeout before the reply", live, false, 0, os.ErrDeadlineExceeded, false, results.ErrTimeout, "no reply within the client timeout (2s): i/o timeout"},
		{"interrupt before the reply", canceled, false, 0, os.ErrDeadlineExceeded, false, results.ErrCanceled, "interrupted before the reply: i/o timeout"},
		{"connection in the body", live, true, 200, reset, false, results.ErrConnection, "reading the reply: connection reset by peer"},
		{"timeout in the body", live, true, 200, os.ErrDeadlineExceeded, false, results.ErrTimeout, "reply not complete within the client timeout (2s): i/o timeout"},
		{"interrupt in the body", canceled, true, 200, context.Canceled, false, results.ErrCanceled, "interrupted while reading the reply: context canceled"},
		{"status", live, true, 503, nil, false, results.ErrHTTPStatus, "HTTP 503: " + long[:200]},
		{"ok", canceled, true, 204, nil, true, "", ""},
	} {
		r := NewRequest(tc.ctx, "127.0.0.1:1", "fn", 2*time.Second)
		ok, class, msg := r.classify(tc.replied, tc.status, tc.err, []byte(long))
		if ok != tc.ok || class != tc.class || msg != tc.msg {
			t.Errorf("%s: %v %q %q, want %v %q %q", tc.name, ok, class, msg, tc.ok, tc.class, tc.msg)
		}
	}
}
