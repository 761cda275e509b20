package release

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coldbench/coldbench/internal/testenv/helperproc"
	"github.com/coldbench/coldbench/pkg/probe"
	"github.com/coldbench/coldbench/pkg/results"
	"github.com/coldbench/coldbench/pkg/stats"
)

func loopbackServer(tb testing.TB) (*httptest.Server, *atomic.Int64) {
	return loopbackServerWithConnState(tb, nil)
}

// loopbackServerWithConnState is loopbackServer with a ConnState hook. It is
// set before the server starts: httptest wraps it with its own, and setting
// Config.ConnState on a running server races with its accept loop.
func loopbackServerWithConnState(tb testing.TB, hook func(net.Conn, http.ConnState)) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fnHandler(w, r)
	}))
	srv.Config.ConnState = hook
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv, &hits
}

func addrOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

// fnHandler answers like a function behind the ingress: the Host it routes,
// the process-start header, "ok".
func fnHandler(w http.ResponseWriter, r *http.Request) {
	if r.Host != "fn.coldbench.example.com" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set(probe.ProcessStartHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
	w.Write([]byte("ok"))
}

// benchServer starts the release benchmarks' server in a process of its own
// (this test binary, via TestMain), like a real ingress: in this process its
// handler goroutines would compete with the release for the Go scheduler's
// Ps and put the server's work into the measured spread. It speaks
// HTTP/1.1 and h2c (250 streams per connection, like Traefik) and returns
// its address.
func benchServer(tb testing.TB) string {
	_, lines := helperproc.Start(tb, "COLDBENCH_BENCH_SERVER")
	if !lines.Scan() {
		tb.Fatal("the benchmark server said nothing")
	}
	return strings.TrimSpace(lines.Text())
}

// serveBench is the benchmark server's process (COLDBENCH_BENCH_SERVER=1).
func serveBench() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.HandlerFunc(fnHandler), Protocols: new(http.Protocols), HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 250}}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	fmt.Println(ln.Addr())
	io.Copy(io.Discard, os.Stdin)
}

// connCounter counts the connections a server accepted and the requests
// each carried.
type connCounter struct {
	mu    sync.Mutex
	conns map[string]int // remote address -> requests
}

func (c *connCounter) wrap(h http.Handler) http.Handler {
	c.conns = map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.conns[r.RemoteAddr]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func TestReleaseTogether(t *testing.T) {
	var cc connCounter
	srv := httptest.NewUnstartedServer(nil)
	var hits atomic.Int64
	srv.Config.Handler = cc.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Host != "fn.coldbench.example.com" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if r.Header.Get("Connection") != "" || r.UserAgent() != userAgent || r.Method != http.MethodGet || r.URL.Path != "/" {
			t.Errorf("request %s %s, Connection %q, User-Agent %q", r.Method, r.URL, r.Header.Get("Connection"), r.UserAgent())
		}
		w.Header().Set(probe.ProcessStartHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
		w.Write([]byte("ok"))
	}))
	srv.Start()
	defer srv.Close()
	var reqs []*Request
	for i := 0; i < 50; i++ {
		host := "fn.coldbench.example.com"
		if i == 7 {
			host = "wrong.example.com"
		}
		reqs = append(reqs, NewRequest(context.Background(), addrOf(srv), host, 5*time.Second))
	}
	out, skew := Together(reqs)
	if hits.Load() != 50 || skew <= 0 {
		t.Fatalf("hits %d, skew %v", hits.Load(), skew)
	}
	// One connection per request, one request per connection: a service's
	// Host never travels on a connection that carried another's.
	cc.mu.Lock()
	if len(cc.conns) != 50 {
		t.Errorf("%d connections for 50 requests", len(cc.conns))
	}
	for addr, n := range cc.conns {
		if n != 1 {
			t.Errorf("connection %s carried %d requests", addr, n)
		}
	}
	cc.mu.Unlock()
	for i, a := range out {
		if i == 7 {
			if a.OK || a.HTTPStatus != 404 || a.ErrorClass != results.ErrHTTPStatus {
				t.Errorf("wrong host answered %+v", a)
			}
			continue
		}
		checkReleased(t, i, a, reqs[i])
	}
	// A request that gets no answer in time is a timeout, never retried.
	var slowHits atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { slowHits.Add(1); time.Sleep(300 * time.Millisecond) }))
	defer slow.Close()
	out, _ = Together([]*Request{NewRequest(context.Background(), addrOf(slow), "x", 50*time.Millisecond)})
	if out[0].OK || out[0].ErrorClass != results.ErrTimeout || !strings.Contains(out[0].Error, "no reply within the client timeout") || slowHits.Load() != 1 {
		t.Errorf("slow server (%d hits): %+v", slowHits.Load(), out[0])
	}
}

// A connection the ingress closed while it waited for the release is found
// before the release and dialled again, untimed.
func TestReleaseRedialsConnectionClosedWhileIdle(t *testing.T) {
	var closed atomic.Int64
	done := make(chan struct{})
	srv, hits := loopbackServerWithConnState(t, func(c net.Conn, s http.ConnState) {
		if s == http.StateNew && closed.Add(1) == 1 {
			c.Close() // the first connection: closed at once, as an idle timeout would
			close(done)
		}
	})
	reqs := []*Request{
		NewRequest(context.Background(), addrOf(srv), "fn.coldbench.example.com", 5*time.Second),
		NewRequest(context.Background(), addrOf(srv), "fn.coldbench.example.com", 5*time.Second),
	}
	prepareH1(reqs)
	<-done
	time.Sleep(20 * time.Millisecond) // the FIN arrives
	out, _ := releaseH1(reqs)
	for i, a := range out {
		if !a.OK {
			t.Fatalf("attempt %d: %+v", i, a)
		}
		if _, ok := a.PhaseOffset(PhaseConnected); ok {
			t.Errorf("attempt %d: redialled inside the timer: %+v", i, a.Phases)
		}
	}
	if hits.Load() != 2 {
		t.Errorf("%d requests served, want 2", hits.Load())
	}
}

// rawServer accepts connections and hands each to serve (in order).
func rawServer(t *testing.T, serve func(i int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(i, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func readRequest(c net.Conn) bool {
	_, err := http.ReadRequest(bufio.NewReader(c))
	return err == nil
}

const okReply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

// The ingress closing a prepared connection cleanly at the last instant
// (after the check, before a reply) gets the request once more, on a new
// connection, marked: its start is the resent request's transmit (the
// kernel's stamp), and the new connection was up before it, after the
// goroutine's first start (user_start < connected < 0).
func TestReleaseResendsOnceAfterCleanCloseWithoutReply(t *testing.T) {
	var served atomic.Int64
	addr := rawServer(t, func(i int, c net.Conn) {
		if !readRequest(c) {
			return
		}
		served.Add(1)
		if i == 0 {
			return // closed (FIN) without a reply
		}
		c.Write([]byte(okReply))
	})
	r := NewRequest(context.Background(), addr, "fn", 5*time.Second)
	out, _ := Together([]*Request{r})
	a := out[0]
	if !a.OK || served.Load() != 2 {
		t.Fatalf("served %d: %+v", served.Load(), a)
	}
	conn, ok := a.PhaseOffset(PhaseConnected)
	us, _ := a.PhaseOffset(results.PhaseUserStart)
	if !ok || conn >= 0 || conn <= us || us != r.t0.Sub(a.Start) {
		t.Errorf("the resend is timed from its own transmit and marked: %+v", a)
	}
}

// A reset after the ingress read the request, or a second clean close, is
// final: the request may have woken a pod, a resend could hit it warm.
func TestReleaseNeverResendsAfterResetOrTwice(t *testing.T) {
	var served atomic.Int64
	reset := rawServer(t, func(i int, c net.Conn) {
		if readRequest(c) {
			served.Add(1)
			c.(*net.TCPConn).SetLinger(0)
		}
	})
	out, _ := Together([]*Request{NewRequest(context.Background(), reset, "fn", 5*time.Second)})
	if a := out[0]; a.OK || a.ErrorClass != results.ErrConnection || served.Load() != 1 {
		t.Errorf("reset: served %d, %+v", served.Load(), a)
	}
	served.Store(0)
	fin := rawServer(t, func(i int, c net.Conn) {
		if readRequest(c) {
			served.Add(1)
		}
	})
	out, _ = Together([]*Request{NewRequest(context.Background(), fin, "fn", 5*time.Second)})
	if a := out[0]; a.OK || a.ErrorClass != results.ErrConnection || served.Load() != 2 || !strings.Contains(a.Error, "closed the connection without a reply") {
		t.Errorf("close twice: served %d, %+v", served.Load(), a)
	}
}

// Without a prepared connection (the pre-dial failed) the request dials
// after its start and says so; an interrupt ends a request in flight as
// canceled.
func TestReleaseDialsInsideTheTimerOnlyWithoutAConnection(t *testing.T) {
	srv, _ := loopbackServer(t)
	out, _ := releaseH1([]*Request{NewRequest(context.Background(), addrOf(srv), "fn.coldbench.example.com", 5*time.Second)})
	us, _ := out[0].PhaseOffset(results.PhaseUserStart)
	if conn, ok := out[0].PhaseOffset(PhaseConnected); !out[0].OK || !ok || conn >= 0 || conn <= us {
		t.Errorf("dialled after the goroutine's start, before the request's transmit: %+v", out[0])
	}

	hang := rawServer(t, func(i int, c net.Conn) { readRequest(c); time.Sleep(5 * time.Second) })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	t0 := time.Now()
	out, _ = Together([]*Request{NewRequest(ctx, hang, "fn", 30*time.Second)})
	if a := out[0]; a.OK || a.ErrorClass != results.ErrCanceled || time.Since(t0) > 3*time.Second {
		t.Errorf("interrupted after %v: %+v", time.Since(t0), a)
	}
}

// checkReleased checks a successful attempt of a release: timed from its
// request's start, one probe, the function's start and request_sent
// phases, and no connect after the start (its connection was prepared).
func checkReleased(t *testing.T, i int, a results.Attempt, r *Request) {
	t.Helper()
	if !a.OK || a.HTTPStatus != 200 || a.TTFBNS <= 0 || a.TotalNS < a.TTFBNS || a.Probes != 1 || a.Start.IsZero() {
		t.Errorf("attempt %d: %+v", i, a)
	}
	// Kernel stamps (this host gives them; .ci/run runs here): the start
	// is the request's transmit, after coldbench's goroutine was about to
	// write (user_start, negative), and the first byte the reply's receive,
	// no later than coldbench read it (user_first_byte).
	if a.Timestamps != results.TimestampsKernel || a.TimestampsNote != "" {
		t.Errorf("attempt %d: timestamps %q (%s): want kernel stamps", i, a.Timestamps, a.TimestampsNote)
	}
	if us, ok := a.PhaseOffset(results.PhaseUserStart); !ok || us > 0 || us != r.t0.Sub(a.Start) {
		t.Errorf("attempt %d: user_start %v (%v), want ≤ 0 and the user-space start %v from the kernel's", i, us, ok, r.t0.Sub(a.Start))
	}
	if uf, ok := a.PhaseOffset(results.PhaseUserFirstByte); !ok || uf.Nanoseconds() < a.TTFBNS {
		t.Errorf("attempt %d: user_first_byte %v (%v), want at or after the kernel's first byte %v", i, uf, ok, time.Duration(a.TTFBNS))
	}
	if fb, ok := a.PhaseOffset(results.PhaseFirstByte); !ok || fb.Nanoseconds() != a.TTFBNS {
		t.Errorf("attempt %d: first_byte %v (%v), want the ttfb %v", i, fb, ok, time.Duration(a.TTFBNS))
	}
	if a.ReleaseSkewUserNS <= 0 {
		t.Errorf("attempt %d: no user-space skew (%d) kept beside the wire's", i, a.ReleaseSkewUserNS)
	}
	if _, ok := a.PhaseOffset(results.PhaseFunctionStart); !ok {
		t.Errorf("attempt %d: no function_start phase", i)
	}
	if sent, ok := a.PhaseOffset(results.PhaseRequestSent); !ok || sent < 0 || sent.Nanoseconds() > a.TTFBNS {
		t.Errorf("attempt %d: request_sent %v %v", i, sent, ok)
	}
	if _, ok := a.PhaseOffset(PhaseConnected); ok {
		t.Errorf("attempt %d: dialled after its start though its connection was prepared: %+v", i, a.Phases)
	}
}

// BenchmarkRelease500 measures how simultaneous "simultaneous" is: the
// release skew (max − min of the start times) of 500 prepared requests,
// each on its own pre-dialled connection, released together against a
// loopback HTTP server in this process. It reports the p50, p99 and max of
// the skew over b.N releases (run with -benchtime=200x for a p99 worth the
// name). Connecting is untimed (see http1.go); BenchmarkRelease500Dial is
// the study's way, connecting inside the timer.
//
//	go test -run '^$' -bench 'Release500' -benchtime 200x ./pkg/release/
func BenchmarkRelease500(b *testing.B) { benchRelease(b, 500, predialled) }

// BenchmarkRelease50 is BenchmarkRelease500 with 50 requests: the skew
// grows with N (each write costs the kernel's loopback path).
func BenchmarkRelease50(b *testing.B) { benchRelease(b, 50, predialled) }

// BenchmarkRelease100 is BenchmarkRelease500 with 100 requests.
func BenchmarkRelease100(b *testing.B) { benchRelease(b, 100, predialled) }

// BenchmarkRelease500Dial is BenchmarkRelease500 with each connection
// dialled after the request's start, as the study's client did.
func BenchmarkRelease500Dial(b *testing.B) { benchRelease(b, 500, dialledInTimer) }

// A release mode of the benchmarks: it prepares reqs (untimed) and
// returns the release to time.
type releaseMode func(reqs []*Request) func() ([]results.Attempt, time.Duration)

func predialled(reqs []*Request) func() ([]results.Attempt, time.Duration) {
	prepareH1(reqs)
	return func() ([]results.Attempt, time.Duration) { return releaseH1(reqs) }
}

func dialledInTimer(reqs []*Request) func() ([]results.Attempt, time.Duration) {
	return func() ([]results.Attempt, time.Duration) { return releaseH1(reqs) }
}

func benchRelease(b *testing.B, n int, mode releaseMode) {
	addr := benchServer(b)
	var skews, userSkews []float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reqs := make([]*Request, n)
		for k := range reqs {
			reqs[k] = NewRequest(context.Background(), addr, "fn.coldbench.example.com", 30*time.Second)
		}
		run := mode(reqs)
		b.StartTimer()
		out, skew := run()
		for _, a := range out {
			if !a.OK || a.Timestamps != results.TimestampsKernel {
				b.Fatalf("request failed or not kernel-stamped: %s %s (%s %s)", a.ErrorClass, a.Error, a.Timestamps, a.TimestampsNote)
			}
		}
		skews = append(skews, float64(skew.Nanoseconds())/1e3)
		userSkews = append(userSkews, float64(out[0].ReleaseSkewUserNS)/1e3)
	}
	reportSkews(b, "skew", skews)
	reportSkews(b, "user-skew", userSkews)
}

// reportSkews prints the release benchmarks' figures: skew quantiles in
// µs. skew is the release skew as records keep it (the requests' transmit
// stamps' spread, what left for the wire); user-skew the spread of the
// goroutines' user-space starts beside it.
func reportSkews(b *testing.B, name string, skews []float64) {
	sort.Float64s(skews)
	b.ReportMetric(stats.Quantile(skews, 0.5), name+"-p50-µs")
	b.ReportMetric(stats.Quantile(skews, 0.9), name+"-p90-µs")
	b.ReportMetric(stats.Quantile(skews, 0.99), name+"-p99-µs")
	b.ReportMetric(skews[len(skews)-1], name+"-max-µs")
}

// BenchmarkWrite500Floor is the floor for BenchmarkRelease500 on this
// machine, measured the same way against the same server: the spread of the
// start times of 500 bare writes of the same request on 500 pre-dialled
// connections, from one goroutine per CPU in a tight loop (no per-request
// goroutine, no HTTP client code). A loopback write costs the kernel's whole
// TCP send and receive path, so 500 of them cannot start closer together
// than about 500 × (cost of one write) / CPUs.
func BenchmarkWrite500Floor(b *testing.B) {
	addr := benchServer(b)
	const n = 500
	procs := runtime.GOMAXPROCS(0)
	var skews, perWrite []float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reqs := make([]*Request, n)
		for k := range reqs {
			reqs[k] = NewRequest(context.Background(), addr, "fn.coldbench.example.com", 30*time.Second)
		}
		prepareH1(reqs)
		starts := make([]time.Time, n)
		var readers, writers, parked sync.WaitGroup
		for _, r := range reqs {
			readers.Add(1)
			go func() {
				defer readers.Done()
				r.br.Reset(r.conn)
				http.ReadResponse(r.br, r.parse)
				r.conn.Close()
			}()
		}
		start := make(chan struct{})
		var busy atomic.Int64
		for p := 0; p < procs; p++ {
			writers.Add(1)
			parked.Add(1)
			go func() {
				defer writers.Done()
				parked.Done()
				<-start
				t0 := time.Now()
				for k := p; k < n; k += procs {
					starts[k] = time.Now()
					reqs[k].conn.Write(reqs[k].raw)
				}
				busy.Add(int64(time.Since(t0)))
			}()
		}
		parked.Wait()
		b.StartTimer()
		close(start)
		writers.Wait()
		b.StopTimer()
		readers.Wait()
		skews = append(skews, float64(Skew(starts).Nanoseconds())/1e3)
		perWrite = append(perWrite, float64(busy.Load())/n/1e3)
	}
	sort.Float64s(skews)
	sort.Float64s(perWrite)
	b.ReportMetric(stats.Quantile(skews, 0.5), "skew-p50-µs")
	b.ReportMetric(stats.Quantile(skews, 0.99), "skew-p99-µs")
	b.ReportMetric(stats.Median(perWrite), "write-µs")
}

// An interrupt cuts a reply whose body is still arriving (it does not wait
// for the client timeout), and a body cut by the timeout is a timeout.
func TestReleaseSlowBodyInterruptedOrTimedOut(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	addr := rawServer(t, func(i int, c net.Conn) {
		if !readRequest(c) {
			return
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"))
		<-hold
	})

	ctx, cancel := context.WithCancel(context.Background())
	r := NewRequest(ctx, addr, "fn", time.Minute)
	time.AfterFunc(100*time.Millisecond, cancel)
	t0 := time.Now()
	out, _ := Together([]*Request{r})
	if took := time.Since(t0); took > 30*time.Second {
		t.Errorf("interrupted read returned after %v, i.e. at the timeout, not at the interrupt", took)
	}
	if a := out[0]; a.ErrorClass != results.ErrCanceled {
		t.Errorf("interrupted body: %s: %s", a.ErrorClass, a.Error)
	}

	r = NewRequest(context.Background(), addr, "fn", 300*time.Millisecond)
	out, _ = Together([]*Request{r})
	if a := out[0]; a.ErrorClass != results.ErrTimeout {
		t.Errorf("body cut by the timeout: %s: %s", a.ErrorClass, a.Error)
	}
}
