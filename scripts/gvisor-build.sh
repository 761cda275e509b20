#!/usr/bin/env bash
# Builds, from the Go module proxy, what the node backend needs to run gVisor
# through CRI, into a cache outside the checkout (skipped when present):
#   $CB_CACHE/gvisor/<ver>/bin/{runsc,containerd-shim-runsc-v1}
#   $CB_CACHE/gvisor/<ver>/bin/coldbench-runsc-shim (this checkout's
#     cmd/coldbench-runsc-shim: the runtime_path that starts gVisor's shim
#     without CAP_SYS_RESOURCE; rebuilt every run, replaced only if changed)
#   $CB_CACHE/containerd/<ver>/bin/{containerd,ctr,containerd-shim-runc-v2}
#   $CB_CACHE/cri-tools/<ver>/bin/crictl
# All static (CGO_ENABLED=0). Idempotent; prints one "name seconds" line per
# build it ran. Env: COLDBENCH_CACHE_DIR (default /var/cache/coldbench),
# GVISOR_VERSION, CONTAINERD_VERSION, CRICTL_VERSION, GVISOR_BUILD_CRICTL=0
# to skip crictl.
set -euo pipefail
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
CB_CACHE=${COLDBENCH_CACHE_DIR:-/var/cache/coldbench}
GVISOR_VERSION=${GVISOR_VERSION:-v0.0.0-20260905035102-160fafc42237}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}
GVISOR_BIN=$CB_CACHE/gvisor/$GVISOR_VERSION/bin
CONTAINERD_BIN=$CB_CACHE/containerd/$CONTAINERD_VERSION/bin
CRICTL_BIN=$CB_CACHE/cri-tools/$CRICTL_VERSION/bin

log() { printf '%s [gvisor-build] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
have() { local d=$1; shift; for f in "$@"; do [ -x "$d/$f" ] || return 1; done; }

# build DIR NAME PKG@VER...: go install into a temporary GOBIN, then move the
# binaries into DIR only once all built (a failed build leaves no half cache).
build() {
  local dir=$1 name=$2; shift 2
  local tmp; tmp=$(mktemp -d "${TMPDIR:-/tmp}/gvisor-build.XXXXXX")
  log "building $name: $*"
  local t0=$SECONDS
  if ! CGO_ENABLED=0 GOBIN=$tmp GOFLAGS="${GOFLAGS:-} -trimpath" go install "$@"; then
    rm -rf "$tmp"; log "error: building $name failed"; return 1
  fi
  mkdir -p "$dir"
  # gVisor's shim package is gvisor.dev/gvisor/shim: containerd finds a
  # runtime type io.containerd.runsc.v1 as containerd-shim-runsc-v1 on PATH.
  [ -f "$tmp/shim" ] && mv "$tmp/shim" "$tmp/containerd-shim-runsc-v1"
  mv "$tmp"/* "$dir/"
  rmdir "$tmp"
  echo "$name $((SECONDS - t0))"
}

if have "$GVISOR_BIN" runsc containerd-shim-runsc-v1; then
  log "gVisor $GVISOR_VERSION: cached in $GVISOR_BIN"
else
  build "$GVISOR_BIN" gvisor \
    "gvisor.dev/gvisor/runsc@$GVISOR_VERSION" "gvisor.dev/gvisor/shim@$GVISOR_VERSION"
fi

# coldbench's own launcher for gVisor's shim: cheap, so always rebuilt from
# this checkout (Go's build cache), and installed only when it changed.
COLDBENCH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp "${TMPDIR:-/tmp}/coldbench-runsc-shim.XXXXXX")
(cd "$COLDBENCH_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$tmp" ./cmd/coldbench-runsc-shim)
if cmp -s "$tmp" "$GVISOR_BIN/coldbench-runsc-shim"; then
  rm -f "$tmp"
else
  log "installing coldbench-runsc-shim into $GVISOR_BIN"
  chmod 755 "$tmp" && mv "$tmp" "$GVISOR_BIN/coldbench-runsc-shim"
fi

if have "$CONTAINERD_BIN" containerd ctr containerd-shim-runc-v2; then
  log "containerd $CONTAINERD_VERSION: cached in $CONTAINERD_BIN"
else
  m=github.com/containerd/containerd/v2
  build "$CONTAINERD_BIN" containerd \
    "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/ctr@$CONTAINERD_VERSION" \
    "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
fi

if [ "${GVISOR_BUILD_CRICTL:-1}" = 0 ]; then
  :
elif have "$CRICTL_BIN" crictl; then
  log "crictl $CRICTL_VERSION: cached in $CRICTL_BIN"
else
  build "$CRICTL_BIN" crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
fi
"$GVISOR_BIN/runsc" --version | head -1 >&2
"$CONTAINERD_BIN/containerd" --version >&2
