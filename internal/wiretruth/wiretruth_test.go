package wiretruth

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/coldbench/coldbench/pkg/results"
)

// segment is one data segment to write into a test capture.
type segment struct {
	at       time.Time
	src, dst string // IP:PORT
	payload  string
}

// writeCapture writes segs as a nanosecond pcap of Ethernet frames.
func writeCapture(t *testing.T, segs []segment) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		sh, sp, _ := net.SplitHostPort(s.src)
		dh, dp, _ := net.SplitHostPort(s.dst)
		port := func(p string) layers.TCPPort {
			v, _ := net.LookupPort("tcp", p)
			return layers.TCPPort(v)
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(sh).To4(), DstIP: net.ParseIP(dh).To4()}
		tcp := &layers.TCP{SrcPort: port(sp), DstPort: port(dp), PSH: true, ACK: true, Window: 512}
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, tcp, gopacket.Payload(s.payload)); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: s.at, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func verdictOf(t *testing.T, segs []segment, attempts []results.Attempt) Verdict {
	t.Helper()
	pkts, err := ReadCapture(writeCapture(t, segs))
	if err != nil {
		t.Fatal(err)
	}
	return Compare(attempts, Connections(pkts), 200*time.Microsecond)
}

// On the node backend an attempt's first byte is checked against the first
// reply on its pod's address; the start (a CRI call) is not a request's.
func TestNodeFirstByteAgainstTheWire(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	ms := func(v float64) time.Duration { return time.Duration(v * 1e6) }
	segs := []segment{
		// A probe answered at 900 ms, a later one at 902 ms (ignored),
		// another pod's reply in between.
		{at: t0.Add(ms(899.9)), src: "10.213.0.5:41000", dst: "10.213.0.9:8080", payload: "GET / HTTP/1.1\r\nHost: 10.213.0.9:8080\r\n\r\n"},
		{at: t0.Add(ms(900)), src: "10.213.0.9:8080", dst: "10.213.0.5:41000", payload: "HTTP/1.1 200 OK\r\n"},
		{at: t0.Add(ms(900.5)), src: "10.213.0.5:41002", dst: "10.213.0.7:8080", payload: "GET / HTTP/1.1\r\n\r\n"},
		{at: t0.Add(ms(900.6)), src: "10.213.0.7:8080", dst: "10.213.0.5:41002", payload: "HTTP/1.1 200 OK\r\n"},
		{at: t0.Add(ms(901.9)), src: "10.213.0.5:41001", dst: "10.213.0.9:8080", payload: "GET / HTTP/1.1\r\n\r\n"},
		{at: t0.Add(ms(902)), src: "10.213.0.9:8080", dst: "10.213.0.5:41001", payload: "HTTP/1.1 200 OK\r\n"},
	}
	a := results.Attempt{Platform: "node", Runtime: "runc", Scale: 1, OK: true, Start: t0, Timestamps: results.TimestampsKernel,
		TTFBNS: ms(900.03).Nanoseconds(), TotalNS: ms(901).Nanoseconds(),
		Phases: []results.Phase{{Name: results.PhaseFirstByte, OffsetNS: ms(900.03).Nanoseconds()}, {Name: results.PhaseUserFirstByte, OffsetNS: ms(903).Nanoseconds()}}}
	a.Cold.Address = "10.213.0.9:8080"
	v := verdictOf(t, segs, []results.Attempt{a})
	if !v.OK() || len(v.checks) != 1 || v.checks[0].first != 30*time.Microsecond || v.checks[0].userFirst != 3*time.Millisecond || v.checks[0].hasStart {
		t.Fatalf("verdict %+v", v.checks)
	}
	var out strings.Builder
	v.Print(&out)
	if !strings.Contains(out.String(), "+30.0") || !strings.Contains(out.String(), "+3000.0") || !strings.Contains(out.String(), "verdict: every attempt within") {
		t.Errorf("printed:\n%s", out.String())
	}

	// 0.3 ms off the wire, or user-space stamps, or no connection: failed.
	late := a
	late.TTFBNS = ms(900.3).Nanoseconds()
	if v := verdictOf(t, segs, []results.Attempt{late}); v.OK() {
		t.Error("a first byte 0.3 ms after the wire passed")
	}
	user := a
	user.Timestamps, user.TimestampsNote = results.TimestampsUser, "request 1 of 1: no stamp"
	if v := verdictOf(t, segs, []results.Attempt{user}); v.OK() || !strings.Contains(v.checks[0].problem, "not kernel-stamped") {
		t.Errorf("a user-stamped attempt passed: %+v", v.checks)
	}
	gone := a
	gone.Cold.Address = "10.213.0.44:8080"
	if v := verdictOf(t, segs, []results.Attempt{gone}); v.OK() || v.checks[0].problem != "no connection in the capture" {
		t.Errorf("an attempt without its connection passed: %+v", v.checks)
	}
	if v := verdictOf(t, segs, nil); v.OK() {
		t.Error("no attempt at all passed")
	}
}

// On Knative the request's Host finds the connection; the start and the
// step's skew are checked against the requests' segments too.
func TestKnativeStartAndSkewAgainstTheWire(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	us := func(v float64) time.Duration { return time.Duration(v * 1e3) }
	req := func(h string) string { return "GET / HTTP/1.1\r\nHost: " + h + "\r\nUser-Agent: coldbench\r\n\r\n" }
	segs := []segment{
		{at: t0.Add(us(10)), src: "10.22.0.1:50000", dst: "10.22.0.3:8000", payload: req("a.ns.example.com")},
		{at: t0.Add(us(60)), src: "10.22.0.1:50001", dst: "10.22.0.3:8000", payload: req("b.ns.example.com")},
		{at: t0.Add(us(2_000_000)), src: "10.22.0.3:8000", dst: "10.22.0.1:50001", payload: "HTTP/1.1 200 OK\r\n"},
		{at: t0.Add(us(2_500_000)), src: "10.22.0.3:8000", dst: "10.22.0.1:50000", payload: "HTTP/1.1 200 OK\r\n"},
	}
	mk := func(inst int, h string, startUS, firstUS float64) results.Attempt {
		a := results.Attempt{Platform: "knative", Runtime: "runc", Scale: 2, Instance: inst, OK: true, Timestamps: results.TimestampsKernel,
			Start: t0.Add(us(startUS)), ReleaseSkewNS: us(45).Nanoseconds(), ReleaseSkewUserNS: us(3).Nanoseconds()}
		a.TTFBNS = (us(firstUS) - us(startUS)).Nanoseconds()
		a.TotalNS = a.TTFBNS + 1000
		a.Phases = []results.Phase{{Name: results.PhaseUserStart, OffsetNS: -us(400).Nanoseconds()}}
		a.Cold.Address = "127.0.0.1:31080 Host: " + h
		return a
	}
	v := verdictOf(t, segs, []results.Attempt{mk(0, "a.ns.example.com", 15, 2_500_005), mk(1, "b.ns.example.com", 58, 2_000_010)})
	if !v.OK() {
		t.Fatalf("verdict %+v", v.checks)
	}
	if c := v.checks[0]; !c.hasStart || c.start != us(5) || c.userStart != us(-395) || c.first != us(5) {
		t.Errorf("a: %+v", c)
	}
	if len(v.skews) != 1 || v.skews[0].wire != us(50) || v.skews[0].record != us(45) || v.skews[0].user != us(3) {
		t.Errorf("skews %+v: want the wire's 50 µs beside the record's 45 and 3", v.skews)
	}
	if v := verdictOf(t, segs, []results.Attempt{mk(0, "a.ns.example.com", 400, 2_500_005)}); v.OK() {
		t.Error("a start 0.39 ms after its request's segment passed")
	}
}
