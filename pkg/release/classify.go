package release

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/coldbench/coldbench/pkg/probe"
	"github.com/coldbench/coldbench/pkg/results"
)

// stage words a failure by when it happened: before any reply, or while
// the reply's body was read.
type stage struct{ canceled, timeout, connection string }

var (
	beforeReply = stage{"interrupted before the reply: ", "no reply within the client timeout", ""}
	inReply     = stage{"interrupted while reading the reply: ", "reply not complete within the client timeout", "reading the reply: "}
)

// classify is the one mapping, for HTTP/1.1 and h2c alike, from how r's
// exchange ended to its record's outcome. replied says whether the final
// reply's header came (its status, its body so far); err is why the
// exchange failed: before any reply (dial, write, first byte, header, a
// refused stream) or, replied, while reading the body. Without err the
// status decides. An interrupt (r's ctx done) wins over a timeout, and a
// timeout over the transport's own error: a connection cut by Ctrl-C or by
// the deadline says so.
func (r *Request) classify(replied bool, status int, err error, body []byte) (ok bool, class, msg string) {
	if err == nil {
		if status < 200 || status > 299 {
			return false, results.ErrHTTPStatus, fmt.Sprintf("HTTP %d: %.200s", status, body)
		}
		return true, "", ""
	}
	st := beforeReply
	if replied {
		st = inReply
	}
	var ne net.Error
	switch {
	case r.ctx.Err() != nil:
		return false, results.ErrCanceled, st.canceled + err.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return false, results.ErrTimeout, fmt.Sprintf("%s (%v): %v", st.timeout, r.timeout, err)
	default:
		return false, results.ErrConnection, st.connection + err.Error()
	}
}

// recordReply fills a's timings from a reply whose first byte r saw (r.t0,
// r.sent and r.first set), with the reply's status and header, and end,
// when its body was complete or cut.
func (r *Request) recordReply(a *results.Attempt, status int, header http.Header, end time.Time) {
	a.HTTPStatus = status
	// r.sent is stamped when Write returns: an upper bound of when the
	// request went out. On a loaded host the writer can lose its CPU
	// between the kernel's delivery and that stamp while the reader stamps
	// the reply (CI: a 250-stream h2c write stamped at 6.2 ms, after its
	// first streams' replies). A request went out before its reply came, so
	// the stamp is capped at the first byte. With kernel stamps (kernel.go)
	// it becomes the transmit stamp, the start itself.
	sent := r.sent
	if !r.first.IsZero() && r.first.Before(sent) {
		sent = r.first
	}
	a.Phases = append(a.Phases, results.Phase{Name: results.PhaseRequestSent, OffsetNS: sent.Sub(r.t0).Nanoseconds()})
	a.TTFBNS = r.first.Sub(r.t0).Nanoseconds()
	a.TotalNS = end.Sub(r.t0).Nanoseconds()
	a.Phases = append(a.Phases, results.Phase{Name: results.PhaseFirstByte, OffsetNS: a.TTFBNS})
	if ps, ok := probe.ProcessStart(header); ok {
		a.Phases = append(a.Phases, results.Phase{Name: results.PhaseFunctionStart, OffsetNS: ps.Sub(r.t0.Round(0)).Nanoseconds()})
	}
}
