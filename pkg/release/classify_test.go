package release

import (
	"context"
	"errors"
	"net/http"
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

// request_sent never follows the first byte: a writer stamped late (it lost
// its CPU after the kernel delivered the request) is capped at the reply.
func TestRecordReplySentNotAfterTheFirstByte(t *testing.T) {
	t0 := time.Now()
	for _, c := range []struct {
		name       string
		sent, want time.Duration
	}{{"sent first", 2 * time.Millisecond, 2 * time.Millisecond}, {"stamped after the reply", 9 * time.Millisecond, 5 * time.Millisecond}} {
		r := &Request{t0: t0, sent: t0.Add(c.sent), first: t0.Add(5 * time.Millisecond)}
		var a results.Attempt
		r.recordReply(&a, 200, http.Header{}, t0.Add(6*time.Millisecond))
		got, ok := a.PhaseOffset(results.PhaseRequestSent)
		if !ok || got != c.want || a.TTFBNS != int64(5*time.Millisecond) {
			t.Errorf("%s: request_sent %v %v, ttfb %d: want %v", c.name, got, ok, a.TTFBNS, c.want)
		}
	}
}
