# Shared paths for coldbench's node set-up scripts. Sourced, not run.
COLDBENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CB_STATE=${COLDBENCH_STATE_DIR:-/var/lib/coldbench}
CB_RUN=${COLDBENCH_RUN_DIR:-/run/coldbench}
CB_ETC=${COLDBENCH_ETC_DIR:-/etc/coldbench}
CB_LOG=${COLDBENCH_LOG_DIR:-/var/log/coldbench}
CB_SOCK=$CB_RUN/containerd/containerd.sock
CB_PIDFILE=$CB_RUN/containerd.pid
CB_BIN=$COLDBENCH_ROOT/bin/coldbench
# Small helpers node-up compiles (crun-oci-compat).
CB_BINDIR=$CB_STATE/bin
# Built from the Go module proxy by scripts/build-runtimes.sh, cached by
# version outside the checkout: containerd 2.x (daemon, ctr, runc shim) and
# gVisor (runsc, its shim, coldbench's launcher for it).
CB_CACHE=${COLDBENCH_CACHE_DIR:-/var/cache/coldbench}
# Versions: config/versions.env (Go reads it too); the environment overrides.
_cb_versions() { local k v; while IFS='=' read -r k v; do
  case $k in ''|'#'*) continue ;; esac
  [ -n "${!k:-}" ] || printf -v "$k" '%s' "$v"
done <"$COLDBENCH_ROOT/config/versions.env"; }
_cb_versions
CB_CONTAINERD_BIN=$CB_CACHE/containerd/$CONTAINERD_VERSION/bin
CB_GVISOR_BIN=$CB_CACHE/gvisor/$GVISOR_VERSION/bin
# runc and crun from Debian; containerd is ours (above); gcc builds
# crun-oci-compat; tcpdump takes the wire-truth captures (issue 17).
CB_PACKAGES=(runc crun containernetworking-plugins iptables gcc libc6-dev tcpdump)

log() { printf '%s [coldbench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

containerd_running() {
  [ -f "$CB_PIDFILE" ] && kill -0 "$(cat "$CB_PIDFILE")" 2>/dev/null
}

# ctr (of coldbench's containerd release) against coldbench's containerd,
# CRI's namespace.
cb_ctr() { "$CB_CONTAINERD_BIN/ctr" --address "$CB_SOCK" -n k8s.io "$@"; }

# render FILE: a config template with coldbench's paths filled in (the lab
# renders the same templates with its own STATE/RUN/ETC).
render() {
  local state=${RENDER_STATE:-$CB_STATE} run=${RENDER_RUN:-$CB_RUN} etc=${RENDER_ETC:-$CB_ETC}
  sed -e "s#@STATE@#$state#g" -e "s#@RUN@#$run#g" -e "s#@ETC@#$etc#g" \
    -e "s#@CDBIN@#$CB_CONTAINERD_BIN#g" -e "s#@GVBIN@#$CB_GVISOR_BIN#g" -e "s#@CBBIN@#$CB_BINDIR#g" "$1"
}

# runsc_reap ROOT: force-deletes the gVisor sandboxes in runsc state dir ROOT
# (left without their shim when a containerd or shim was killed).
runsc_reap() {
  local root=$1 id
  [ -d "$root" ] && [ -x "$CB_GVISOR_BIN/runsc" ] || return 0
  for id in $("$CB_GVISOR_BIN/runsc" --root "$root" list -quiet 2>/dev/null || true); do
    "$CB_GVISOR_BIN/runsc" --root "$root" delete -force "$id" 2>/dev/null || true
  done
}
