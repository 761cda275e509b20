//go:build linux

package kstamp

import (
	"bufio"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// exchange is one request and reply over loopback with the moments the
// kernel's stamps must fall between, each a wall-clock read by the side
// that acted.
type exchange struct {
	beforeWrite, afterWrite int64 // the client around its request's write
	replyWrite              int64 // the server just before its reply's write
	read                    int64 // the client once its first read returned
}

// serve accepts one connection, reads the request (up to "\n"), and
// writes each reply part in turn, sending the wall clock just before each
// write; a part waits for a value on next (after the first).
func serve(t *testing.T, ln net.Listener, parts []string, next <-chan struct{}) <-chan int64 {
	t.Helper()
	stamps := make(chan int64, len(parts))
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
		for i, p := range parts {
			if i > 0 {
				<-next
			}
			stamps <- time.Now().UnixNano()
			if _, err := c.Write([]byte(p)); err != nil {
				return
			}
		}
	}()
	return stamps
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestConnStampsTheRequestAndTheFirstByte: on loopback the request's
// transmit stamps are taken inside its write, and the reply's first byte is
// stamped after the server wrote it and before coldbench's read returned.
// These orders hold for any load: the stamps are the kernel's.
func TestConnStampsTheRequestAndTheFirstByte(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatalf("this kernel gives no stamps (coldbench's CI kernel does): %v", err)
	}
	ln := listen(t)
	replied := serve(t, ln, []string{"HTTP/1.1 200 OK\r\n\r\nhello"}, nil)
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	k := New(raw, Options{TX: true})
	if err := k.Unavailable(); err != nil {
		t.Fatal(err)
	}
	var x exchange
	req := []byte("GET / HTTP/1.1\n")
	x.beforeWrite = time.Now().UnixNano()
	if _, err := k.Write(req); err != nil {
		t.Fatal(err)
	}
	x.afterWrite = time.Now().UnixNano()
	br := bufio.NewReader(k)
	if _, err := br.Peek(1); err != nil {
		t.Fatal(err)
	}
	x.read = time.Now().UnixNano()
	x.replyWrite = <-replied
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "HTTP/1.1 200 OK\r\n\r\nhello" {
		t.Fatalf("reply %q, %v: the stamped reads must deliver every byte in order", rest, err)
	}

	first, ok := k.First()
	if !ok || first.End != 1 {
		t.Fatalf("first read %+v (%v): want one byte", first, ok)
	}
	if s := int64(first.Stamp); s < x.replyWrite || s > x.read {
		t.Errorf("receive stamp %d: want between the server's write (%d) and the read's return (%d)", s, x.replyWrite, x.read)
	}
	if k.Written() != uint64(len(req)) {
		t.Errorf("written %d, want %d", k.Written(), len(req))
	}
	tx, ok := k.TxStamp(uint32(len(req) - 1))
	if !ok {
		t.Fatal("no transmit stamp for the request")
	}
	if s := int64(tx.Stamp); s < x.beforeWrite || s > x.afterWrite {
		t.Errorf("transmit stamp %d (kind %d): want inside the write, [%d, %d]", s, tx.Kind, x.beforeWrite, x.afterWrite)
	}
	if tx.Stamp >= first.Stamp {
		t.Errorf("transmit stamp %d not before the reply's receive stamp %d", tx.Stamp, first.Stamp)
	}
	if _, ok := k.TxStamp(uint32(len(req))); ok {
		t.Error("a stamp for a key no write ended at")
	}
}

// TestConnLogsEveryRead: with LogReads each read has its stamp and the
// offset it ended at, so StampAt finds the read that delivered a byte.
func TestConnLogsEveryRead(t *testing.T) {
	ln := listen(t)
	next := make(chan struct{})
	replied := serve(t, ln, []string{"A", "BB"}, next)
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	k := New(raw, Options{LogReads: true})
	if _, err := k.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	var got string
	var writes []int64
	for len(got) < 3 {
		n, err := k.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += string(buf[:n])
		writes = append(writes, <-replied)
		if len(got) == 1 {
			next <- struct{}{} // "BB" only once "A" was read: two reads
		}
	}
	reads := k.Reads()
	if got != "ABB" || len(reads) != 2 || reads[0].End != 1 || reads[1].End != 3 {
		t.Fatalf("read %q as %+v: want \"A\" then \"BB\"", got, reads)
	}
	for i, r := range reads {
		if int64(r.Stamp) < writes[i] || r.Stamp.IsZero() || int64(r.Stamp) > r.User.UnixNano() {
			t.Errorf("read %d: stamp %d, server wrote at %d, read returned at %d", i, r.Stamp, writes[i], r.User.UnixNano())
		}
	}
	for off, want := range map[int64]int{0: 0, 1: 1, 2: 1} {
		if r, ok := StampAt(reads, off); !ok || r != reads[want] {
			t.Errorf("StampAt(%d) = %+v, %v: want read %d", off, r, ok, want)
		}
	}
	if _, ok := StampAt(reads, 3); ok {
		t.Error("StampAt past the last byte read found a read")
	}
}

// TestConnWithoutSocket passes a connection the kernel cannot stamp
// through, saying why.
func TestConnWithoutSocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	k := New(a, Options{TX: true, LogReads: true})
	if k.Unavailable() == nil {
		t.Fatal("a pipe was taken for a stamped socket")
	}
	go b.Write([]byte("xy"))
	buf := make([]byte, 4)
	if n, err := k.Read(buf); err != nil || string(buf[:n]) != "xy" {
		t.Fatalf("read %q, %v: want the bytes passed through", buf[:n], err)
	}
	if _, ok := k.First(); ok {
		t.Error("an unstamped connection reports a first read")
	}
	if _, ok := k.TxStamp(0); ok {
		t.Error("an unstamped connection reports a transmit stamp")
	}
}

// readFixture reads testdata/NAME: a line "want N" (the stamp, or key,
// kind and stamp) and a line of hex (a recvmsg's control bytes as this
// host's kernel wrote them: go run ./pkg/kstamp/testdata/capture).
func readFixture(t *testing.T, name string) ([]string, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "want ") {
		t.Fatalf("%s: want two lines, \"want …\" and the hex", name)
	}
	oob, err := hex.DecodeString(lines[1])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.TrimPrefix(lines[0], "want ")), oob
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestParseCapturedControlMessages parses the control bytes captured from
// this machine's kernel: a receive stamp, a transmit stamp (SCHED and SND)
// of a 15-byte write, and the ways they are refused.
func TestParseCapturedControlMessages(t *testing.T) {
	want, oob := readFixture(t, "rx.hex")
	if s, ok := ParseRX(oob); !ok || int64(s) != atoi(t, want[0]) {
		t.Errorf("rx: %d, %v: want %s", s, ok, want[0])
	}
	if _, ok := ParseRX(oob[:len(oob)-8]); ok {
		t.Error("rx: a truncated scm_timestamping was read")
	}
	if _, ok := ParseTX(oob); ok {
		t.Error("rx bytes read as a transmit stamp (no sock_extended_err)")
	}
	for _, name := range []string{"tx-sched.hex", "tx-snd.hex"} {
		want, oob := readFixture(t, name)
		got, ok := ParseTX(oob)
		if !ok || int64(got.Key) != atoi(t, want[0]) || int64(got.Kind) != atoi(t, want[1]) || int64(got.Stamp) != atoi(t, want[2]) {
			t.Errorf("%s: %+v, %v: want key %s kind %s stamp %s", name, got, ok, want[0], want[1], want[2])
		}
		// The same message from an ICMP error (origin 2) is not a stamp.
		icmp := append([]byte(nil), oob...)
		off := recvErrOffset(t, icmp)
		icmp[off+4] = unix.SO_EE_ORIGIN_ICMP
		if _, ok := ParseTX(icmp); ok {
			t.Errorf("%s: an ICMP error read as a transmit stamp", name)
		}
	}
	if _, ok := ParseRX(nil); ok {
		t.Error("no control message read as a stamp")
	}
}

// recvErrOffset finds the sock_extended_err's data in oob.
func recvErrOffset(t *testing.T, oob []byte) int {
	t.Helper()
	pos := 0
	for rest := oob; len(rest) > 0; {
		h, _, next, err := unix.ParseOneSocketControlMessage(rest)
		if err != nil {
			t.Fatal(err)
		}
		if h.Type == unix.IP_RECVERR || h.Type == unix.IPV6_RECVERR {
			return pos + unix.CmsgLen(0) // the data follows its header
		}
		pos += len(rest) - len(next)
		rest = next
	}
	t.Fatal("no IP_RECVERR message")
	return 0
}
