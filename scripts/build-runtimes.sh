#!/usr/bin/env bash
# Builds, from the Go module proxy, the containerd that the node backend and
# the lab run (2.x: the gVisor shim needs its bootstrap protocol) and gVisor,
# into a cache outside the checkout (skipped when present):
#   $CB_CACHE/gvisor/<ver>/bin/{runsc,containerd-shim-runsc-v1}
#   $CB_CACHE/gvisor/<ver>/bin/coldbench-runsc-shim (this checkout's
#     cmd/coldbench-runsc-shim: the runtime_path that starts gVisor's shim
#     without CAP_SYS_RESOURCE; rebuilt every run, replaced only if changed)
#   $CB_CACHE/containerd/<ver>/bin/{containerd,ctr,containerd-shim-runc-v2}
#   $CB_CACHE/cri-tools/<ver>/bin/crictl (only with BUILD_CRICTL=1: handy
#     for debugging a node, not needed by coldbench)
# All static (CGO_ENABLED=0). Idempotent; prints one "name seconds" line per
# build it ran. Env: COLDBENCH_CACHE_DIR (default /var/cache/coldbench),
# GVISOR_VERSION, CONTAINERD_VERSION, CRICTL_VERSION (defaults in lib.sh).
set -euo pipefail
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
source "$(dirname "$0")/lib.sh"
GVISOR_BIN=$CB_GVISOR_BIN
CONTAINERD_BIN=$CB_CONTAINERD_BIN
CRICTL_BIN=$CB_CACHE/cri-tools/$CRICTL_VERSION/bin

have() { local d=$1; shift; for f in "$@"; do [ -x "$d/$f" ] || return 1; done; }

# build DIR NAME PKG@VER...: go install into a temporary GOBIN, then move the
# binaries into DIR only once all built (a failed build leaves no half cache).
build() {
  local dir=$1 name=$2; shift 2
  local tmp; tmp=$(mktemp -d "${TMPDIR:-/tmp}/build-runtimes.XXXXXX")
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
tmp=$(mktemp "${TMPDIR:-/tmp}/coldbench-runsc-shim.XXXXXX")
(cd "$COLDBENCH_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$tmp" ./cmd/coldbench-runsc-shim) || { rm -f "$tmp"; exit 1; }
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

if [ "${BUILD_CRICTL:-0}" != 1 ]; then
  :
elif have "$CRICTL_BIN" crictl; then
  log "crictl $CRICTL_VERSION: cached in $CRICTL_BIN"
else
  build "$CRICTL_BIN" crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
fi
# sed reads all of it: head would close the pipe early and runsc dies of SIGPIPE (exit 141 under pipefail)
"$GVISOR_BIN/runsc" --version | sed -n 1p >&2
"$CONTAINERD_BIN/containerd" --version >&2
