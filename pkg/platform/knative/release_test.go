package knative

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/probe"
	"github.com/coldbench/coldbench/pkg/results"
)

func loopbackServer(tb testing.TB) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Host != "fn.coldbench.example.com" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set(probe.ProcessStartHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
		w.Write([]byte("ok"))
	}))
	tb.Cleanup(srv.Close)
	return srv, &hits
}

func TestReleaseTogether(t *testing.T) {
	srv, hits := loopbackServer(t)
	var reqs []*request
	for i := 0; i < 50; i++ {
		host := "fn.coldbench.example.com"
		if i == 7 {
			host = "wrong.example.com"
		}
		reqs = append(reqs, newRequest(context.Background(), srv.URL+"/", host, 5*time.Second))
	}
	out, skew := releaseTogether(reqs)
	if hits.Load() != 50 || skew < 0 {
		t.Fatalf("hits %d, skew %v", hits.Load(), skew)
	}
	for i, a := range out {
		if i == 7 {
			if a.OK || a.HTTPStatus != 404 || a.ErrorClass != results.ErrHTTPStatus {
				t.Errorf("wrong host answered %+v", a)
			}
			continue
		}
		if !a.OK || a.TTFBNS <= 0 || a.TotalNS < a.TTFBNS || a.Probes != 1 {
			t.Errorf("attempt %d: %+v", i, a)
		}
		if _, ok := a.PhaseOffset(results.PhaseFunctionStart); !ok {
			t.Errorf("attempt %d: no function_start phase", i)
		}
	}
	// A request that gets no answer in time is a timeout, never retried.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) }))
	defer slow.Close()
	out, _ = releaseTogether([]*request{newRequest(context.Background(), slow.URL+"/", "x", 50*time.Millisecond)})
	if out[0].OK || out[0].ErrorClass != results.ErrTimeout {
		t.Errorf("slow server: %+v", out[0])
	}
}

// BenchmarkRelease500 measures how simultaneous "simultaneous" is: the
// spread of start times of 500 prepared requests released together against
// a loopback server (connection set-up is inside the measured path, as in
// the study). It reports the p50 and p99 of that spread over b.N releases.
func BenchmarkRelease500(b *testing.B) {
	srv, _ := loopbackServer(b)
	var skews []float64
	for i := 0; i < b.N; i++ {
		reqs := make([]*request, 500)
		for k := range reqs {
			reqs[k] = newRequest(context.Background(), srv.URL+"/", "fn.coldbench.example.com", 30*time.Second)
		}
		out, skew := releaseTogether(reqs)
		for _, a := range out {
			if !a.OK {
				b.Fatalf("request failed: %s %s", a.ErrorClass, a.Error)
			}
		}
		skews = append(skews, float64(skew.Microseconds()))
	}
	sort.Float64s(skews)
	b.ReportMetric(skews[len(skews)/2], "skew-p50-µs")
	b.ReportMetric(skews[(len(skews)*99)/100], "skew-p99-µs")
	b.ReportMetric(skews[len(skews)-1], "skew-max-µs")
}

// The route check: the ingress's 404 means "not routed yet"; Knative's probe
// handler echoes the hash; a 200 without the echo is someone else answering.
func TestProbeRoute(t *testing.T) {
	var routed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !routed.Load() || r.Host != "fn.example" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get(probeHeader) != "probe" {
			t.Error("route probe reached the function as a normal request")
		}
		w.Header().Set(probeHashHeader, r.Header.Get(probeHashHeader))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	client := srv.Client()
	if code, err := probeRoute(context.Background(), client, addr, "fn.example"); err != nil || code != 404 {
		t.Fatalf("unrouted: %d %v", code, err)
	}
	routed.Store(true)
	if code, err := probeRoute(context.Background(), client, addr, "fn.example"); err != nil || code != 200 {
		t.Fatalf("routed: %d %v", code, err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	if _, err := probeRoute(context.Background(), client, strings.TrimPrefix(plain.URL, "http://"), "fn.example"); err == nil {
		t.Fatal("a 200 without the hash echo was taken for Knative's probe handler")
	}
}
