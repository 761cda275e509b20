package wiretruth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Packet is one TCP segment of the capture that carries data.
type Packet struct {
	at       time.Time
	src, dst netip.AddrPort
	payload  []byte // the first bytes of its payload (the capture's snap length)
}

// Conn is one TCP connection as the capture saw it: the client's data
// segments (requests) and the server's (replies), each kept once at the
// earliest time it was seen (with tcpdump -i any a segment shows on every
// interface it crosses: veth, bridge).
type Conn struct {
	client, server netip.AddrPort
	firstRequest   time.Time
	request        []byte // payload of the first request segment
	firstReply     time.Time
}

// ReadCapture reads a pcap file (microsecond or nanosecond stamps;
// Ethernet or Linux cooked v1 frames) and returns its data segments.
func ReadCapture(path string) ([]Packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var first gopacket.Decoder
	switch r.LinkType() {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	default:
		return nil, fmt.Errorf("%s: link type %v: want Ethernet or Linux cooked v1 (tcpdump -i IFACE, or -i any -y LINUX_SLL)", path, r.LinkType())
	}
	var out []Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		p := gopacket.NewPacket(data, first, gopacket.Default)
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok || len(tcp.Payload) == 0 {
			continue
		}
		var src, dst netip.Addr
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		case *layers.IPv6:
			src, _ = netip.AddrFromSlice(ip.SrcIP)
			dst, _ = netip.AddrFromSlice(ip.DstIP)
		default:
			continue
		}
		out = append(out, Packet{at: ci.Timestamp, payload: bytes.Clone(tcp.Payload),
			src: netip.AddrPortFrom(src, uint16(tcp.SrcPort)), dst: netip.AddrPortFrom(dst, uint16(tcp.DstPort))})
	}
}

// Connections groups the data segments into connections: a connection's
// client is the side whose first data segment is an HTTP request.
func Connections(pkts []Packet) []*Conn {
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].at.Before(pkts[j].at) })
	type key struct{ a, b netip.AddrPort }
	byKey := map[key]*Conn{}
	var out []*Conn
	for _, p := range pkts {
		k := key{p.src, p.dst}
		if p.dst.Compare(p.src) < 0 {
			k = key{p.dst, p.src}
		}
		c := byKey[k]
		if c == nil {
			if !bytes.HasPrefix(p.payload, []byte("GET ")) {
				continue // data before any request: not an exchange of ours
			}
			c = &Conn{client: p.src, server: p.dst, firstRequest: p.at, request: p.payload}
			byKey[k] = c
			out = append(out, c)
			continue
		}
		if p.src == c.server && c.firstReply.IsZero() {
			c.firstReply = p.at
		}
	}
	return out
}

// host is the Host header of a request's first segment ("" if none).
func host(req []byte) string {
	for _, line := range bytes.Split(req, []byte("\r\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Host: ")); ok {
			return string(v)
		}
	}
	return ""
}
