// Package probe finds the first HTTP reply of a starting function. It sends
// a new GET every interval (each on a fresh connection) until one gets a
// reply, so a connect that hangs while the function starts cannot hide the
// first success, and it timestamps the reply with httptrace.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coldbench/coldbench/pkg/kstamp"
	"github.com/coldbench/coldbench/pkg/results"
)

// ProcessStartHeader carries the function's own process start time (Unix ns).
const ProcessStartHeader = "X-Coldbench-Process-Start"

// Options for one probing sequence.
type Options struct {
	URL  string
	Host string // Host header override (Knative ingress); empty = from URL
	// Interval between GETs; each GET has its own AttemptTimeout.
	Interval       time.Duration
	AttemptTimeout time.Duration
	// MaxInFlight bounds concurrent GETs (hung connects pile up otherwise).
	MaxInFlight int
}

// Result of probing until the first reply or the context's deadline.
type Result struct {
	OK         bool
	HTTPStatus int
	FirstByte  time.Time // monotonic; zero if never reached
	// FirstByteStamp is the kernel's receive stamp of the reply's first
	// segment (pkg/kstamp; wall clock); zero when the kernel gave none,
	// and StampNote says why.
	FirstByteStamp kstamp.Stamp
	StampNote      string
	Done           time.Time // full body read
	// ProcessStart is the function's process start (wall clock) from its
	// header; zero if the header was absent or malformed.
	ProcessStart time.Time
	Probes       int
	Body         []byte
	ErrorClass   string
	Err          error
}

type reply struct {
	status       int
	firstByte    time.Time
	stamp        kstamp.Stamp
	stampNote    string
	done         time.Time
	processStart time.Time
	body         []byte
	err          error
}

// Until probes opt.URL until a reply arrives or ctx ends. A reply with a
// non-2xx status ends the sequence too (the function answered: that is the
// outcome, not something to retry into).
func Until(ctx context.Context, opt Options) Result {
	if opt.Interval <= 0 {
		opt.Interval = 2 * time.Millisecond
	}
	if opt.AttemptTimeout <= 0 {
		opt.AttemptTimeout = time.Second
	}
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 16
	}
	// No proxy from the environment, no connection reuse: every GET is a new
	// connection on a Transport of its own, as a cold client's would be,
	// closed by get once its reply is read (a shared Transport would hand a
	// finished connection to a waiting probe). Not DisableKeepAlives: its
	// "Connection: close" has the function close the connection after its
	// reply, and a FIN that arrives before coldbench reads the first byte
	// merges into the reply's segment in the receive queue, with its own
	// later receive stamp.
	var conns liveConns
	dial := (&net.Dialer{Timeout: opt.AttemptTimeout}).DialContext
	newClient := func() *http.Client {
		tr := &http.Transport{
			Proxy: nil,
			// The kernel stamps each connection's first read: its reply's
			// first byte (one request per connection).
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				k := kstamp.New(c, kstamp.Options{})
				conns.add(k)
				return k, nil
			},
		}
		return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	replies := make(chan reply, opt.MaxInFlight)
	sem := make(chan struct{}, opt.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()

	var res Result
	var lastErr error
	ticker := time.NewTicker(opt.Interval) // not wait.Poll*: probes overlap, none waits for another's reply
	defer ticker.Stop()
	send := func() {
		select {
		case sem <- struct{}{}:
		default:
			return // at the in-flight bound: skip this tick
		}
		res.Probes++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := get(ctx, newClient(), opt)
			select {
			case replies <- r:
			case <-ctx.Done():
			}
		}()
	}
	send()
	for {
		select {
		case <-ctx.Done():
			cancel()
			res.ErrorClass, res.Err = classifyEnd(ctx, lastErr)
			return res
		case <-ticker.C:
			send()
		case r := <-replies:
			if r.err != nil {
				lastErr = r.err
				continue
			}
			// The first reply read need not be the first to arrive: on a
			// busy host another probe's may have come earlier while its
			// goroutine waited for a CPU. Its stamp is taken (peeked, not
			// read) before the cancel closes its connection.
			if s, ok := conns.earliest(); ok && !r.stamp.IsZero() && s < r.stamp {
				r.stamp = s
			}
			cancel()
			res.HTTPStatus = r.status
			res.FirstByte, res.Done = r.firstByte, r.done
			res.FirstByteStamp, res.StampNote = r.stamp, r.stampNote
			res.ProcessStart = r.processStart
			res.Body = r.body
			if r.status >= 200 && r.status < 300 {
				res.OK = true
			} else {
				res.ErrorClass = results.ErrHTTPStatus
				res.Err = fmt.Errorf("function answered HTTP %d", r.status)
			}
			return res
		}
	}
}

func get(ctx context.Context, client *http.Client, opt Options) reply {
	actx, cancel := context.WithTimeout(ctx, opt.AttemptTimeout)
	defer cancel()
	var firstByte time.Time
	var conn net.Conn
	trace := &httptrace.ClientTrace{
		GotConn:              func(i httptrace.GotConnInfo) { conn = i.Conn },
		GotFirstResponseByte: func() { firstByte = time.Now() },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodGet, opt.URL, nil)
	if err != nil {
		return reply{err: err}
	}
	if opt.Host != "" {
		req.Host = opt.Host
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{err: err}
	}
	body, err := io.ReadAll(resp.Body)
	done := time.Now()
	resp.Body.Close()
	if conn != nil {
		conn.Close() // its Transport's only connection, never reused (see Until)
	}
	if err != nil {
		return reply{err: fmt.Errorf("reading reply body: %w", err)}
	}
	if firstByte.IsZero() {
		firstByte = done
	}
	r := reply{status: resp.StatusCode, firstByte: firstByte, done: done, body: body}
	r.processStart, _ = ProcessStart(resp.Header)
	r.stamp, r.stampNote = firstStamp(conn)
	return r
}

// liveConns are a probing sequence's connections, so that the first reply
// to arrive is found among them whichever goroutine read first.
type liveConns struct {
	mu    sync.Mutex
	conns []*kstamp.Conn
}

func (l *liveConns) add(k *kstamp.Conn) {
	l.mu.Lock()
	l.conns = append(l.conns, k)
	l.mu.Unlock()
}

// earliest is the earliest first-byte stamp among the connections (their
// first read's, or the data waiting in their receive queue).
func (l *liveConns) earliest() (kstamp.Stamp, bool) {
	l.mu.Lock()
	conns := slices.Clone(l.conns)
	l.mu.Unlock()
	var best kstamp.Stamp
	for _, k := range conns {
		if s, ok := k.PeekFirst(); ok && (best.IsZero() || s < best) {
			best = s
		}
	}
	return best, !best.IsZero()
}

// firstStamp is the kernel's stamp of c's first read (the reply's first
// byte), or why there is none.
func firstStamp(c net.Conn) (kstamp.Stamp, string) {
	k, ok := c.(*kstamp.Conn)
	if !ok {
		return 0, "the reply's connection was not stamped"
	}
	if err := k.Unavailable(); err != nil {
		return 0, err.Error()
	}
	if f, ok := k.First(); ok && !f.Stamp.IsZero() {
		return f.Stamp, ""
	}
	return 0, "the kernel gave no receive stamp for the reply's first byte"
}

// ProcessStart reads the function's process start (wall clock) from its
// ProcessStartHeader; false if the header is absent or malformed.
func ProcessStart(h http.Header) (time.Time, bool) {
	ns, err := strconv.ParseInt(h.Get(ProcessStartHeader), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// classifyEnd explains why probing ended without a reply: the request
// timeout (the caller's deadline) or an interrupt (the caller's cancel).
func classifyEnd(ctx context.Context, lastErr error) (string, error) {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return results.ErrCanceled, errors.New("interrupted before the first reply")
	}
	msg := "no reply before the request timeout"
	if lastErr != nil {
		msg += "; last probe: " + lastErr.Error()
	}
	return results.ErrTimeout, errors.New(msg)
}
