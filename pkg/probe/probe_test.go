package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// A server that starts listening only after a delay: the probe must find its
// first reply shortly after it comes up, not an interval-multiple later.
func TestUntilFindsLateServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused until the server starts below

	started := make(chan time.Time, 1)
	go func() {
		time.Sleep(150 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		up := time.Now()
		started <- up
		http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(ProcessStartHeader, strconv.FormatInt(up.UnixNano(), 10))
			w.Write([]byte("hello"))
		}))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	res := Until(ctx, Options{URL: "http://" + addr + "/", Interval: 2 * time.Millisecond})
	if !res.OK || res.HTTPStatus != 200 || string(res.Body) != "hello" {
		t.Fatalf("want 200 hello, got %+v", res)
	}
	up := <-started
	if gap := res.FirstByte.Sub(up); gap < 0 || gap > 100*time.Millisecond {
		t.Errorf("first byte %v after the server came up; want within 100ms", gap)
	}
	if res.FirstByte.Sub(t0) < 150*time.Millisecond {
		t.Errorf("first byte before the server existed")
	}
	if res.Probes < 10 {
		t.Errorf("only %d probes in 150ms at a 2ms interval", res.Probes)
	}
	if !res.ProcessStart.Equal(time.Unix(0, up.UnixNano())) {
		t.Errorf("process start %v, want %v", res.ProcessStart, up)
	}
	if res.Done.Before(res.FirstByte) {
		t.Errorf("done before first byte")
	}
}

func TestUntilTimeoutAndStatus(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res := Until(ctx, Options{URL: "http://" + addr + "/"})
	if res.OK || res.ErrorClass != results.ErrTimeout || res.Err == nil {
		t.Fatalf("want timeout, got %+v", res)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "fn.example" {
			t.Errorf("host header %q", r.Host)
		}
		w.WriteHeader(503)
	}))
	defer srv.Close()
	res = Until(context.Background(), Options{URL: srv.URL, Host: "fn.example"})
	if res.OK || res.HTTPStatus != 503 || res.ErrorClass != results.ErrHTTPStatus {
		t.Fatalf("want http_status 503, got %+v", res)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, ccancel)
	res = Until(cctx, Options{URL: "http://" + addr + "/"})
	if res.ErrorClass != results.ErrCanceled {
		t.Fatalf("want canceled, got %+v", res)
	}
}
