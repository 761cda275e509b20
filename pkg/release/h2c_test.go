package release

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/sys/unix"

	"github.com/coldbench/coldbench/pkg/probe"
	"github.com/coldbench/coldbench/pkg/results"
)

// h2cServer is a loopback server speaking HTTP/2 cleartext with prior
// knowledge, with at most maxStreams concurrent streams per connection
// (Go's and Traefik's default is 250).
func h2cServer(tb testing.TB, maxStreams int, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: maxStreams}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}

// waitClosed waits for ch, at most d: a handler must not hang the test
// (nor the server's Close) when the client under test misbehaves.
func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestReleaseTogetherH2(t *testing.T) {
	var cc connCounter
	var hits atomic.Int64
	srv := h2cServer(t, 250, cc.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.ProtoMajor != 2 || r.Method != http.MethodGet || r.URL.Path != "/" || r.UserAgent() != userAgent {
			t.Errorf("request %s %s %s, User-Agent %q", r.Proto, r.Method, r.URL, r.UserAgent())
		}
		if !strings.HasSuffix(r.Host, ".coldbench.example.com") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set(probe.ProcessStartHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
		w.Write([]byte("host=" + r.Host))
	})))
	const n = 600
	var reqs []*Request
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("fn-%03d.coldbench.example.com", i)
		if i == 7 {
			host = "wrong.example.com"
		}
		reqs = append(reqs, NewRequest(context.Background(), addrOf(srv), host, 10*time.Second))
	}
	conns := prepareH2(reqs)
	out, skew := releaseH2(reqs, conns)
	t.Logf("%d requests on %d connections: skew %v", n, len(conns), skew)
	if hits.Load() != n || skew <= 0 {
		t.Fatalf("hits %d, skew %v", hits.Load(), skew)
	}

	// ⌈600 / 250⌉ connections, none carrying more than the server allows,
	// and one start per connection: its requests went in one write.
	cc.mu.Lock()
	if len(cc.conns) != 3 {
		t.Errorf("%d connections for %d requests at 250 streams each, want 3", len(cc.conns), n)
	}
	for addr, k := range cc.conns {
		if k > 250 {
			t.Errorf("connection %s carried %d requests, over the server's 250", addr, k)
		}
	}
	cc.mu.Unlock()
	starts := map[time.Time]bool{}
	for _, r := range reqs {
		starts[r.t0] = true
	}
	if len(starts) != 3 {
		t.Errorf("%d distinct start times, want one per connection (3)", len(starts))
	}

	for i, a := range out {
		if i == 7 {
			if a.OK || a.HTTPStatus != 404 || a.ErrorClass != results.ErrHTTPStatus || !strings.HasPrefix(a.Error, "HTTP 404") {
				t.Errorf("wrong host answered %+v", a)
			}
			continue
		}
		checkReleased(t, i, a, reqs[i])
	}
	// Each stream got its own reply: the server echoed the Host it routed on.
	for _, c := range conns {
		for _, s := range c.streams {
			if want := "host=" + reqs[s.idx].parse.Host; s.idx != 7 && string(s.body) != want {
				t.Errorf("request %d (stream %d) got %q, want %q", s.idx, s.id, s.body, want)
			}
		}
	}
}

// A timeout ends its own stream (RST_STREAM: the server sees the request
// canceled) while the connection carries on with the others; a body cut by
// the timeout is a timeout too.
// A reply with trailers (HEADERS after the body, without :status) is a
// complete reply.
func TestReleaseH2ReplyWithTrailers(t *testing.T) {
	srv := h2cServer(t, 250, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Done")
		w.Write([]byte("ok"))
		w.Header().Set("X-Done", "1")
	}))
	reqs := []*Request{NewRequest(context.Background(), addrOf(srv), "fn.coldbench.example.com", 10*time.Second)}
	out, _ := TogetherH2(reqs)
	if a := out[0]; !a.OK || a.HTTPStatus != 200 {
		t.Fatalf("reply with trailers: %+v", a)
	}
}

func TestReleaseH2TimeoutResetsOnlyItsStream(t *testing.T) {
	slowReset, bodyReset := make(chan struct{}), make(chan struct{})
	srv := h2cServer(t, 250, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Host {
		case "slow":
			waitClosed(r.Context().Done(), 5*time.Second)
			close(slowReset)
		case "slowbody":
			w.Write([]byte("half"))
			w.(http.Flusher).Flush()
			waitClosed(r.Context().Done(), 5*time.Second)
			close(bodyReset)
		default:
			if !waitClosed(slowReset, 5*time.Second) || !waitClosed(bodyReset, 5*time.Second) {
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte("the timed-out streams were not reset"))
			}
		}
	}))
	reqs := []*Request{
		NewRequest(context.Background(), addrOf(srv), "slow", 250*time.Millisecond),
		NewRequest(context.Background(), addrOf(srv), "slowbody", 250*time.Millisecond),
		NewRequest(context.Background(), addrOf(srv), "other", 10*time.Second),
	}
	out, _ := TogetherH2(reqs)
	if a := out[0]; a.ErrorClass != results.ErrTimeout || !strings.Contains(a.Error, "no reply within the client timeout") {
		t.Errorf("no reply in time: %+v", a)
	}
	if a := out[1]; a.ErrorClass != results.ErrTimeout || a.HTTPStatus != 200 || a.TTFBNS <= 0 || !strings.Contains(a.Error, "reply not complete within the client timeout") {
		t.Errorf("body cut by the timeout: %+v", a)
	}
	if a := out[2]; !a.OK {
		t.Errorf("the other stream: %+v", a)
	}
}

// An interrupt ends every stream of its context at once, also a reply
// whose body is still arriving, and resets them at the server; a request
// of another context on the same connection is unaffected.
func TestReleaseH2CanceledMidBody(t *testing.T) {
	bodyReset, silentReset := make(chan struct{}), make(chan struct{})
	srv := h2cServer(t, 250, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Host {
		case "body":
			w.Write([]byte("half"))
			w.(http.Flusher).Flush()
			waitClosed(r.Context().Done(), 5*time.Second)
			close(bodyReset)
		case "silent":
			waitClosed(r.Context().Done(), 5*time.Second)
			close(silentReset)
		default:
			if !waitClosed(bodyReset, 5*time.Second) || !waitClosed(silentReset, 5*time.Second) {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reqs := []*Request{
		NewRequest(ctx, addrOf(srv), "body", time.Minute),
		NewRequest(ctx, addrOf(srv), "silent", time.Minute),
		NewRequest(context.Background(), addrOf(srv), "other", time.Minute),
	}
	conns := prepareH2(reqs) // before the interrupt: it would also stop the dial
	time.AfterFunc(200*time.Millisecond, cancel)
	t0 := time.Now()
	out, _ := releaseH2(reqs, conns)
	if took := time.Since(t0); took > 4*time.Second {
		t.Errorf("returned after %v: the interrupt did not end the streams", took)
	}
	if a := out[0]; a.ErrorClass != results.ErrCanceled || a.HTTPStatus != 200 || !strings.Contains(a.Error, "interrupted while reading the reply") {
		t.Errorf("interrupted body: %+v", a)
	}
	if a := out[1]; a.ErrorClass != results.ErrCanceled || !strings.Contains(a.Error, "interrupted before the reply") {
		t.Errorf("interrupted before a reply: %+v", a)
	}
	if a := out[2]; !a.OK {
		t.Errorf("the other context's stream: %+v", a)
	}
}

// An ingress that refuses the connection, or does not speak h2c, gives
// error records (timed from the release), not a crash.
func TestReleaseH2CannotConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	http1, _ := loopbackServer(t)
	for _, tc := range []struct{ addr, want string }{
		{refused, "connecting to the ingress"},
		{addrOf(http1), "handshake"},
	} {
		reqs := []*Request{
			NewRequest(context.Background(), tc.addr, "a", 5*time.Second),
			NewRequest(context.Background(), tc.addr, "b", 5*time.Second),
		}
		out, _ := TogetherH2(reqs)
		for i, a := range out {
			if a.OK || a.ErrorClass != results.ErrConnection || !strings.Contains(a.Error, tc.want) || a.Start.IsZero() || a.Start != reqs[i].t0 {
				t.Errorf("%s, attempt %d: %+v", tc.want, i, a)
			}
		}
	}
}

func TestCheckH2C(t *testing.T) {
	h1 := httptest.NewServer(http.NotFoundHandler())
	defer h1.Close()
	if err := CheckH2C(context.Background(), strings.TrimPrefix(h1.URL, "http://")); err == nil {
		t.Error("an HTTP/1.1-only ingress passed the h2c check")
	}
	h2 := httptest.NewUnstartedServer(http.NotFoundHandler())
	h2.Config.Protocols = new(http.Protocols)
	h2.Config.Protocols.SetUnencryptedHTTP2(true)
	h2.Start()
	defer h2.Close()
	if err := CheckH2C(context.Background(), strings.TrimPrefix(h2.URL, "http://")); err != nil {
		t.Errorf("h2c ingress: %v", err)
	}
}

// rawH2 is the server side of one h2c connection, written frame by frame
// to send what Go's server does not on demand (RST_STREAM, GOAWAY).
type rawH2 struct {
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

// rawH2Server is rawServer doing the server's side of the h2c handshake
// (the preface, SETTINGS allowing 250 streams) before serve.
func rawH2Server(t *testing.T, serve func(i int, s *rawH2)) string {
	return rawServer(t, func(i int, c net.Conn) {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
			return
		}
		s := &rawH2{fr: http2.NewFramer(c, c)}
		s.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		s.enc = hpack.NewEncoder(&s.hb)
		s.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 250})
		serve(i, s)
	})
}

// requests reads frames until n requests' HEADERS have arrived.
func (s *rawH2) requests(n int) []uint32 {
	var ids []uint32
	for len(ids) < n {
		f, err := s.fr.ReadFrame()
		if err != nil {
			return ids
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			ids = append(ids, f.StreamID)
		case *http2.SettingsFrame:
			if !f.IsAck() {
				s.fr.WriteSettingsAck()
			}
		}
	}
	return ids
}

// settled reads frames until the client's ACK of the server's SETTINGS.
func (s *rawH2) settled() bool {
	for {
		f, err := s.fr.ReadFrame()
		if err != nil {
			return false
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
			return true
		}
	}
}

func (s *rawH2) headers(id uint32, status int, end bool) {
	s.hb.Reset()
	s.enc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(status)})
	s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: s.hb.Bytes(), EndHeaders: true, EndStream: end})
}

// A stream the ingress resets, before or during its reply, and the streams
// a GOAWAY says were not processed are connection errors of their own;
// the others complete (an interim 103 is not the reply); nothing is sent
// again.
func TestReleaseH2ResetAndGoAway(t *testing.T) {
	t.Run("as-it-comes", func(t *testing.T) { testReleaseH2ResetAndGoAway(t) })
	// The connection's reader has seen every frame and the close before
	// the release looks at the connection (a loaded machine does this now
	// and then): the streams beyond GOAWAY's last stream are still "not
	// processed", not cut by the close.
	t.Run("reader-first", func(t *testing.T) {
		h2TestHookAfterWrite = func(conns []*h2conn) {
			for _, c := range conns {
				<-c.readerDone
			}
		}
		t.Cleanup(func() { h2TestHookAfterWrite = nil })
		testReleaseH2ResetAndGoAway(t)
	})
}

func testReleaseH2ResetAndGoAway(t *testing.T) {
	var accepted atomic.Int64
	addr := rawH2Server(t, func(i int, s *rawH2) {
		accepted.Add(1)
		ids := s.requests(5)
		if len(ids) != 5 {
			return
		}
		s.headers(ids[0], 200, false)
		s.fr.WriteData(ids[0], true, []byte("ok"))
		s.headers(ids[1], 103, false)
		s.headers(ids[1], 204, true)
		s.fr.WriteRSTStream(ids[2], http2.ErrCodeRefusedStream)
		s.headers(ids[3], 200, false)
		s.fr.WriteData(ids[3], false, []byte("ha"))
		s.fr.WriteRSTStream(ids[3], http2.ErrCodeInternal)
		s.fr.WriteGoAway(ids[3], http2.ErrCodeNo, nil)
	})
	var reqs []*Request
	for _, h := range []string{"ok", "hints", "refused", "cut", "never"} {
		reqs = append(reqs, NewRequest(context.Background(), addr, h, 5*time.Second))
	}
	out, _ := TogetherH2(reqs)
	if a := out[0]; !a.OK {
		t.Errorf("answered stream: %+v", a)
	}
	if a := out[1]; !a.OK || a.HTTPStatus != 204 {
		t.Errorf("103, then the reply: %+v", a)
	}
	if a := out[2]; a.ErrorClass != results.ErrConnection || !strings.Contains(a.Error, "reset the stream (REFUSED_STREAM)") {
		t.Errorf("reset before the reply: %+v", a)
	}
	if a := out[3]; a.ErrorClass != results.ErrConnection || a.HTTPStatus != 200 || !strings.Contains(a.Error, "reading the reply") || !strings.Contains(a.Error, "INTERNAL_ERROR") {
		t.Errorf("reset mid-body: %+v", a)
	}
	if a := out[4]; a.ErrorClass != results.ErrConnection || !strings.Contains(a.Error, "GOAWAY") || !strings.Contains(a.Error, "not processed") {
		t.Errorf("beyond GOAWAY's last stream: %+v", a)
	}
	if accepted.Load() != 1 {
		t.Errorf("%d connections: a refused stream was sent again", accepted.Load())
	}
}

// A connection the ingress closed (GOAWAY, then FIN) while it waited for
// the release is dialled again before it, untimed.
func TestReleaseH2RedialsConnectionClosedWhileIdle(t *testing.T) {
	var sent [2]atomic.Int64
	addr := rawH2Server(t, func(i int, s *rawH2) {
		if i == 0 {
			if s.settled() {
				s.fr.WriteGoAway(0, http2.ErrCodeNo, []byte("idle"))
			}
			return
		}
		ids := s.requests(2)
		sent[min(i, 1)].Add(int64(len(ids)))
		for _, id := range ids {
			s.headers(id, 200, false)
			s.fr.WriteData(id, true, []byte("ok"))
		}
	})
	reqs := []*Request{
		NewRequest(context.Background(), addr, "a", 5*time.Second),
		NewRequest(context.Background(), addr, "b", 5*time.Second),
	}
	conns := prepareH2(reqs)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		conns[0].mu.Lock()
		closed := conns[0].readErr != nil
		conns[0].mu.Unlock()
		if closed {
			break
		}
	}
	out, _ := releaseH2(reqs, conns)
	for i, a := range out {
		if !a.OK {
			t.Errorf("attempt %d: %+v", i, a)
		}
	}
	if sent[1].Load() != 2 {
		t.Errorf("%d requests on the new connection, want 2", sent[1].Load())
	}
}

// Replies larger than the windows arrive whole: the reader gives the
// windows back (stream and connection) as it consumes DATA.
func TestReleaseH2LargeBodiesGiveWindowsBack(t *testing.T) {
	sw, cw := h2StreamWindow, h2ConnWindow
	h2StreamWindow, h2ConnWindow = 65535, 65535 // HTTP/2's initial windows
	t.Cleanup(func() { h2StreamWindow, h2ConnWindow = sw, cw })
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	srv := h2cServer(t, 250, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) }))
	reqs := []*Request{
		NewRequest(context.Background(), addrOf(srv), "a", 10*time.Second),
		NewRequest(context.Background(), addrOf(srv), "b", 10*time.Second),
	}
	conns := prepareH2(reqs)
	out, _ := releaseH2(reqs, conns)
	for i, a := range out {
		if !a.OK {
			t.Errorf("attempt %d: %+v", i, a)
		}
	}
	for _, s := range conns[0].streams {
		if !bytes.Equal(s.body, big) {
			t.Errorf("request %d: %d bytes, want %d", s.idx, len(s.body), len(big))
		}
	}
}

// BenchmarkRelease500H2 is BenchmarkRelease500 over HTTP/2 (h2c): the
// release skew of 500 requests as streams on ⌈500 / 250⌉ connections, one
// write each, against a loopback h2c server in a process of its own
// (benchServer). It reports the p50, p90, p99 and max of the skew over b.N
// releases, like
// BenchmarkRelease500; connecting, the handshake and the encoding are
// untimed.
//
//	go test -run '^$' -bench 'Release500H2$' -benchtime 200x ./pkg/release/
func BenchmarkRelease500H2(b *testing.B) { benchRelease(b, 500, overH2) }

// BenchmarkRelease50H2 is BenchmarkRelease500H2 with 50 requests (one
// connection, one write: the skew is 0 by construction).
func BenchmarkRelease50H2(b *testing.B) { benchRelease(b, 50, overH2) }

// overH2 is the h2c release mode of benchRelease.
func overH2(reqs []*Request) func() ([]results.Attempt, time.Duration) {
	conns := prepareH2(reqs)
	return func() ([]results.Attempt, time.Duration) { return releaseH2(reqs, conns) }
}

// realtime runs the thread SCHED_FIFO where the process may (root here),
// and gives it back to Go as SCHED_NORMAL.
func TestRealtimeSwitchesTheThreadAndBack(t *testing.T) {
	runtime.LockOSThread() // keep the thread after realtime's own unlock
	defer runtime.UnlockOSThread()
	restore := realtime()
	during, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	restore()
	after, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if after.Policy != unix.SCHED_NORMAL {
		t.Errorf("policy after restore: %d, want SCHED_NORMAL", after.Policy)
	}
	if during.Policy == unix.SCHED_FIFO {
		return
	}
	// Not switched: only acceptable when the process may not.
	probe := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}
	if err := unix.SchedSetAttr(0, &probe, 0); err == nil {
		unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0)
		t.Fatalf("policy during: %d, yet this process may run SCHED_FIFO", during.Policy)
	}
}
