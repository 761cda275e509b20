//go:build linux

package kstamp

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// scmTimestampingLen: struct scm_timestamping, three struct timespec of a
// 64-bit kernel (SO_TIMESTAMPING_OLD on 64-bit is the 64-bit layout).
const scmTimestampingLen = 48

// sockExtendedErrLen: struct sock_extended_err.
const sockExtendedErrLen = 16

// ParseRX returns the software receive stamp (ts[0]) in a recvmsg's
// control messages; false when there is none (the kernel stamps no segment
// that arrived before stamping was on, nor one on a refused socket).
func ParseRX(oob []byte) (Stamp, bool) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPING {
			return timespec(data)
		}
		oob = rest
	}
	return 0, false
}

// ParseTX returns the transmit stamp in one error-queue message's control
// messages: SCM_TIMESTAMPING (the time) and IP_RECVERR or IPV6_RECVERR (a
// sock_extended_err whose origin is SO_EE_ORIGIN_TIMESTAMPING: the kind in
// ee_info, the key in ee_data). False for anything else (an ICMP error).
func ParseTX(oob []byte) (TxStamp, bool) {
	var t TxStamp
	var haveTime, haveErr bool
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return TxStamp{}, false
		}
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPING:
			t.Stamp, haveTime = timespec(data)
		case (h.Level == unix.SOL_IP && h.Type == unix.IP_RECVERR) || (h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_RECVERR):
			if len(data) < sockExtendedErrLen || data[4] != unix.SO_EE_ORIGIN_TIMESTAMPING {
				return TxStamp{}, false
			}
			t.Kind = binary.NativeEndian.Uint32(data[8:12])
			t.Key = binary.NativeEndian.Uint32(data[12:16])
			haveErr = true
		}
		oob = rest
	}
	return t, haveTime && haveErr
}

// timespec reads ts[0] of a struct scm_timestamping.
func timespec(data []byte) (Stamp, bool) {
	if len(data) < scmTimestampingLen {
		return 0, false
	}
	sec := int64(binary.NativeEndian.Uint64(data[0:8]))
	nsec := int64(binary.NativeEndian.Uint64(data[8:16]))
	if sec == 0 && nsec == 0 {
		return 0, false
	}
	return Stamp(sec*1e9 + nsec), true
}
