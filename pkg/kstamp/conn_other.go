//go:build !linux

package kstamp

import (
	"errors"
	"net"
	"syscall"
)

// Options of a stamped connection (see the Linux build).
type Options struct {
	TX       bool
	LogReads bool
}

// Conn passes its connection through: kernel stamps are Linux only.
type Conn struct {
	net.Conn
}

// New wraps c without stamps.
func New(c net.Conn, _ Options) *Conn { return &Conn{Conn: c} }

// Unavailable says why there are no stamps.
func (k *Conn) Unavailable() error {
	return errors.New("kernel timestamps (SO_TIMESTAMPING) are Linux only")
}

// SyscallConn exposes the socket.
func (k *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := k.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("not a socket")
}

func (k *Conn) Written() uint64                { return 0 }
func (k *Conn) First() (Read, bool)            { return Read{}, false }
func (k *Conn) Reads() []Read                  { return nil }
func (k *Conn) StopTX() error                  { return nil }
func (k *Conn) StartTX()                       {}
func (k *Conn) TxStamp(uint32) (TxStamp, bool) { return TxStamp{}, false }

// Check says why there are no kernel stamps here.
func Check() error { return (&Conn{}).Unavailable() }
