package release

// Kernel stamps (pkg/kstamp) for a step's requests: each request's start is
// the kernel's transmit stamp of its last byte and its first byte the
// kernel's receive stamp of the reply's first segment, so that neither
// includes the time coldbench's goroutines waited for a CPU on a loaded
// host (issue 17). The user-space stamps stay in the record as
// user_start and user_first_byte.
//
// A cell never mixes clocks: when one of its requests lacks a stamp it
// should have (a request never written has none to have: its record is an
// error, its Start when it would have left) (the socket refused SO_TIMESTAMPING, the kernel gave none),
// or the wall clock stepped during the release (kernel stamps are
// CLOCK_REALTIME, the record's offsets monotonic), every attempt of the
// cell keeps its user-space stamps and says why (timestamps "user",
// timestamps_note).

import (
	"fmt"
	"time"

	"github.com/coldbench/coldbench/pkg/kstamp"
	"github.com/coldbench/coldbench/pkg/results"
)

// takeStamps reads r's kernel stamps once its exchange ended: the transmit
// stamp of the write ending at txKey (when it was written) and the receive
// stamp rx (when a first byte came; the caller's).
func (r *Request) takeStamps(k *kstamp.Conn, txKey uint32, rx kstamp.Stamp) {
	if k == nil {
		r.kwhy = "no connection"
		return
	}
	if err := k.Unavailable(); err != nil {
		r.kwhy = err.Error()
		return
	}
	if !r.sent.IsZero() {
		if t, ok := k.TxStamp(txKey); ok {
			r.ktx = t.Stamp
		} else {
			r.kwhy = "the kernel gave no transmit stamp for the request"
		}
	}
	if !r.first.IsZero() {
		r.krx = rx
		if rx.IsZero() {
			r.kwhy = "the kernel gave no receive stamp for the reply's first byte"
		}
	}
}

// stampCell makes out (the attempts of reqs, in order) use the kernel's
// stamps, or none of them, and returns the release skew of the starts it
// kept. before and after are the clock read just before the release and
// once every exchange ended.
func stampCell(reqs []*Request, out []results.Attempt, before, after kstamp.Clock) time.Duration {
	userStarts := make([]time.Time, len(reqs))
	for i, r := range reqs {
		userStarts[i] = r.t0
	}
	userSkew := Skew(userStarts)
	why := cellWhy(reqs, before, after)
	for i := range out {
		out[i].ReleaseSkewUserNS = userSkew.Nanoseconds()
		if why != "" {
			out[i].Timestamps, out[i].TimestampsNote = results.TimestampsUser, why
		}
	}
	if why != "" {
		return userSkew
	}
	starts := make([]time.Time, len(reqs))
	for i, r := range reqs {
		if r.sent.IsZero() {
			// Never written (its error says why): no moment of its own
			// to move, and none in the skew of what left.
			out[i].Timestamps = results.TimestampsKernel
			continue
		}
		starts[i] = useKernelStamps(&out[i], r, before)
	}
	return Skew(starts)
}

// cellWhy is why the cell cannot use kernel stamps ("" when it can): the
// first request lacking one, or a wall-clock step.
func cellWhy(reqs []*Request, before, after kstamp.Clock) string {
	if why := before.StepNote(after, "the release"); why != "" {
		return why
	}
	for i, r := range reqs {
		if (!r.sent.IsZero() && r.ktx.IsZero()) || (!r.first.IsZero() && r.krx.IsZero()) {
			return fmt.Sprintf("request %d of %d: %s", i+1, len(reqs), r.kwhy)
		}
		if !r.first.IsZero() && r.sent.IsZero() {
			// h2c: a write that failed part-way, after the ingress had
			// read this stream: no transmit stamp says when it left.
			return fmt.Sprintf("request %d of %d: a reply came to a request whose write failed", i+1, len(reqs))
		}
		if !r.first.IsZero() && r.krx <= r.ktx {
			return fmt.Sprintf("request %d of %d: its reply's receive stamp is not after its transmit stamp", i+1, len(reqs))
		}
	}
	return ""
}

// useKernelStamps moves a's start to r's transmit stamp and its first byte
// to r's receive stamp, every other offset with the start (request_sent
// becomes the start itself), and adds the user-space stamps as user_start
// (negative: before the request left) and user_first_byte. It returns the
// new start.
func useKernelStamps(a *results.Attempt, r *Request, clk kstamp.Clock) time.Time {
	start := clk.Time(r.ktx)
	shift := r.t0.Sub(start).Nanoseconds() // from offsets on r.t0 to offsets on start
	a.Start = start
	a.Timestamps, a.TimestampsNote = results.TimestampsKernel, ""
	if a.TotalNS != 0 {
		a.TotalNS += shift
	}
	phases := make([]results.Phase, 0, len(a.Phases)+2)
	phases = append(phases, results.Phase{Name: results.PhaseUserStart, OffsetNS: shift})
	for _, p := range a.Phases {
		p.OffsetNS += shift
		if p.Name == results.PhaseRequestSent {
			// The transmit stamp is when the request went out; the
			// write's return, coldbench's upper bound of it, can even
			// come after the reply when the writer lost its CPU.
			p.OffsetNS = 0
		}
		if p.Name == results.PhaseFirstByte {
			first := clk.Time(r.krx).Sub(start).Nanoseconds()
			a.TTFBNS = first
			phases = append(phases, results.Phase{Name: results.PhaseFirstByte, OffsetNS: first})
			p.Name = results.PhaseUserFirstByte
		}
		phases = append(phases, p)
	}
	a.Phases = phases
	return start
}
