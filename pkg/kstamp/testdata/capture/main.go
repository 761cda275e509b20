// Command capture writes pkg/kstamp's parse fixtures (../rx.hex,
// ../tx-sched.hex, ../tx-snd.hex) from one exchange over loopback: the
// control bytes of the reply's first read and of the request's transmit
// stamps, as this host's kernel writes them, each with the values a parser
// must find ("want STAMP" or "want KEY KIND STAMP"). Run from the
// repository: go run ./pkg/kstamp/testdata/capture
package main

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/coldbench/coldbench/pkg/kstamp"
)

const dir = "pkg/kstamp/testdata"

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b := make([]byte, 64)
		c.Read(b)
		c.Write([]byte("reply"))
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fatal(err)
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		fatal(err)
	}
	flags := unix.SOF_TIMESTAMPING_RX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE | unix.SOF_TIMESTAMPING_OPT_TSONLY |
		unix.SOF_TIMESTAMPING_TX_SCHED | unix.SOF_TIMESTAMPING_TX_SOFTWARE | unix.SOF_TIMESTAMPING_OPT_ID | unix.SOF_TIMESTAMPING_OPT_ID_TCP
	rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPING, flags) })
	if err != nil {
		fatal(err)
	}
	if _, err := c.Write([]byte("GET / HTTP/1.1\n")); err != nil { // 15 bytes: key 14
		fatal(err)
	}
	var oob [128]byte
	buf := make([]byte, 1)
	var oobn int
	rc.Read(func(fd uintptr) bool {
		_, oobn, _, _, err = unix.Recvmsg(int(fd), buf, oob[:], 0)
		return err != unix.EAGAIN
	})
	s, ok := kstamp.ParseRX(oob[:oobn])
	if !ok {
		fatal("no receive stamp")
	}
	write("rx.hex", fmt.Sprint(s), oob[:oobn])
	seen := map[uint32]bool{}
	rc.Control(func(fd uintptr) {
		for {
			_, n, _, _, err := unix.Recvmsg(int(fd), nil, oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			tx, ok := kstamp.ParseTX(oob[:n])
			if !ok || seen[tx.Kind] || tx.Kind == kstamp.TxAck {
				continue
			}
			seen[tx.Kind] = true
			name := map[uint32]string{kstamp.TxSched: "tx-sched.hex", kstamp.TxSnd: "tx-snd.hex"}[tx.Kind]
			write(name, fmt.Sprint(tx.Key, tx.Kind, int64(tx.Stamp)), oob[:n])
		}
	})
	if !seen[kstamp.TxSched] || !seen[kstamp.TxSnd] {
		fatalf("captured kinds %v: want SCHED and SND", seen)
	}
}

func write(name, want string, oob []byte) {
	body := "want " + want + "\n" + hex.EncodeToString(oob) + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		fatal(err)
	}
	fmt.Println("wrote", filepath.Join(dir, name))
}

func fatal(v ...any) { fmt.Fprintln(os.Stderr, append([]any{"capture:"}, v...)...); os.Exit(1) }

func fatalf(format string, v ...any) { fatal(fmt.Sprintf(format, v...)) }
