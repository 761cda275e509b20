// Package release sends one step's GETs (one per function instance, each
// with its own Host, to one HOST:PORT that routes on it: an ingress) as
// close to the same instant as the machine allows, and makes each exchange
// a results.Attempt.
//
// Two ways, one contract: Together (HTTP/1.1, one connection per request,
// http1.go) and TogetherH2 (h2c, a step's requests as streams on a few
// connections, h2c.go). Connection set-up is untimed, before the release;
// each attempt is timed from its request's start; the release skew is the
// spread of the start times (Skew); nothing the ingress may have read is
// ever sent again; and one classifier (classify) makes the end of any
// exchange a record's class and message. The package knows no platform:
// Knative uses it today, and any backend whose functions answer HTTP can.
package release

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"

	"github.com/coldbench/coldbench/pkg/kstamp"
	"github.com/coldbench/coldbench/pkg/results"
)

// PhaseConnected is present only when the request's connection had to be
// dialled after its start (pre-dial failed, or the ingress closed the
// pre-dialled connection at the last instant): the offset at which the
// connection that carried the request was up.
const PhaseConnected = results.PhaseConnected

// userAgent identifies coldbench's GETs (not one of the agents Knative's
// activator or queue-proxy treat as probes).
const userAgent = "coldbench"

// dialTimeout bounds a connect to the ingress before the release.
const dialTimeout = 10 * time.Second

// maxParallelDials bounds the connects in flight while a step is prepared.
const maxParallelDials = 64

// aLongTimeAgo makes every blocked read or write on a connection return.
var aLongTimeAgo = time.Unix(1, 0)

// Request is one GET of a step, prepared before the release: its bytes and,
// over HTTP/1.1, its own connection to the ingress, so that only the
// request is timed. A Request is released once.
type Request struct {
	ctx     context.Context
	addr    string // ingress HOST:PORT
	timeout time.Duration
	raw     []byte // the request as sent
	parse   *http.Request

	conn net.Conn      // dialled before the release; nil: dial after the start
	br   *bufio.Reader // allocated ahead: nothing is allocated between the release and the write

	t0, sent, first, connected time.Time
	// The kernel's stamps of the request's transmit and its reply's first
	// byte (kernel.go), or why one is missing.
	ktx, krx kstamp.Stamp
	kwhy     string
	// Interrupt hooks of the connections used: kept until the reply's body
	// is read, so Ctrl-C also cuts a slow body.
	stops []func() bool
}

// NewRequest prepares a GET / for host (its Host header) to addr (HOST:PORT).
// ctx is its interrupt: canceling it ends the request, before or during the
// reply, as canceled. timeout bounds the whole exchange from its start.
func NewRequest(ctx context.Context, addr, host string, timeout time.Duration) *Request {
	// No "Connection: close": the ingress would close after its reply, and
	// a FIN that arrives before the first byte is read merges into the
	// reply's segment in the receive queue, with its own later receive
	// stamp. coldbench closes the connection itself once the reply is read.
	raw := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: " + userAgent + "\r\n\r\n"
	return &Request{ctx: ctx, addr: addr, timeout: timeout, raw: []byte(raw),
		parse: &http.Request{Method: http.MethodGet, Host: host}, br: bufio.NewReaderSize(nil, 4096)}
}

// Skew is the spread (max - min) of the start times of one step's
// attempts, ignoring those that never started: how simultaneous the
// "simultaneous" cold starts were.
func Skew(starts []time.Time) time.Duration {
	var lo, hi time.Time
	for _, s := range starts {
		if s.IsZero() {
			continue
		}
		if lo.IsZero() || s.Before(lo) {
			lo = s
		}
		if s.After(hi) {
			hi = s
		}
	}
	return hi.Sub(lo)
}
