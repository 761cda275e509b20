package probe

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coldbench/coldbench/pkg/stats"
)

// bareFirstByte is the least a client can do: connect, write a hand-made
// HTTP/1.1 GET, read until the first byte of the reply. It returns the time
// from before the connect to that byte.
func bareFirstByte(addr string, req []byte) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	io.Copy(io.Discard, c)
	return d, nil
}

// BenchmarkProbeOverhead measures what the HTTP probe (Until) adds to a
// bare net.Dial + hand-written HTTP/1.1 request, both against the same
// loopback server that is already up (so Until's first GET is answered),
// interleaved, each timed from before the call to the reply's first byte.
// It reports the medians of both and the median and p90 of the paired
// differences (probe − bare).
//
//	go test -run '^$' -bench ProbeOverhead -benchtime 2000x ./pkg/probe/
func BenchmarkProbeOverhead(b *testing.B) {
	up := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ProcessStartHeader, strconv.FormatInt(up.UnixNano(), 10))
		w.Write([]byte("hello"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	req := []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: bare\r\nConnection: close\r\n\r\n")
	opt := Options{URL: srv.URL + "/", Interval: 2 * time.Millisecond, AttemptTimeout: time.Second}
	var probeNS, bareNS, diffNS []float64
	for i := 0; i < b.N; i++ {
		var p, d time.Duration
		probe := func() {
			t0 := time.Now()
			res := Until(context.Background(), opt)
			if !res.OK {
				b.Fatalf("probe: %v", res.Err)
			}
			p = res.FirstByte.Sub(t0)
		}
		bare := func() {
			var err error
			if d, err = bareFirstByte(addr, req); err != nil {
				b.Fatal(err)
			}
		}
		if i%2 == 0 { // alternate the order: neither always goes first
			probe()
			bare()
		} else {
			bare()
			probe()
		}
		probeNS = append(probeNS, float64(p))
		bareNS = append(bareNS, float64(d))
		diffNS = append(diffNS, float64(p-d))
	}
	for _, s := range [][]float64{probeNS, bareNS, diffNS} {
		slices.Sort(s)
	}
	b.ReportMetric(stats.Median(probeNS)/1e3, "probe-p50-µs")
	b.ReportMetric(stats.Median(bareNS)/1e3, "bare-p50-µs")
	b.ReportMetric(stats.Median(diffNS)/1e3, "added-p50-µs")
	b.ReportMetric(stats.Quantile(diffNS, 0.9)/1e3, "added-p90-µs")
}
