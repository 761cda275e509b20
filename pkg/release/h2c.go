package release

// An alternative release over HTTP/2 cleartext with prior knowledge (h2c):
// the N GETs of a step as N streams on a few connections to the ingress.
//
// Why HTTP/2: over HTTP/1.1 (http1.go) each request costs one write on
// its own socket, and a loopback write costs ≈ 50 µs of kernel time on the
// development VM, so 500 requests cannot start closer together than
// ≈ 500 × 50 µs / cores (docs/performance.md, section 1). Here every
// request of a connection is one HEADERS frame in a buffer written with a
// single Write: the requests of a connection are simultaneous by
// construction, and 500 requests cost ⌈500 / 250⌉ = 2 writes (Go's and
// Traefik's servers allow 250 concurrent streams per connection).
//
// What it changes vs the study (kperf's HTTP/1.1 client, one connection
// per request): the requests are multiplexed on a few connections, so the
// ingress reads and demultiplexes them (HPACK, one read loop per
// connection) inside the measured time, then proxies each to the backend as
// usual. The serialisation the HTTP/1.1 release pays in the client's
// kernel moves into the ingress; the records are of the same kind, not
// bit-for-bit comparable with the study's.
//
// Untimed before the release: dial, preface + SETTINGS + a large
// connection WINDOW_UPDATE, read the ingress's SETTINGS (its
// MAX_CONCURRENT_STREAMS decides how many connections), ACK them, and
// HPACK-encode every request's HEADERS into one buffer per connection. A
// connection the ingress closed (or sent GOAWAY on) while it waited is
// dialled again, untimed, just before the release. Nothing is ever sent
// twice after the release: a stream the ingress refused (GOAWAY, RST) is
// an error record, never retried into a pod the first request may have
// woken.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/sys/unix"

	"github.com/coldbench/coldbench/pkg/kstamp"
	"github.com/coldbench/coldbench/pkg/results"
)

// Flow-control windows advertised to the ingress: large, so that replies
// are never paced by the client (500 replies share a connection's window).
// Variables only so that a test can shrink them to exercise the
// WINDOW_UPDATEs.
var (
	h2StreamWindow uint32 = 1 << 20
	h2ConnWindow   uint32 = 1 << 30
)

// h2ControlWriteTimeout bounds a control frame's write (RST_STREAM,
// WINDOW_UPDATE, PING and SETTINGS ACKs) to an ingress that stopped reading.
const h2ControlWriteTimeout = 5 * time.Second

// TogetherH2 sends reqs as HTTP/2 streams (h2c, prior knowledge) on as
// few connections to their ingress as its MAX_CONCURRENT_STREAMS allows,
// each connection's requests in one write, the connections back to back.
// Same contract as Together: the attempts in order and the release skew;
// a request starts (its attempt's Start) just before its connection's write.
func TogetherH2(reqs []*Request) ([]results.Attempt, time.Duration) {
	return releaseH2(reqs, prepareH2(reqs))
}

// h2conn is one prepared connection and the streams it carries.
type h2conn struct {
	addr string
	idx  []int // indices in reqs of the requests it carries
	conn net.Conn
	kc   *kstamp.Conn   // conn, stamped by the kernel (kernel.go)
	in   *countedReader // what the framer read of conn: a frame's first byte's offset
	fr   *http2.Framer
	err  error // dial or handshake failure: nothing is sent, every stream is an error record

	// From the ingress's SETTINGS.
	maxStreams, tableSize, frameSize uint32
	// Ours, copied at the dial (a test may change the package's values).
	streamWindow, connWindow uint32

	streams []*h2stream // streams[k], k < nSent, is stream 2k+1
	nSent   int
	buf     []byte        // every sent stream's HEADERS: the release writes it at once
	timeout time.Duration // the shortest of its requests' timeouts: bounds the release's write

	// Set by the releasing goroutine; read only once every stream ended.
	t0, sent   time.Time
	txKey      uint32 // the transmit stamps' key of the release's write
	werr       error
	readerDone chan struct{} // nil when no reader was started
	allDone    chan struct{} // closed when the last stream ends

	wmu sync.Mutex // one writer at a time on conn and fr

	mu          sync.Mutex // guards what follows, and every stream's state
	released    bool
	readErr     error // why the connection ended; the first cause wins
	goaway      error // non-nil once the ingress sent GOAWAY
	goawayLast  uint32
	open        int
	connUnacked uint32
}

// h2stream is one request and what came back on its stream.
type h2stream struct {
	r      *Request
	idx    int
	id     uint32
	preErr error // not sent: why

	// Under the connection's mu until the stream ended.
	ended      bool
	err        error // nil: the reply ended cleanly (END_STREAM)
	first, end time.Time
	firstOff   int64 // the connection's byte offset of the HEADERS frame stamped first
	status     int   // the final (non-1xx) status, 0 until it arrives
	header     http.Header
	body       []byte
	unacked    uint32 // DATA received since the last stream WINDOW_UPDATE
}

// prepareH2 dials and handshakes the connections for reqs (untimed): one
// first, to learn how many streams the ingress takes on a connection, then
// the others in parallel. Requests keep their order: the first
// MAX_CONCURRENT_STREAMS go on the first connection, and so on.
func prepareH2(reqs []*Request) []*h2conn {
	var order []string
	groups := map[string][]int{}
	for i, r := range reqs {
		if _, ok := groups[r.addr]; !ok {
			order = append(order, r.addr)
		}
		groups[r.addr] = append(groups[r.addr], i)
	}
	var conns []*h2conn
	for _, addr := range order {
		idx := groups[addr]
		ctx := reqs[idx[0]].ctx
		first := dialH2(ctx, addr)
		per := len(idx)
		if first.err == nil && first.maxStreams > 0 && int64(first.maxStreams) < int64(per) {
			per = int(first.maxStreams)
		}
		group := []*h2conn{first}
		if first.err == nil {
			more := make([]*h2conn, (len(idx)+per-1)/per-1)
			sem := make(chan struct{}, maxParallelDials)
			var wg sync.WaitGroup
			for k := range more {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					more[k] = dialH2(ctx, addr)
				}()
			}
			wg.Wait()
			group = append(group, more...)
		}
		for k, c := range group {
			lo := k * per
			c.assign(reqs, idx[lo:min(lo+per, len(idx))])
		}
		conns = append(conns, group...)
	}
	return conns
}

// dialH2 connects to addr and does the client's side of the h2c handshake.
// A failure is kept in c.err: the requests assigned to c become error
// records at the release. It is worded with %v, not wrapped: a set-up that
// timed out (untimed, before the release) is a connection error for
// classify, never the request's client timeout.
func dialH2(ctx context.Context, addr string) *h2conn {
	c := &h2conn{addr: addr, allDone: make(chan struct{}),
		maxStreams: math.MaxUint32, tableSize: 4096, frameSize: 16384,
		streamWindow: h2StreamWindow, connWindow: h2ConnWindow}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		c.err = fmt.Errorf("connecting to the ingress: %v", err)
		return c
	}
	// Every read is stamped (a read can hold frames of many streams);
	// transmit stamps start after the handshake, for the release's write.
	c.kc = kstamp.New(conn, kstamp.Options{LogReads: true})
	c.conn = c.kc
	if err := c.handshake(ctx); err != nil {
		conn.Close()
		c.err = fmt.Errorf("HTTP/2 (h2c, prior knowledge) handshake with the ingress: %v", err)
		return c
	}
	c.kc.StartTX()
	return c
}

// CheckH2C does the client's side of an h2c handshake with the ingress at
// addr: nil when it speaks HTTP/2 cleartext with prior knowledge, which
// TogetherH2 needs.
func CheckH2C(ctx context.Context, addr string) error {
	c := dialH2(ctx, addr)
	if c.err != nil {
		return c.err
	}
	return c.conn.Close()
}

func (c *h2conn) handshake(ctx context.Context) error {
	c.conn.SetDeadline(time.Now().Add(dialTimeout))
	defer c.conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(aLongTimeAgo) })
	defer stop()

	var hello bytes.Buffer
	hello.WriteString(http2.ClientPreface)
	w := http2.NewFramer(&hello, nil)
	w.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: c.streamWindow})
	if c.connWindow > 65535 { // the connection's initial window
		w.WriteWindowUpdate(0, c.connWindow-65535)
	}
	if _, err := c.conn.Write(hello.Bytes()); err != nil {
		return err
	}

	c.in = &countedReader{r: bufio.NewReaderSize(c.conn, 64<<10)}
	c.fr = http2.NewFramer(c.conn, c.in)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	f, err := c.fr.ReadFrame()
	if err != nil {
		return err
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return fmt.Errorf("its first frame is %v, not SETTINGS", f.Header().Type)
	}
	sf.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = s.Val
		case http2.SettingHeaderTableSize:
			c.tableSize = s.Val
		case http2.SettingMaxFrameSize:
			c.frameSize = s.Val
		}
		return nil
	})
	return c.fr.WriteSettingsAck()
}

// assign gives c the requests reqs[idx...], encodes their HEADERS and
// starts c's reader. Requests beyond c's own stream limit (the ingress
// advertised fewer than on the group's first connection) are not sent.
func (c *h2conn) assign(reqs []*Request, idx []int) {
	c.idx = idx
	limit := len(idx)
	if c.err == nil && int64(c.maxStreams) < int64(limit) {
		limit = int(c.maxStreams)
	}
	for k, i := range idx {
		s := &h2stream{r: reqs[i], idx: i}
		switch {
		case c.err != nil:
			s.preErr = c.err
		case k >= limit:
			s.preErr = fmt.Errorf("not sent: the ingress allowed only %d concurrent streams on this connection", c.maxStreams)
		default:
			s.id = uint32(2*k + 1)
			if c.nSent == 0 || s.r.timeout < c.timeout {
				c.timeout = s.r.timeout
			}
			c.nSent++
		}
		c.streams = append(c.streams, s)
	}
	c.open = len(c.streams)
	if c.err != nil {
		return
	}
	if err := c.encode(); err != nil {
		c.err = fmt.Errorf("encoding the requests: %v", err)
		c.conn.Close()
		for _, s := range c.streams {
			s.preErr = c.err
		}
		return
	}
	c.readerDone = make(chan struct{})
	go c.read()
}

// encode writes every sent stream's HEADERS (and CONTINUATIONs, for a
// header block larger than the ingress's frame size) into c.buf, HPACK
// state carried from one to the next in stream order, as the ingress will
// decode them.
func (c *h2conn) encode() error {
	var hb, out bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	if c.tableSize < 4096 {
		enc.SetMaxDynamicTableSizeLimit(c.tableSize)
	}
	w := http2.NewFramer(&out, nil)
	maxFrag := int(c.frameSize)
	for _, s := range c.streams[:c.nSent] {
		hb.Reset()
		for _, f := range [...]hpack.HeaderField{
			{Name: ":method", Value: http.MethodGet},
			{Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: s.r.parse.Host},
			{Name: ":path", Value: "/"},
			{Name: "user-agent", Value: userAgent},
		} {
			if err := enc.WriteField(f); err != nil {
				return err
			}
		}
		frag := hb.Bytes()
		n := min(len(frag), maxFrag)
		if err := w.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: frag[:n],
			EndStream: true, EndHeaders: n == len(frag)}); err != nil {
			return err
		}
		for rest := frag[n:]; len(rest) > 0; rest = rest[n:] {
			n = min(len(rest), maxFrag)
			if err := w.WriteContinuation(s.id, n == len(rest), rest[:n]); err != nil {
				return err
			}
		}
	}
	c.buf = out.Bytes()
	return nil
}

// releaseH2 sends the prepared connections' buffers, one Write each, back
// to back from this goroutine, and waits until every stream has ended.
// Every request of a connection starts at the instant just before that
// connection's write.
func releaseH2(reqs []*Request, conns []*h2conn) ([]results.Attempt, time.Duration) {
	// A connection the ingress closed, or sent GOAWAY on, while it waited
	// is dialled again (untimed): nothing was sent on it.
	for i, c := range conns {
		if c.err != nil {
			continue
		}
		c.mu.Lock()
		stale := c.readErr != nil || c.goaway != nil
		c.mu.Unlock()
		if stale {
			c.conn.Close()
			<-c.readerDone
			fresh := dialH2(reqs[c.idx[0]].ctx, c.addr)
			fresh.assign(reqs, c.idx)
			conns[i] = fresh
		}
	}

	clk := kstamp.NewClock()
	writeAll(conns)
	if h2TestHookAfterWrite != nil {
		h2TestHookAfterWrite(conns)
	}

	// Streams that cannot get a reply end now; the others get their
	// timeout (from their start) and their interrupt. The connection's
	// reader may have run ahead of this loop and seen the ingress's whole
	// answer already (GOAWAY, then the close): a stream the GOAWAY says was
	// not processed is that, whatever ended the connection afterwards.
	var stops []func() bool
	for _, c := range conns {
		c.mu.Lock()
		c.released = true
		cause, goaway, last := c.readErr, c.goaway, c.goawayLast
		c.mu.Unlock()
		if cause != nil { // the connection ended first: a failed write only follows from it
			cause = closedError(cause)
		} else if c.werr != nil {
			cause = fmt.Errorf("writing the requests: %w", c.werr) // a deadline here is the timeout
		}
		for _, s := range c.streams {
			switch {
			case s.preErr != nil:
				c.endStream(s, s.preErr, c.t0, false)
			case goaway != nil && s.id > last:
				c.endStream(s, goawayError(goaway, s.id), c.sent, false)
			case cause != nil:
				c.endStream(s, cause, c.sent, false)
			default:
				timer := time.AfterFunc(time.Until(c.t0.Add(s.r.timeout)), func() {
					c.endStream(s, os.ErrDeadlineExceeded, time.Now(), true)
				})
				stops = append(stops, timer.Stop, context.AfterFunc(s.r.ctx, func() {
					c.endStream(s, s.r.ctx.Err(), time.Now(), true)
				}))
			}
		}
	}

	for _, c := range conns {
		<-c.allDone
		if c.readerDone != nil {
			<-c.readerDone
		}
	}
	for _, stop := range stops {
		stop()
	}

	out := make([]results.Attempt, len(reqs))
	for _, c := range conns {
		for _, s := range c.streams {
			out[s.idx] = c.attempt(s)
		}
	}
	return out, stampCell(reqs, out, clk, kstamp.NewClock())
}

// countedReader counts the bytes read through it.
type countedReader struct {
	r io.Reader
	n int64
}

func (c *countedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// h2TestHookAfterWrite, when set (by tests only), runs between the writes
// and the release's bookkeeping: a test makes the connections' readers run
// ahead there, an ordering a loaded machine produces now and then.
var h2TestHookAfterWrite func(conns []*h2conn)

// writeAll sends every connection's buffer, each connection's requests
// starting at the instant before its write. With no more connections than
// CPUs (500 requests at 250 streams: 2), each connection is written by its
// own goroutine on its own CPU, all spinning until the first releases them
// with one atomic store, so the writes start together; one after the
// other, the second would wait for the first, a loopback write of 250
// requests that also runs the ingress's receive path. While they spin and
// write, their threads run SCHED_FIFO when allowed (root, CAP_SYS_NICE):
// otherwise the ingress they wake, or any other thread, can take one of
// their CPUs for a time slice of a few ms, which is the skew's tail on a
// small machine. Beyond that many connections, spinning goroutines would
// keep each other off the CPUs: the writes go one after the other.
func writeAll(conns []*h2conn) {
	var live []*h2conn
	for _, c := range conns {
		if c.err != nil || len(c.buf) == 0 {
			c.t0 = time.Now()
			c.sent = c.t0
			continue
		}
		live = append(live, c)
	}
	if len(live) <= 1 || len(live) > min(runtime.GOMAXPROCS(0), runtime.NumCPU()) {
		for _, c := range live {
			c.writeBuf()
		}
		return
	}
	var ready atomic.Int32
	var released atomic.Bool
	var wg sync.WaitGroup
	for k, c := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k > 0 {
				restore := realtime()
				defer restore()
				ready.Add(1)
				for !released.Load() {
				}
			} else {
				// The releaser yields its CPU until the others spin (they
				// need Go's other Ps), then takes its own.
				for ready.Load() < int32(len(live)-1) {
					runtime.Gosched()
				}
				restore := realtime()
				defer restore()
				released.Store(true)
			}
			c.writeBuf()
		}()
	}
	wg.Wait()
}

// realtime runs the calling goroutine's thread SCHED_FIFO (lowest real-time
// priority) until the returned function is called; nothing happens without
// the right to. A thread that could not be switched back is not returned
// to Go's pool: the goroutine keeps it locked, and Go ends the thread when
// the goroutine exits.
func realtime() (restore func()) {
	runtime.LockOSThread()
	rt := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}
	if unix.SchedSetAttr(0, &rt, 0) != nil {
		runtime.UnlockOSThread()
		return func() {}
	}
	return func() {
		normal := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
		if unix.SchedSetAttr(0, &normal, 0) == nil {
			runtime.UnlockOSThread()
		}
	}
}

// writeBuf stamps c's start and writes its requests in one Write.
func (c *h2conn) writeBuf() {
	c.t0 = time.Now()
	c.wmu.Lock()
	c.conn.SetWriteDeadline(c.t0.Add(c.timeout))
	_, c.werr = c.conn.Write(c.buf)
	c.sent = time.Now()
	c.txKey = uint32(c.kc.Written() - 1)
	c.kc.StopTX() // the control frames that follow need no stamps
	c.wmu.Unlock()
}

// attempt builds s's record once every stream of c has ended: the same
// fields as (*Request).do's over HTTP/1.1, and the same classifier.
func (c *h2conn) attempt(s *h2stream) results.Attempt {
	r := s.r
	r.t0, r.sent, r.first = c.t0, c.sent, s.first
	if c.werr != nil || s.preErr != nil {
		r.sent = time.Time{} // not written
	}
	var rx kstamp.Stamp
	if !s.first.IsZero() && c.kc != nil {
		if rd, ok := kstamp.StampAt(c.kc.Reads(), s.firstOff); ok {
			rx = rd.Stamp
		}
	}
	r.takeStamps(c.kc, c.txKey, rx)
	a := results.Attempt{Start: r.t0, Probes: 1}
	if s.status != 0 {
		// The body was complete (or cut) when the connection's reader saw
		// its end.
		r.recordReply(&a, s.status, s.header, s.end)
	}
	a.OK, a.ErrorClass, a.Error = r.classify(s.status != 0, s.status, s.err, s.body)
	return a
}

// closedError words the end of a connection for the streams it cut. It
// does not wrap the cause: a connection's failure is never the request's
// timeout, whatever deadline the socket hit.
func closedError(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the ingress closed the connection")
	}
	return fmt.Errorf("the connection to the ingress failed: %v", err)
}

func goawayError(goaway error, id uint32) error {
	return fmt.Errorf("%v: stream %d was not processed (not retried)", goaway, id)
}

// stream returns the sent stream with that id, or nil.
func (c *h2conn) stream(id uint32) *h2stream {
	if id%2 == 1 && int64((id-1)/2) < int64(c.nSent) {
		return c.streams[(id-1)/2]
	}
	return nil
}

// endStream ends s once (later calls do nothing): err nil for a complete
// reply. rst resets the stream at the ingress (our timeout or interrupt).
// The last stream to end closes the connection.
func (c *h2conn) endStream(s *h2stream, err error, now time.Time, rst bool) {
	c.mu.Lock()
	if s.ended {
		c.mu.Unlock()
		return
	}
	s.ended, s.err, s.end = true, err, now
	c.open--
	last := c.open == 0
	c.mu.Unlock()
	if rst {
		c.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(s.id, http2.ErrCodeCancel) })
	}
	if last {
		if c.conn != nil {
			c.conn.Close()
		}
		close(c.allDone)
	}
}

// write sends control frames; a failed write ends the connection.
func (c *h2conn) write(frames func(*http2.Framer) error) {
	c.wmu.Lock()
	c.conn.SetWriteDeadline(time.Now().Add(h2ControlWriteTimeout))
	err := frames(c.fr)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("writing to the ingress: %v", err), time.Now())
	}
}

// fail ends the connection: every released stream still open ends with
// the (first) cause. Before the release, the cause is only kept: the
// release dials the connection again.
func (c *h2conn) fail(err error, now time.Time) {
	c.mu.Lock()
	if c.readErr == nil {
		c.readErr = err
	}
	cause, released := c.readErr, c.released
	c.mu.Unlock()
	c.conn.Close()
	if released {
		for _, s := range c.streams[:c.nSent] {
			c.endStream(s, closedError(cause), now, false)
		}
	}
}

// read is the connection's reader: it demultiplexes the ingress's frames
// onto the streams, stamping a stream's first byte when its response
// HEADERS arrive, and answers the connection-level frames.
func (c *h2conn) read() {
	defer close(c.readerDone)
	for {
		off := c.in.n
		f, err := c.fr.ReadFrame()
		now := time.Now()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) { // one malformed reply; the connection is fine
				if s := c.stream(se.StreamID); s != nil {
					c.endStream(s, fmt.Errorf("malformed reply: %v", se), now, true)
				}
				continue
			}
			if d := c.fr.ErrorDetail(); d != nil {
				err = fmt.Errorf("%v (%v)", err, d)
			}
			c.fail(err, now)
			return
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			c.onHeaders(f, now, off)
		case *http2.DataFrame:
			c.onData(f, now)
		case *http2.RSTStreamFrame:
			if s := c.stream(f.StreamID); s != nil {
				c.endStream(s, fmt.Errorf("the ingress reset the stream (%v)", f.ErrCode), now, false)
			}
		case *http2.GoAwayFrame:
			// Streams above LastStreamID were not processed: they end
			// now. The others may still complete.
			goaway := fmt.Errorf("the ingress sent GOAWAY (%v, last stream %d)", f.ErrCode, f.LastStreamID)
			if d := f.DebugData(); len(d) > 0 {
				goaway = fmt.Errorf("%v, %q", goaway, d)
			}
			c.mu.Lock()
			c.goaway, c.goawayLast = goaway, f.LastStreamID
			released := c.released
			c.mu.Unlock()
			if released {
				for _, s := range c.streams[:c.nSent] {
					if s.id > f.LastStreamID {
						c.endStream(s, goawayError(goaway, s.id), now, false)
					}
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				c.write(func(fr *http2.Framer) error { return fr.WritePing(true, data) })
			}
		case *http2.SettingsFrame:
			// Nothing left to send depends on them: acknowledge.
			if !f.IsAck() {
				c.write(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
			}
		case *http2.PushPromiseFrame:
			// Its header block was not decoded: HPACK is out of step.
			c.fail(errors.New("the ingress sent PUSH_PROMISE though push is disabled"), now)
			return
		}
		// WINDOW_UPDATE: we send no DATA. PRIORITY, unknown frames: ignored.
	}
}

func (c *h2conn) onHeaders(f *http2.MetaHeadersFrame, now time.Time, off int64) {
	s := c.stream(f.StreamID)
	if s == nil {
		return
	}
	if f.Truncated {
		c.endStream(s, errors.New("malformed reply: header list too large"), now, true)
		return
	}
	c.mu.Lock()
	trailers := s.status != 0
	c.mu.Unlock()
	if trailers { // after the final HEADERS: trailers, no :status
		if f.StreamEnded() {
			c.endStream(s, nil, now, false)
		}
		return
	}
	v := f.PseudoValue("status")
	code, err := strconv.Atoi(v)
	if err != nil || code < 100 || code > 999 {
		c.endStream(s, fmt.Errorf("malformed reply: :status %q", v), now, true)
		return
	}
	c.mu.Lock()
	if s.ended {
		c.mu.Unlock()
		return
	}
	if s.first.IsZero() {
		s.first, s.firstOff = now, off
	}
	// A 1xx is interim (the final HEADERS follows); HEADERS after the
	// final ones are trailers.
	if code >= 200 && s.status == 0 {
		s.status = code
		s.header = make(http.Header, len(f.RegularFields()))
		for _, hf := range f.RegularFields() {
			s.header.Add(hf.Name, hf.Value)
		}
	}
	final := s.status != 0
	c.mu.Unlock()
	switch {
	case f.StreamEnded() && !final:
		c.endStream(s, errors.New("malformed reply: the stream ended after an interim (1xx) response"), now, false)
	case f.StreamEnded():
		c.endStream(s, nil, now, false)
	}
}

// onData keeps a stream's DATA and gives the ingress its window back once
// half of it is used, for the connection (whatever the stream's state)
// and for the stream.
func (c *h2conn) onData(f *http2.DataFrame, now time.Time) {
	s := c.stream(f.StreamID)
	n := f.Length // padding included: it counts against the windows
	var connInc, streamInc uint32
	c.mu.Lock()
	c.connUnacked += n
	if c.connUnacked >= c.connWindow/2 {
		connInc, c.connUnacked = c.connUnacked, 0
	}
	live := s != nil && !s.ended
	early := live && s.status == 0
	if live && !early {
		s.body = append(s.body, f.Data()...)
		if !f.StreamEnded() {
			s.unacked += n
			if s.unacked >= c.streamWindow/2 {
				streamInc, s.unacked = s.unacked, 0
			}
		}
	}
	c.mu.Unlock()
	if connInc > 0 || streamInc > 0 {
		c.write(func(fr *http2.Framer) error {
			if connInc > 0 {
				if err := fr.WriteWindowUpdate(0, connInc); err != nil {
					return err
				}
			}
			if streamInc > 0 {
				return fr.WriteWindowUpdate(s.id, streamInc)
			}
			return nil
		})
	}
	switch {
	case early:
		c.endStream(s, errors.New("malformed reply: DATA before the response headers"), now, true)
	case live && f.StreamEnded():
		c.endStream(s, nil, now, false)
	}
}
