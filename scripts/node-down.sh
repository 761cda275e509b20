#!/usr/bin/env bash
# Stops what scripts/node-up.sh started: removes coldbench's sandboxes, stops
# its containerd (by PID file) and the shims it spawned. Leaves the packages,
# config and image store (so the next node-up is fast). --purge also deletes
# the image store and state.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
purge=0
for a in "$@"; do case $a in --purge) purge=1 ;; --keep-images) ;; *) die "unknown flag $a (use --purge)";; esac; done

if containerd_running; then
  if [ -x "$CB_BIN" ]; then
    "$CB_BIN" clean --endpoint "unix://$CB_SOCK" || log "clean failed; stopping anyway"
  fi
  pid=$(cat "$CB_PIDFILE")
  log "stopping containerd (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
fi
rm -f "$CB_PIDFILE"
# Shims outlive containerd by design; ours carry our socket in their args.
for pid in $(pgrep -f "containerd-shim.*-address $CB_SOCK" || true); do
  kill "$pid" 2>/dev/null || true
done
# gVisor sandboxes left without their shim (clean normally removes them).
runsc_reap "$CB_RUN/runsc/k8s.io"
# Empty pod cgroups under coldbench's cgroup parent (/coldbench/pod<uid>):
# the runtimes make them and never remove them, and a teardown cut short
# leaves its own. rmdir removes only empty ones; deepest first.
for root in /sys/fs/cgroup/*/coldbench /sys/fs/cgroup/coldbench; do
  [ -d "$root" ] && find "$root" -mindepth 1 -depth -type d -name '*' -exec rmdir {} + 2>/dev/null || true
done
if [ $purge = 1 ]; then
  log "purging $CB_STATE and $CB_RUN"
  umount -R "$CB_STATE/containerd" 2>/dev/null || true
  umount -R "$CB_STATE/containerd2" 2>/dev/null || true
  rm -rf "$CB_STATE" "$CB_RUN"
  ip link del coldbench0 2>/dev/null || true
fi
log "stopped"
