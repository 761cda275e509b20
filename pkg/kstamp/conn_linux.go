//go:build linux

package kstamp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Flags asked of every stamped socket. RX_SOFTWARE|SOFTWARE: stamp received
// data and report it; OPT_TSONLY: a transmit stamp comes without a copy of
// the packet (no payload to read, allowed whatever tstamp_allow_data says).
const (
	rxFlags = unix.SOF_TIMESTAMPING_RX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE | unix.SOF_TIMESTAMPING_OPT_TSONLY
	// OPT_ID keys each write's stamps by the offset of its last byte;
	// OPT_ID_TCP counts that offset from what was written (not what was
	// acknowledged) when stamping was enabled. OPT_ID stays set when the
	// TX bits are turned off, or the counter would restart.
	idFlags = unix.SOF_TIMESTAMPING_OPT_ID | unix.SOF_TIMESTAMPING_OPT_ID_TCP
	txFlags = unix.SOF_TIMESTAMPING_TX_SCHED | unix.SOF_TIMESTAMPING_TX_SOFTWARE
)

// Options of a stamped connection.
type Options struct {
	// TX starts transmit stamping at once (StartTX): for a connection
	// that writes nothing before what is to be stamped.
	TX bool
	// LogReads keeps every read's stamp (Reads); without it only the
	// connection's first read is stamped.
	LogReads bool
}

// Conn is a net.Conn whose reads (and, with TX, writes) the kernel stamps.
// Read and Write may run on different goroutines (net/http's read and
// write loops); First, Reads and TxStamp are read by the goroutine that
// waited for the reply.
type Conn struct {
	net.Conn
	rc          syscall.RawConn // nil: no stamps (Unavailable says why)
	unavailable error
	opts        Options
	idTCP       bool // OPT_ID_TCP accepted (else plain OPT_ID)
	txOn        bool
	txBase      uint64 // bytes written when StartTX ran

	// Read side (one reader at a time; first also read by Peek from
	// another goroutine, under fmu).
	fmu       sync.Mutex
	firstDone bool
	first     Read
	delivered int64
	reads     []Read
	oob       [64]byte // one SCM_TIMESTAMPING: CmsgSpace(48)

	// Write side.
	written atomic.Uint64 // bytes written

	mu   sync.Mutex // the error queue's drain and what it found
	tx   []TxStamp
	eoob [128]byte // SCM_TIMESTAMPING + IP(V6)_RECVERR
}

// New stamps c (a TCP connection, before it carries anything: stamps for
// bytes already received are lost). It never fails: a connection the
// kernel will not stamp is passed through, and Unavailable says why.
func New(c net.Conn, o Options) *Conn {
	k := &Conn{Conn: c, opts: o}
	keepEnabled()
	sc, ok := c.(syscall.Conn)
	if !ok {
		k.unavailable = fmt.Errorf("kernel timestamps need a socket, not a %T", c)
		return k
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		k.unavailable = fmt.Errorf("kernel timestamps: %w", err)
		return k
	}
	if err := setFlags(rc, rxFlags); err != nil {
		k.unavailable = fmt.Errorf("SO_TIMESTAMPING refused: %w", err)
		return k
	}
	k.rc = rc
	if o.TX {
		k.StartTX()
	}
	return k
}

// StartTX turns transmit stamping on: the writes from now on are stamped,
// and their keys count from here (Written). Called once, before the writes
// to stamp (a second call does not restart the count). A refusal leaves
// the writes unstamped (TxStamp finds nothing; Unavailable says why).
func (k *Conn) StartTX() {
	if k.rc == nil || k.txOn {
		return
	}
	flags := rxFlags | txFlags | idFlags
	err := setFlags(k.rc, flags)
	k.idTCP = err == nil
	if err != nil {
		// OPT_ID_TCP is Linux 6.2+: plain OPT_ID counts from the
		// acknowledged bytes, the same when nothing is in flight; if
		// something is (h2c's SETTINGS ACK just written), the keys are
		// off and TxStamp finds none: the cell falls back to user-space
		// stamps, never to a wrong one.
		err = setFlags(k.rc, flags&^unix.SOF_TIMESTAMPING_OPT_ID_TCP)
	}
	if err != nil {
		k.unavailable = fmt.Errorf("SO_TIMESTAMPING refused transmit stamps: %w", err)
		return
	}
	k.txOn = true
	k.txBase = k.written.Load()
}

func setFlags(rc syscall.RawConn, flags int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPING, flags)
	}); err != nil {
		return err
	}
	return serr
}

// Unavailable is why the connection has no kernel stamps (nil: it has).
func (k *Conn) Unavailable() error { return k.unavailable }

// SyscallConn exposes the socket (release's non-blocking peek uses it).
func (k *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := k.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("not a socket")
}

// Read reads like the wrapped connection. Its first read takes one byte
// only, so that its stamp is the segment holding the connection's first
// byte; with LogReads every read is stamped and logged.
func (k *Conn) Read(p []byte) (int, error) {
	if k.rc == nil || (k.firstDone && !k.opts.LogReads) || len(p) == 0 {
		return k.Conn.Read(p)
	}
	if !k.firstDone {
		p = p[:1]
	}
	n, s, err := k.recv(p)
	if n > 0 {
		now := time.Now()
		k.delivered += int64(n)
		r := Read{End: k.delivered, Stamp: s, User: now}
		if !k.firstDone {
			k.fmu.Lock()
			k.first, k.firstDone = r, true
			k.fmu.Unlock()
		}
		if k.opts.LogReads {
			k.reads = append(k.reads, r)
		}
	}
	return n, err
}

// recv is one recvmsg, waiting (with the connection's deadline) for data.
func (k *Conn) recv(p []byte) (int, Stamp, error) {
	var n, oobn int
	var serr error
	read := func(fd uintptr) bool {
		for {
			n, oobn, _, _, serr = unix.Recvmsg(int(fd), p, k.oob[:], 0)
			if serr != unix.EINTR {
				break
			}
		}
		return serr != unix.EAGAIN
	}
	err := k.rc.Read(read)
	for err != nil && k.txOn && strings.Contains(err.Error(), "not pollable") {
		// A wake-up with EPOLLERR alone (transmit stamps queued while the
		// socket could not be written) fails Go's next wait for reading
		// until another event comes: keep the stamps, and retry until data
		// or the deadline (which ends rc.Read by itself).
		k.mu.Lock()
		k.drainLocked()
		k.mu.Unlock()
		time.Sleep(time.Millisecond)
		err = k.rc.Read(read)
	}
	if err == nil && serr != nil {
		err = &net.OpError{Op: "read", Net: "tcp", Source: k.LocalAddr(), Addr: k.RemoteAddr(), Err: os.NewSyscallError("recvmsg", serr)}
	}
	if err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, io.EOF
	}
	s, _ := ParseRX(k.oob[:oobn])
	return n, s, nil
}

// Write writes like the wrapped connection and counts the bytes for the
// transmit stamps' keys.
func (k *Conn) Write(p []byte) (int, error) {
	n, err := k.Conn.Write(p)
	if n > 0 {
		k.written.Add(uint64(n))
	}
	return n, err
}

// Written is how many bytes were written since StartTX: the key of the
// last write's transmit stamps is Written()-1 (mod 2³²).
func (k *Conn) Written() uint64 { return k.written.Load() - k.txBase }

// First is the stamp of the connection's first read (ok false: nothing was
// read yet, or the connection is unstamped; a zero Stamp: the kernel gave
// none for it).
func (k *Conn) First() (Read, bool) {
	k.fmu.Lock()
	defer k.fmu.Unlock()
	return k.first, k.firstDone
}

// PeekFirst is the stamp of the connection's first byte from any
// goroutine, never waiting: its first read's stamp, or, before that read,
// the stamp of the data already in the receive queue (a MSG_PEEK that
// leaves it there). False when no byte has come (or no stamp).
func (k *Conn) PeekFirst() (Stamp, bool) {
	if f, ok := k.First(); ok {
		return f.Stamp, !f.Stamp.IsZero()
	}
	if k.rc == nil {
		return 0, false
	}
	var b [1]byte
	var oob [64]byte
	var n, oobn int
	var err error
	if cerr := k.rc.Control(func(fd uintptr) {
		for {
			n, oobn, _, _, err = unix.Recvmsg(int(fd), b[:], oob[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if err != unix.EINTR {
				return
			}
		}
	}); cerr != nil || err != nil || n < 1 {
		// The reader may have taken the byte between First and the peek.
		if f, ok := k.First(); ok {
			return f.Stamp, !f.Stamp.IsZero()
		}
		return 0, false
	}
	return ParseRX(oob[:oobn])
}

// Reads is every logged read (LogReads), in order.
func (k *Conn) Reads() []Read { return k.reads }

// StopTX turns transmit stamping off for later writes; writes made before
// keep their stamps (the kernel marks a write's last segment as it sends).
func (k *Conn) StopTX() error {
	if k.rc == nil || !k.txOn {
		return nil
	}
	flags := rxFlags | unix.SOF_TIMESTAMPING_OPT_ID
	if k.idTCP {
		flags |= unix.SOF_TIMESTAMPING_OPT_ID_TCP
	}
	return setFlags(k.rc, flags)
}

// TxStamp returns the earliest SCHED or SND stamp of the write whose last
// byte has that key (ok false: none has come, or no TX stamping). It
// drains the error queue first; it never waits.
func (k *Conn) TxStamp(key uint32) (TxStamp, bool) {
	if k.rc == nil || !k.txOn {
		return TxStamp{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.drainLocked()
	var best TxStamp
	found := false
	for _, t := range k.tx {
		if t.Key != key || t.Kind == TxAck || t.Stamp.IsZero() {
			continue
		}
		if !found || t.Stamp < best.Stamp {
			best, found = t, true
		}
	}
	return best, found
}

// drainLocked moves the error queue's transmit stamps into k.tx (k.mu held).
func (k *Conn) drainLocked() {
	k.rc.Control(func(fd uintptr) {
		for {
			_, oobn, flags, _, err := unix.Recvmsg(int(fd), nil, k.eoob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return // EAGAIN: drained
			}
			if flags&unix.MSG_CTRUNC != 0 {
				continue
			}
			if t, ok := ParseTX(k.eoob[:oobn]); ok {
				k.tx = append(k.tx, t)
			}
		}
	})
}

// Close keeps the transmit stamps still queued (the kernel drops a
// socket's error queue with it), then closes the connection: a reply's
// last stream may close it before the release's stamps are read.
func (k *Conn) Close() error {
	if k.rc != nil && k.txOn {
		k.mu.Lock()
		k.drainLocked()
		k.mu.Unlock()
	}
	return k.Conn.Close()
}

// keepEnabled keeps one stamping socket open for the process's life: the
// kernel turns receive stamping on for the whole system when a first
// socket asks (through deferred work), and off when the last one closes,
// so connections opened and closed one after another could otherwise lose
// the stamps of their first packets. It returns once a datagram the socket
// sends itself comes back stamped (the deferred work done), or after
// keepEnabledWait.
var keepEnabled = sync.OnceFunc(func() {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	self := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_RX_SOFTWARE|unix.SOF_TIMESTAMPING_SOFTWARE) != nil ||
		unix.Bind(fd, self) != nil {
		unix.Close(fd)
		return
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return
	}
	var b [1]byte
	var oob [64]byte
	for deadline := time.Now().Add(keepEnabledWait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if unix.Sendto(fd, b[:], 0, sa) != nil {
			return
		}
		// Loopback delivers within the sendto: the datagram is queued.
		_, oobn, _, _, err := unix.Recvmsg(fd, b[:], oob[:], unix.MSG_DONTWAIT)
		if err != nil {
			continue
		}
		if _, ok := ParseRX(oob[:oobn]); ok {
			return
		}
	}
})

// keepEnabledWait bounds keepEnabled's wait for the kernel's deferred work
// (microseconds when the machine is idle).
const keepEnabledWait = 500 * time.Millisecond

// Check asks the kernel for a TCP connection's receive and transmit
// stamps, as New and StartTX do, on a loopback connection of its own (the
// transmit stamps' keys need a connected socket): nil when it gives them.
// A run's header says which clock its records can use before any
// connection exists.
func Check() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("kernel timestamps: a loopback listener to check them on: %w", err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("kernel timestamps: a loopback connection to check them on: %w", err)
	}
	defer c.Close()
	k := New(c, Options{TX: true})
	return k.Unavailable()
}
