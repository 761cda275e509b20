#!/usr/bin/env bash
# The wire-truth check of issue 17 on the node backend, for anyone to run
# (CI runs the same check as pkg/platform/node's TestWireTruthUnderACPUHog):
# tcpdump records the pods' bridge while a CPU hog keeps every core busy
# and coldbench cold-starts runc and crun at N = 1 and 3; then
# bench/wiretruth compares every record's first byte with the first reply
# segment of its connection, for the kernel's stamps (the records') and
# coldbench's user-space ones (user_first_byte), and exits 1 when one of
# the kernel's is more than 0.2 ms off.
# Run as root after scripts/node-up.sh.
#
# usage: scripts/wire-truth.sh [OUTDIR] [coldbench run flags…]
#   OUTDIR (default results/wire-truth) gets node.pcap, node.jsonl and
#   node.txt (the comparison); flags replace the default cells
#   (--runtimes runc,crun --scales 1,3 --iterations 5).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (tcpdump needs it)"
command -v tcpdump >/dev/null || die "tcpdump is missing: scripts/node-up.sh installs it"
[ -x "$CB_BIN" ] || die "$CB_BIN is missing: run scripts/node-up.sh (or make build)"
out=$(realpath -m "${1:-results/wire-truth}")
shift || true
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
cells=("$@")
[ ${#cells[@]} -gt 0 ] || cells=(--runtimes runc,crun --scales 1,3 --iterations 5)
mkdir -p "$out"
rm -f "$out/node.jsonl"

# The CNI bridge exists once a first pod ran: one untimed start makes it.
ip link show coldbench0 >/dev/null 2>&1 ||
  "$CB_BIN" run --platform node --runtimes runc --scales 1 --iterations 1 --warmups 0 --footprint=false -o /dev/null >/dev/null

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
tcpdump -i coldbench0 -n -U -s 256 --time-stamp-precision=nano -w "$out/node.pcap" tcp 2>"$out/tcpdump.log" &
tcpdump_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$out/tcpdump.log" && break; sleep 0.1; done
grep -q 'listening on' "$out/tcpdump.log" || die "tcpdump did not start: $(cat "$out/tcpdump.log")"
for _ in $(seq "$(nproc)"); do (while :; do :; done) & pids+=($!); done
log "capturing coldbench0, $(nproc) CPU hogs running, load $(cut -d' ' -f1 /proc/loadavg)"
"$CB_BIN" run --platform node --warmups 1 --footprint=false "${cells[@]}" -o "$out/node.jsonl" >"$out/run.txt"
kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()
# tcpdump, starved by the hogs, may still be reading the kernel's buffer:
# stop it once its file (-U: written packet by packet) has not grown for
# half a second (at most 20 s).
last=-1
for _ in $(seq 40); do
  size=$(stat -c %s "$out/node.pcap"); [ "$size" = "$last" ] && break; last=$size; sleep 0.5
done
kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" || true
cd "$COLDBENCH_ROOT"
go run ./bench/wiretruth --records "$out/node.jsonl" --pcap "$out/node.pcap" | tee "$out/node.txt"
