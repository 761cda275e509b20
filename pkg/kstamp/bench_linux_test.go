//go:build linux

package kstamp

import (
	"bufio"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// BenchmarkStampCost measures what kernel stamps add to one request of an
// HTTP/1.1 release, on a fresh loopback connection each (dialled and
// stamped untimed, as pkg/release does), plain and stamped alternately
// within the run:
//   - write-ns: the request's write (stamped: the kernel also queues its
//     SCHED and SND stamps);
//   - read-ns: the read of the reply's first byte, the reply already
//     received (stamped: a one-byte recvmsg with its control message);
//   - after-ns: what follows the first byte until the reply is read
//     (stamped: one more read for the rest, and draining the error queue);
//
// and reports the medians of each and extra-timed-ns, the stamped minus the
// plain write and first read (the path between the release and the first
// byte), and extra-total-ns, with after-ns too. The target (issue 17) is
// below 10 µs for each.
//
//	go test -run '^$' -bench StampCost -benchtime 3000x ./pkg/kstamp/
func BenchmarkStampCost(b *testing.B) {
	if err := Check(); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	replied := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			if _, err := br.ReadString('\n'); err == nil {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			}
			c.Close()
			replied <- struct{}{} // the reply is in the client's receive queue (loopback)
		}
	}()
	req := []byte("GET / HTTP/1.1\r\nHost: fn\r\n\n")
	type sample struct{ write, read, after time.Duration }
	var plain, stamped []sample
	br := bufio.NewReaderSize(nil, 4096)
	one := func(stamp bool) sample {
		raw, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		var c net.Conn = raw
		var k *Conn
		if stamp {
			k = New(raw, Options{TX: true})
			c = k
		}
		var s sample
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		<-replied
		br.Reset(c)
		t2 := time.Now()
		if _, err := br.Peek(1); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if _, err := io.Copy(io.Discard, br); err != nil {
			b.Fatal(err)
		}
		if stamp {
			f, _ := k.First()
			tx, ok := k.TxStamp(uint32(k.Written() - 1))
			if f.Stamp.IsZero() || !ok || tx.Stamp.IsZero() {
				b.Fatalf("no stamps: first %+v, transmit %+v", f, tx)
			}
		}
		t4 := time.Now()
		s.write, s.read, s.after = t1.Sub(t0), t3.Sub(t2), t4.Sub(t3)
		return s
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			plain = append(plain, one(false))
			stamped = append(stamped, one(true))
		} else {
			stamped = append(stamped, one(true))
			plain = append(plain, one(false))
		}
	}
	b.StopTimer()
	med := func(ss []sample, f func(sample) time.Duration) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = float64(f(s))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	w := func(s sample) time.Duration { return s.write }
	r := func(s sample) time.Duration { return s.read }
	a := func(s sample) time.Duration { return s.after }
	pw, pr, pa := med(plain, w), med(plain, r), med(plain, a)
	sw, sr, sa := med(stamped, w), med(stamped, r), med(stamped, a)
	b.ReportMetric(pw, "plain-write-ns")
	b.ReportMetric(sw, "stamped-write-ns")
	b.ReportMetric(pr, "plain-read-ns")
	b.ReportMetric(sr, "stamped-read-ns")
	b.ReportMetric(pa, "plain-after-ns")
	b.ReportMetric(sa, "stamped-after-ns")
	b.ReportMetric((sw-pw)+(sr-pr), "extra-timed-ns")
	b.ReportMetric((sw-pw)+(sr-pr)+(sa-pa), "extra-total-ns")
}
