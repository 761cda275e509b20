// Package kstamp takes a TCP connection's times from the kernel instead of
// from the goroutine that reads or writes it: the moment the first byte of
// a reply reached the host's receive stack (SO_TIMESTAMPING, software RX
// stamp) and the moment a request's last byte was handed to the device
// (software TX stamps, SCHED before the qdisc and SND in the driver).
//
// Why: on a loaded host the harness's threads wait for a CPU, and a stamp
// taken by a goroutine (time.Now after a read returns) includes that wait;
// the kernel stamps a packet in softirq or in the sending system call,
// whatever the reader's goroutine is doing. docs/research/kernel-timestamps.md
// has the kernel's and Go's details this package relies on.
//
// A Conn wraps a net.Conn. It stamps:
//   - the connection's first read (coldbench's connections carry one
//     request each): that read asks for one byte, so its stamp is the
//     segment holding the reply's first byte (or a later segment the kernel
//     coalesced into it before the read: the stamp is then an upper bound,
//     still no later than the read);
//   - with LogReads, every read: (bytes read so far, stamp), so a framed
//     protocol (h2c) can give each frame the stamp of the read that
//     delivered its first byte;
//   - with TX, every write's last byte: TxStamp(key) drains the socket's
//     error queue for it.
//
// Kernel stamps are CLOCK_REALTIME; a Clock turns them into time.Time
// values carrying the monotonic reading of the Clock's reference, so that
// durations between them and user-space stamps are monotonic ones.
// A missing stamp is never invented: callers fall back to user-space stamps
// and say so (Conn.Unavailable, zero stamps).
package kstamp

import (
	"fmt"
	"time"
)

// Stamp is a kernel timestamp: CLOCK_REALTIME nanoseconds, 0 = none.
type Stamp int64

// IsZero reports a missing stamp.
func (s Stamp) IsZero() bool { return s == 0 }

// Read is one read of a connection with LogReads: its stamp (that of the
// last segment the read took bytes from) and how many bytes the
// connection had delivered when it returned.
type Read struct {
	End   int64 // bytes delivered by this and every earlier read
	Stamp Stamp
	User  time.Time // when the read returned (time.Now)
}

// StampAt returns the stamp of the read that delivered byte off (counted
// from the connection's first byte read): the first read whose End is
// beyond off. Zero when no read covers it or that read had no stamp.
func StampAt(reads []Read, off int64) (Read, bool) {
	lo, hi := 0, len(reads)
	for lo < hi { // sort.Search by hand: no closure on a per-frame path
		m := (lo + hi) / 2
		if reads[m].End > off {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == len(reads) {
		return Read{}, false
	}
	return reads[lo], true
}

// TxKinds of a transmit stamp (the error queue's ee_info).
const (
	TxSnd   = 0 // SCM_TSTAMP_SND: the driver took the packet
	TxSched = 1 // SCM_TSTAMP_SCHED: before the qdisc
	TxAck   = 2 // SCM_TSTAMP_ACK: the peer acknowledged it
)

// TxStamp is one transmit stamp from a socket's error queue.
type TxStamp struct {
	Key   uint32 // OPT_ID_TCP: offset of the write's last byte since TX stamping was enabled
	Kind  uint32 // TxSnd, TxSched, TxAck
	Stamp Stamp
}

// Clock turns kernel stamps (CLOCK_REALTIME) into time.Time values on the
// process's monotonic clock. Its reference is one time.Now, which reads
// both clocks back to back (runtime·now): the pair read closest together
// of a few tries is kept, since a thread preempted between the two reads
// would shift every conversion by the preemption.
type Clock struct {
	wall int64     // the reference's CLOCK_REALTIME, ns
	mono time.Time // the reference, carrying its monotonic reading
}

// base anchors the monotonic readings compared by NewClock and Step.
var base = time.Now()

// clockTries: the pairs NewClock reads (≈ 50 ns each).
const clockTries = 8

// NewClock reads the reference pair now.
func NewClock() Clock {
	var best Clock
	for i := 0; i < clockTries; i++ {
		t := time.Now()
		c := Clock{wall: t.UnixNano(), mono: t}
		// wall − mono: a preemption between the reads makes mono later,
		// so the offset smaller; the largest is the tightest pair.
		if i == 0 || c.offset() > best.offset() {
			best = c
		}
	}
	return best
}

// ClockAt is a Clock whose reference is wall (Unix ns) read together with
// mono's monotonic reading (tests build clocks that stepped).
func ClockAt(wall int64, mono time.Time) Clock { return Clock{wall: wall, mono: mono} }

// Time converts s into a time.Time carrying the reference's monotonic
// reading shifted by s's distance from the reference. Zero for a missing
// stamp.
func (c Clock) Time(s Stamp) time.Time {
	if s.IsZero() || c.mono.IsZero() {
		return time.Time{}
	}
	return c.mono.Add(time.Duration(int64(s) - c.wall))
}

// offset is wall − monotonic at the reference, in ns (mono from base).
func (c Clock) offset() int64 { return c.wall - int64(c.mono.Sub(base)) }

// Step is how far the wall clock moved against the monotonic clock between
// c's reference and later's: 0 without a step (settimeofday,
// clock_settime, a leap second; NTP's slewing moves both clocks alike),
// give or take the pairs' own spread (tens of ns, more if every try of a
// reference was preempted).
func (c Clock) Step(later Clock) time.Duration {
	return time.Duration(later.offset() - c.offset())
}

// MaxStep is the wall-clock step above which stamps converted with a
// reference from before it are not trusted: far above two references'
// read spread (< 1 µs when not preempted), far below a cold start.
const MaxStep = time.Millisecond

// StepNote says why stamps converted with c cannot be trusted once later
// was read ("" when they can): the wall clock stepped by more than MaxStep
// in between. during names the span ("the release", "the step").
func (c Clock) StepNote(later Clock, during string) string {
	if step := c.Step(later); step > MaxStep || step < -MaxStep {
		return fmt.Sprintf("the wall clock stepped by %v during %s: kernel stamps (CLOCK_REALTIME) cannot be set on the monotonic clock", step, during)
	}
	return ""
}
