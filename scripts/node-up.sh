#!/usr/bin/env bash
# Makes this machine ready for coldbench's node backend, idempotently:
# Debian packages (runc, crun, CNI plugins), containerd 2.x and gVisor built
# from the Go module proxy (cached, scripts/build-runtimes.sh), the crun
# hugetlb fix, CNI config, a containerd of coldbench's own (own config, root,
# socket; PID in $CB_PIDFILE) with runc, crun and runsc, the coldbench
# binary, and the function + pause images built by coldbench and imported.
# Run as root. Undo with scripts/node-down.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (containerd, mounts and CNI need it)"

# 1. Packages.
missing=()
for p in "${CB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"

# 1b. containerd 2.x and gVisor from the Go module proxy (≈ 6 min once, then
# cached), and crun's OCI-version adapter (scripts/crun-oci-compat.c).
"$COLDBENCH_ROOT/scripts/build-runtimes.sh"
mkdir -p "$CB_BINDIR"
cc -O2 -static -o "$CB_BINDIR/crun-oci-compat.new" "$COLDBENCH_ROOT/scripts/crun-oci-compat.c"
if cmp -s "$CB_BINDIR/crun-oci-compat.new" "$CB_BINDIR/crun-oci-compat"; then
  rm -f "$CB_BINDIR/crun-oci-compat.new"
else
  mv "$CB_BINDIR/crun-oci-compat.new" "$CB_BINDIR/crun-oci-compat"
fi

# 2. crun refuses hybrid cgroups while hugetlb belongs to the cgroup2 mount:
# give hugetlb a v1 hierarchy of its own.
if [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
  log "mounting the cgroup v1 hugetlb hierarchy (crun needs it on hybrid hosts)"
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi

# 3. Config files.
mkdir -p "$CB_STATE" "$CB_RUN/containerd" "$CB_ETC/cni/net.d" "$CB_LOG" "$CB_STATE/images"
render "$COLDBENCH_ROOT/config/containerd.toml" >"$CB_ETC/containerd.toml.new"
render "$COLDBENCH_ROOT/config/cni.conflist" >"$CB_ETC/cni/net.d/10-coldbench.conflist"
# Read by gVisor's shim at every sandbox start: no restart needed.
render "$COLDBENCH_ROOT/config/runsc.toml" >"$CB_ETC/runsc.toml"
config_changed=0
if ! cmp -s "$CB_ETC/containerd.toml.new" "$CB_ETC/containerd.toml" 2>/dev/null; then
  mv "$CB_ETC/containerd.toml.new" "$CB_ETC/containerd.toml"
  config_changed=1
else
  rm -f "$CB_ETC/containerd.toml.new"
fi

# 4. containerd.
if containerd_running && [ $config_changed = 1 ]; then
  log "containerd config changed: restarting"
  "$COLDBENCH_ROOT/scripts/node-down.sh" --keep-images
fi
if ! containerd_running; then
  log "starting containerd on $CB_SOCK (log: $CB_LOG/containerd.log)"
  rm -f "$CB_SOCK"
  setsid "$CB_CONTAINERD_BIN/containerd" --config "$CB_ETC/containerd.toml" >>"$CB_LOG/containerd.log" 2>&1 </dev/null &
  echo $! >"$CB_PIDFILE"
  for _ in $(seq 1 100); do
    [ -S "$CB_SOCK" ] && cb_ctr version >/dev/null 2>&1 && break
    containerd_running || die "containerd exited at start; see $CB_LOG/containerd.log"
    sleep 0.1
  done
  [ -S "$CB_SOCK" ] || die "containerd did not open $CB_SOCK in 10s; see $CB_LOG/containerd.log"
fi

# 5. coldbench itself, then the images it builds (no registry involved).
log "building coldbench into $CB_BIN"
version=$(cd "$COLDBENCH_ROOT" && git describe --always --dirty 2>/dev/null || echo dev)
commit=$(cd "$COLDBENCH_ROOT" && git rev-parse HEAD 2>/dev/null || true)
# Static, with the compile flags of coldbench's own image of itself and of the
# tests' builds (pkg/image BuildFunction): the compiled packages are one entry
# in Go's build cache; the link differs (it carries the -X stamps).
(cd "$COLDBENCH_ROOT" && CGO_ENABLED=0 go build -trimpath \
  -ldflags "-X github.com/coldbench/coldbench/pkg/bench.Version=$version -X github.com/coldbench/coldbench/pkg/bench.Commit=$commit" \
  -o "$CB_BIN" ./cmd/coldbench)
log "building function and pause images"
"$CB_BIN" image build --all --functions-dir "$COLDBENCH_ROOT/functions" \
  --work-dir "$CB_STATE/build" --output "$CB_STATE/images/coldbench-images.tar"
cb_ctr images import "$CB_STATE/images/coldbench-images.tar" >/dev/null
log "ready: containerd pid $(cat "$CB_PIDFILE"), socket unix://$CB_SOCK"
cb_ctr images ls -q | grep '^coldbench.local/' | sed 's/^/  image: /' >&2
