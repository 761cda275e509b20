# Shared paths for coldbench's node set-up scripts. Sourced, not run.
COLDBENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CB_STATE=${COLDBENCH_STATE_DIR:-/var/lib/coldbench}
CB_RUN=${COLDBENCH_RUN_DIR:-/run/coldbench}
CB_ETC=${COLDBENCH_ETC_DIR:-/etc/coldbench}
CB_LOG=${COLDBENCH_LOG_DIR:-/var/log/coldbench}
CB_SOCK=$CB_RUN/containerd/containerd.sock
CB_PIDFILE=$CB_RUN/containerd.pid
CB_BIN=$COLDBENCH_ROOT/bin/coldbench
CB_PACKAGES=(containerd runc crun containernetworking-plugins iptables)

log() { printf '%s [coldbench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

containerd_running() {
  [ -f "$CB_PIDFILE" ] && kill -0 "$(cat "$CB_PIDFILE")" 2>/dev/null
}

# ctr against coldbench's containerd, CRI's namespace.
cb_ctr() { ctr --address "$CB_SOCK" -n k8s.io "$@"; }
