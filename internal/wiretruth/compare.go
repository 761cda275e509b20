// Package wiretruth compares coldbench's records with a packet capture
// taken during their run (tcpdump -w, nanosecond stamps), attempt by
// attempt: every answered measured attempt's first byte against the first
// reply segment the capture saw on its connection and, on Knative, its
// start against its request's segment and each step's release skew
// against the spread of its requests' segments; for the stamps the record
// used (kernel, issue 17) and for coldbench's user-space ones
// (user_start, user_first_byte) beside them.
//
// The capture and coldbench read the same clock (CLOCK_REALTIME); the
// capture stamps a segment where tcpdump taps it (the bridge on the node
// backend), a few µs from where the kernel stamps it for the socket.
// bench/wiretruth is its command, scripts/wire-truth.sh runs a capture, a
// CPU hog and a run, then the command; test/e2e runs the same check.
package wiretruth

import (
	"fmt"
	"io"
	"time"

	"github.com/coldbench/coldbench/pkg/results"
)

// check is one attempt against the wire: the differences (record − wire)
// of its first byte and, where the start is a request's (Knative), of its
// start, for the record's stamps and for the user-space ones.
type check struct {
	a                *results.Attempt
	first, userFirst time.Duration
	start, userStart time.Duration
	hasStart         bool
	problem          string // no connection, no kernel stamps
}

// stepSkew is one step's release skew: the record's and the wire's.
type stepSkew struct {
	runtime            string
	scale, iteration   int
	record, user, wire time.Duration
}

// Verdict is every answered measured attempt against the wire.
type Verdict struct {
	maxDiff time.Duration
	checks  []check
	skews   []stepSkew
}

// Compare matches each answered measured attempt with its connection: on
// the node backend by the pod's address (Cold.Address, the connection
// that got the first reply), on Knative by the Host its request carried.
func Compare(attempts []results.Attempt, conns []*Conn, maxDiff time.Duration) Verdict {
	v := Verdict{maxDiff: maxDiff}
	type cellKey struct {
		rt    string
		n, it int
	}
	wireStarts := map[cellKey][]time.Time{}
	var cells []cellKey
	for i := range attempts {
		a := &attempts[i]
		if a.Warmup || !a.OK {
			continue
		}
		c := check{a: a}
		end := a.Start.Add(time.Duration(a.TotalNS) + time.Second)
		var match *Conn
		knative := a.Platform == "knative"
		for _, cn := range conns {
			if cn.firstReply.IsZero() || cn.firstRequest.Before(a.Start.Add(-time.Second)) || cn.firstRequest.After(end) {
				continue
			}
			if knative && a.Cold.Address == "" {
				continue
			}
			if knative && a.Cold.Address != "" && !hostMatches(a.Cold.Address, host(cn.request)) {
				continue
			}
			if !knative && cn.server.String() != a.Cold.Address {
				continue
			}
			if match == nil || cn.firstReply.Before(match.firstReply) {
				match = cn // the node's probes: the first connection that got a reply
			}
		}
		switch {
		case match == nil:
			c.problem = "no connection in the capture"
		case a.Timestamps != results.TimestampsKernel:
			c.problem = "not kernel-stamped: " + a.TimestampsNote
		}
		if match != nil {
			wall := a.Start.UnixNano()
			c.first = time.Duration(wall + a.TTFBNS - match.firstReply.UnixNano())
			if uf, ok := a.PhaseOffset(results.PhaseUserFirstByte); ok {
				c.userFirst = time.Duration(wall + uf.Nanoseconds() - match.firstReply.UnixNano())
			}
			if knative {
				c.hasStart = true
				c.start = time.Duration(wall - match.firstRequest.UnixNano())
				if us, ok := a.PhaseOffset(results.PhaseUserStart); ok {
					c.userStart = time.Duration(wall + us.Nanoseconds() - match.firstRequest.UnixNano())
				}
				k := cellKey{a.Runtime, a.Scale, a.Iteration}
				if _, seen := wireStarts[k]; !seen {
					cells = append(cells, k)
					v.skews = append(v.skews, stepSkew{runtime: a.Runtime, scale: a.Scale, iteration: a.Iteration,
						record: time.Duration(a.ReleaseSkewNS), user: time.Duration(a.ReleaseSkewUserNS)})
				}
				wireStarts[k] = append(wireStarts[k], match.firstRequest)
			}
		}
		v.checks = append(v.checks, c)
	}
	for i, k := range cells {
		lo, hi := wireStarts[k][0], wireStarts[k][0]
		for _, t := range wireStarts[k] {
			if t.Before(lo) {
				lo = t
			}
			if t.After(hi) {
				hi = t
			}
		}
		v.skews[i].wire = hi.Sub(lo)
	}
	return v
}

// hostMatches: a Knative record's address is "INGRESS Host: HOST".
func hostMatches(address, h string) bool {
	const sep = " Host: "
	for i := 0; i+len(sep) <= len(address); i++ {
		if address[i:i+len(sep)] == sep {
			return address[i+len(sep):] == h
		}
	}
	return false
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// OK: every attempt matched, kernel-stamped and within the largest
// difference allowed (and there was at least one).
func (v Verdict) OK() bool {
	for _, c := range v.checks {
		if c.problem != "" || abs(c.first) > v.maxDiff || (c.hasStart && abs(c.start) > v.maxDiff) {
			return false
		}
	}
	return len(v.checks) > 0
}

func us(d time.Duration) string { return fmt.Sprintf("%+.1f", float64(d)/1e3) }

// Print writes each attempt's differences, the steps' skews and a summary.
func (v Verdict) Print(w io.Writer) {
	fmt.Fprintf(w, "%-8s %-5s %-4s %-4s %14s %14s %14s %14s  %s\n", "RUNTIME", "N", "IT", "INST",
		"FIRST µs", "USER FIRST µs", "START µs", "USER START µs", "PROBLEM")
	var worst, worstUser, worstStart, worstUserStart time.Duration
	over, overUser := 0, 0
	for _, c := range v.checks {
		start, userStart := "-", "-"
		if c.hasStart {
			start, userStart = us(c.start), us(c.userStart)
			worstStart, worstUserStart = max(worstStart, abs(c.start)), max(worstUserStart, abs(c.userStart))
		}
		fmt.Fprintf(w, "%-8s %-5d %-4d %-4d %14s %14s %14s %14s  %s\n", c.a.Runtime, c.a.Scale, c.a.Iteration, c.a.Instance,
			us(c.first), us(c.userFirst), start, userStart, c.problem)
		if c.problem != "" {
			continue
		}
		worst, worstUser = max(worst, abs(c.first)), max(worstUser, abs(c.userFirst))
		if abs(c.first) > v.maxDiff || (c.hasStart && abs(c.start) > v.maxDiff) {
			over++
		}
		if abs(c.userFirst) > v.maxDiff || (c.hasStart && abs(c.userStart) > v.maxDiff) {
			overUser++
		}
	}
	fmt.Fprintln(w, "differences are record − wire: the record's stamp minus the capture's first segment of the connection (reply: first byte; request: start)")
	if len(v.skews) > 0 {
		fmt.Fprintf(w, "\n%-8s %-5s %-4s %14s %14s %14s\n", "RUNTIME", "N", "IT", "SKEW µs", "USER SKEW µs", "WIRE SKEW µs")
		for _, s := range v.skews {
			fmt.Fprintf(w, "%-8s %-5d %-4d %14.1f %14.1f %14.1f\n", s.runtime, s.scale, s.iteration,
				float64(s.record)/1e3, float64(s.user)/1e3, float64(s.wire)/1e3)
		}
	}
	fmt.Fprintf(w, "\n%d attempts: largest |first byte − wire| %v with the record's stamps, %v with the user-space ones",
		len(v.checks), worst, worstUser)
	if worstStart > 0 || worstUserStart > 0 {
		fmt.Fprintf(w, "; largest |start − wire| %v, user-space %v", worstStart, worstUserStart)
	}
	fmt.Fprintf(w, "\nbeyond %v: %d attempts with the record's stamps, %d with the user-space ones\n", v.maxDiff, over, overUser)
	if v.OK() {
		fmt.Fprintln(w, "verdict: every attempt within", v.maxDiff, "of the wire")
	} else {
		fmt.Fprintln(w, "verdict: FAILED (an attempt beyond", v.maxDiff, "of the wire, or unmatched, or not kernel-stamped; or no attempt)")
	}
}
