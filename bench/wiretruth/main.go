// Command wiretruth compares coldbench's records with a packet capture
// taken during their run (internal/wiretruth says how), prints every
// answered attempt's differences from the wire and a summary, and exits 1
// when an attempt's kernel-stamped first byte or start is further than
// --max-diff from the wire, or an attempt has no connection in the capture
// or no kernel stamps.
//
//	go run ./bench/wiretruth --records run.jsonl --pcap run.pcap
//
// scripts/wire-truth.sh takes the capture under a CPU hog and runs this.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/coldbench/coldbench/internal/wiretruth"
	"github.com/coldbench/coldbench/pkg/results"
)

func main() {
	records := flag.String("records", "", "coldbench records (JSONL)")
	pcap := flag.String("pcap", "", "the capture taken during their run (tcpdump -w, --time-stamp-precision=nano)")
	maxDiff := flag.Duration("max-diff", 200*time.Microsecond, "largest difference from the wire allowed for a kernel-stamped first byte or start")
	flag.Parse()
	if *records == "" || *pcap == "" {
		fmt.Fprintln(os.Stderr, "wiretruth: --records and --pcap are required")
		os.Exit(2)
	}
	set, err := results.ReadFiles(*records)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wiretruth:", err)
		os.Exit(2)
	}
	pkts, err := wiretruth.ReadCapture(*pcap)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wiretruth:", err)
		os.Exit(2)
	}
	v := wiretruth.Compare(set.Attempts, wiretruth.Connections(pkts), *maxDiff)
	v.Print(os.Stdout)
	if !v.OK() {
		os.Exit(1)
	}
}
