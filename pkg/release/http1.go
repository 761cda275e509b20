package release

// The HTTP/1.1 release of one concurrent step: N GETs, one per service,
// sent as close to the same instant as the machine allows.
//
// Connection set-up is NOT in the measured path. Each request gets its own
// TCP connection to the ingress, dialled before the release (untimed), and
// its bytes serialised ahead; at the release every request's goroutine,
// parked on one channel, wakes, stamps its start and writes its request on
// its open connection. The study (kperf's Go http.Client) dialled inside the
// timer. Why not here:
//
//   - The ingress is always up: connecting to it is not part of a cold
//     start (the function's pod does not exist yet when the ingress accepts).
//     It costs ≈ 0.1-0.3 ms of a 1-3 s cold start, below the resolution of
//     the comparisons (medians' CIs are tens of ms wide).
//   - Dialling inside the timer is what made "simultaneous" requests spread
//     over tens of milliseconds: 500 connects (SYN, SYN-ACK, ACK, accept) on
//     a small client cost far more than 500 writes, so the later requests
//     started long after the first (BenchmarkRelease500Dial shows it).
//
// Each connection carries exactly one request, for one service's Host, and
// is closed by coldbench once the reply is read: never pooled, never reused
// for another service, so the ingress's Host routing sees exactly what a
// fresh client would send (no "Connection: close": release.go says why). A
// connection the ingress closed while it waited (idle timeout) is found
// before the release (a non-blocking peek sees its EOF) and dialled again,
// untimed. If the ingress closes it in the instant between that check and
// the write, the request is sent again once on a new connection, and the
// record gets a "connected" phase (the offset at which the new connection
// was up). With kernel stamps (kernel.go) the attempt is timed from the
// resent request's transmit, the one the ingress read, so connected and
// user_start are negative; with user-space stamps it is timed from the
// original start, the redial included. That happens only when the
// write fails or the ingress closed cleanly (FIN) before any reply byte,
// i.e. before it read the request; a reset after it read one is an error,
// never retried into a pod the first request may have woken.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/coldbench/coldbench/pkg/kstamp"
	"github.com/coldbench/coldbench/pkg/results"
)

// dial connects r ahead of the release. A failure leaves r.conn nil: the
// request then dials after its start (timed, with a "connected" phase), and
// fails there if the ingress is really unreachable.
func (r *Request) dial() {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(r.ctx, "tcp", r.addr)
	if err != nil {
		return
	}
	r.conn = stamped(c)
}

// stamped asks the kernel to stamp c's reply and its request's transmit:
// the connection carries exactly one request, its first write.
func stamped(c net.Conn) *kstamp.Conn {
	return kstamp.New(c, kstamp.Options{TX: true})
}

// usable reports whether a pre-dialled connection is still open and quiet:
// a non-blocking peek that would block. EOF (the ingress closed it while
// idle), an error, or unsolicited bytes (e.g. a 408) make it unusable.
func usable(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true // never wait
	})
	return err == nil && ok
}

// prepareH1 dials every request's connection (untimed, bounded parallelism).
func prepareH1(reqs []*Request) {
	sem := make(chan struct{}, maxParallelDials)
	var wg sync.WaitGroup
	for _, r := range reqs {
		if r.conn != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.dial()
		}()
	}
	wg.Wait()
}

// Together sends reqs over HTTP/1.1, each on its own connection dialled
// before the release, all at once. It returns the attempts in order and the
// release skew: the spread (max − min) of the requests' start times, a
// request starting (its attempt's Start) just before its write.
func Together(reqs []*Request) ([]results.Attempt, time.Duration) {
	prepareH1(reqs)
	return releaseH1(reqs)
}

// releaseH1 sends the prepared requests at once: one goroutine each, parked
// on a channel whose close wakes them all (the release costs wake-ups, not a
// loop of sends). Just before the close, every pre-dialled connection is
// checked and one the ingress closed meanwhile is dialled again.
func releaseH1(reqs []*Request) ([]results.Attempt, time.Duration) {
	out := make([]results.Attempt, len(reqs))
	start := make(chan struct{})
	var parked, wg sync.WaitGroup
	parked.Add(len(reqs))
	wg.Add(len(reqs))
	for i, r := range reqs {
		go func() {
			defer wg.Done()
			parked.Done()
			<-start
			out[i] = r.do()
		}()
	}
	parked.Wait()
	for _, r := range reqs {
		if r.conn != nil && !usable(r.conn) {
			r.conn.Close()
			r.conn = nil
			r.dial()
		}
	}
	clk := kstamp.NewClock()
	close(start)
	wg.Wait()
	return out, stampCell(reqs, out, clk, kstamp.NewClock())
}

// do sends r on its connection and reads the reply: the request's start is
// just before its write, the first byte is when the reply's first byte is
// readable, and the whole exchange has r.timeout from the start.
func (r *Request) do() results.Attempt {
	r.t0 = time.Now()
	var a results.Attempt
	a.Start = r.t0
	a.Probes = 1
	deadline := r.t0.Add(r.timeout)

	br, err := r.send(deadline)
	if err != nil && r.conn != nil && r.retriable(err) && r.ctx.Err() == nil && time.Now().Before(deadline) {
		// The ingress closed the connection before reading the request.
		r.conn.Close()
		r.conn = nil
		br, err = r.send(deadline)
	}
	if r.conn != nil {
		defer r.conn.Close()
	}
	defer func() {
		for _, stop := range r.stops {
			stop()
		}
	}()
	var resp *http.Response
	var body []byte
	if err == nil {
		if resp, err = http.ReadResponse(br, r.parse); err == nil {
			body, err = io.ReadAll(resp.Body)
			end := time.Now()
			resp.Body.Close()
			r.recordReply(&a, resp.StatusCode, resp.Header, end)
		}
	}
	if !r.connected.IsZero() {
		a.Phases = append(a.Phases, results.Phase{Name: PhaseConnected, OffsetNS: r.connected.Sub(r.t0).Nanoseconds()})
	}
	a.OK, a.ErrorClass, a.Error = r.classify(resp != nil, a.HTTPStatus, err, body)
	if k, ok := r.conn.(*kstamp.Conn); ok {
		first, _ := k.First()
		r.takeStamps(k, uint32(k.Written()-1), first.Stamp)
	} else {
		r.takeStamps(nil, 0, 0)
	}
	return a
}

// send writes the request (dialling first when r has no connection) and
// waits for the reply's first byte, which it timestamps.
func (r *Request) send(deadline time.Time) (*bufio.Reader, error) {
	r.sent, r.first = time.Time{}, time.Time{} // a resend's are its own
	if r.conn == nil {
		d := net.Dialer{Deadline: deadline}
		c, err := d.DialContext(r.ctx, "tcp", r.addr)
		if err != nil {
			return nil, err
		}
		r.conn, r.connected = stamped(c), time.Now()
	}
	c := r.conn
	if _, err := c.Write(r.raw); err != nil {
		return nil, &sendError{err: err, wrote: false}
	}
	r.sent = time.Now()
	c.SetDeadline(deadline)
	r.stops = append(r.stops, context.AfterFunc(r.ctx, func() { c.SetDeadline(aLongTimeAgo) }))
	br := r.br
	br.Reset(c)
	if _, err := br.Peek(1); err != nil {
		return nil, &sendError{err: err, wrote: true}
	}
	r.first = time.Now()
	return br, nil
}

// sendError says whether the request had been written when it failed.
type sendError struct {
	err   error
	wrote bool
}

func (e *sendError) Error() string {
	if !e.wrote {
		return "writing the request: " + e.err.Error()
	}
	if errors.Is(e.err, io.EOF) {
		return "the ingress closed the connection without a reply"
	}
	return "waiting for the reply: " + e.err.Error()
}

func (e *sendError) Unwrap() error { return e.err }

// retriable: the request cannot have been read by the ingress, so sending it
// again cannot hit a pod the first one woke. That is a failed write, or a
// clean close (EOF) before any reply byte on a connection dialled before the
// start (the ingress's idle close raced the release). A reset, a timeout or
// a failure on a connection dialled after the start is final.
func (r *Request) retriable(err error) bool {
	var se *sendError
	if !errors.As(err, &se) || !r.connected.IsZero() {
		return false
	}
	return !se.wrote || errors.Is(se.err, io.EOF)
}
