# Shared settings of coldbench's lab (a single-node Kubernetes + Knative
# Serving + CoreDNS + Traefik on this machine). Sourced, not run.
# shellcheck shell=bash
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../scripts/lib.sh"
LAB_DIR=$COLDBENCH_ROOT/lab
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

# Versions. A cache directory is keyed by each, so changing one rebuilds only it.
K8S_VERSION=v1.34.4
K8S_STAGING_VERSION=v0.34.4
KNATIVE_VERSION=v0.42.2     # Knative Serving 1.15
COREDNS_VERSION=v1.14.7
TRAEFIK_VERSION=v3.6.12
LAB_PACKAGES=(etcd-server runc crun containernetworking-plugins iptables conntrack socat openssl)

# Builds live outside the checkout; GOMODCACHE and GOCACHE stay at Go's defaults.
LAB_CACHE=${COLDBENCH_LAB_CACHE:-/var/cache/coldbench/lab}
LAB_LOGS=$LAB_CACHE/logs
K8S_BIN=$LAB_CACHE/kubernetes-$K8S_VERSION/bin
KNATIVE_BIN=$LAB_CACHE/knative-serving-$KNATIVE_VERSION/bin
KNATIVE_YAML=$LAB_CACHE/knative-serving-$KNATIVE_VERSION/yaml
COREDNS_BIN=$LAB_CACHE/coredns-$COREDNS_VERSION/bin
TRAEFIK_BIN=$LAB_CACHE/traefik-$TRAEFIK_VERSION/bin
KNATIVE_COMPONENTS=(controller activator autoscaler webhook queue)
knative_image() { echo "dev.local/knative/$1:$KNATIVE_VERSION"; }

# Running state.
LAB_STATE=${COLDBENCH_LAB_STATE:-$CB_STATE/lab}   # certs, etcd data, kubelet root, kubeconfigs
LAB_RUN=$CB_RUN/lab                               # PID files
LAB_LOG=$CB_LOG/lab                               # daemon logs
LAB_PKI=$LAB_STATE/pki
LAB_KUBECONFIG=$LAB_STATE/kubeconfig              # admin, for users and tests
LAB_KUBELET_DIR=$LAB_STATE/kubelet
LAB_ETCD_DIR=$LAB_STATE/etcd
LAB_CGROUP_ROOT=coldbench-lab                      # the kubelet's cgroup root, in every hierarchy
LAB_CRI_SOCK=$LAB_RUN/containerd/containerd.sock  # the lab's own containerd (see up.sh)

# Addresses: everything stays on this machine. The node IP is this machine's
# own interface address (pods reach it through their bridge's gateway);
# override with COLDBENCH_LAB_NODE_IP.
LAB_NODE_NAME=coldbench-lab
LAB_SERVICE_CIDR=10.214.0.0/16
LAB_KUBERNETES_SVC_IP=10.214.0.1
LAB_POD_CIDR=10.213.0.0/16                        # coldbench's CNI bridge (config/cni.conflist)
LAB_APISERVER_PORT=6443
LAB_ETCD_CLIENT=http://127.0.0.1:2379
LAB_ETCD_PEER=http://127.0.0.1:2380
LAB_INGRESS_PORT=${COLDBENCH_LAB_INGRESS_PORT:-31080}
LAB_DOMAIN=lab.coldbench.local
LAB_CLUSTER_DOMAIN=cluster.local

lab_node_ip() {
  if [ -n "${COLDBENCH_LAB_NODE_IP:-}" ]; then echo "$COLDBENCH_LAB_NODE_IP"; return; fi
  local dev ip
  # The interface of the default route (a routing-table lookup, nothing is sent)...
  dev=$(ip -4 route show default 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="dev"){print $(i+1); exit}}')
  if [ -n "$dev" ]; then
    ip=$(ip -4 -o addr show dev "$dev" scope global | awk '{split($4,a,"/"); print a[1]; exit}')
  fi
  # ...else the first global address that is not a bridge of ours.
  if [ -z "${ip:-}" ]; then
    ip=$(ip -4 -o addr show scope global | awk '$2!="coldbench0" && $2!~/^(cni|veth)/ {split($4,a,"/"); print a[1]; exit}')
  fi
  [ -n "${ip:-}" ] || die "no IPv4 interface address for the node (set COLDBENCH_LAB_NODE_IP)"
  echo "$ip"
}

kctl() { "$K8S_BIN/kubectl" --kubeconfig "$LAB_KUBECONFIG" "$@"; }

# PID-file helpers: every lab daemon has $LAB_RUN/<name>.pid.
lab_pid() { [ -f "$LAB_RUN/$1.pid" ] && cat "$LAB_RUN/$1.pid"; }
lab_running() {
  local pid
  pid=$(lab_pid "$1") || return 1
  local state
  state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [[ -n $state && $state != Z* ]]   # a zombie is not running
}
# lab_start NAME CMD...: starts CMD in its own session, logging to $LAB_LOG/NAME.log.
lab_start() {
  local name=$1; shift
  if lab_running "$name"; then log "$name already running (pid $(lab_pid "$name"))"; return 0; fi
  mkdir -p "$LAB_RUN" "$LAB_LOG"
  # 8>&-: daemons must not inherit lab_lock's descriptor (they would hold the lock).
  setsid "$@" >>"$LAB_LOG/$name.log" 2>&1 </dev/null 8>&- &
  echo $! >"$LAB_RUN/$name.pid"
  log "started $name (pid $!, log $LAB_LOG/$name.log)"
}
# lab_stop NAME [TIMEOUT_S]: SIGTERM, then SIGKILL after the timeout.
lab_stop() {
  local name=$1 timeout=${2:-15} pid
  pid=$(lab_pid "$name") || { return 0; }
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((timeout * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) ignored SIGTERM: killing"; kill -9 "$pid" 2>/dev/null || true
      # Gone, not just signalled: a start right after needs its ports.
      for _ in $(seq 1 100); do [[ $(ps -o stat= -p "$pid" 2>/dev/null) =~ ^[^Z] ]] || break; sleep 0.1; done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$LAB_RUN/$name.pid"
}

# The lab's daemons, in start order.
LAB_DAEMONS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns traefik)

# lab_cmd NAME: the command line of lab daemon NAME, into the array LAB_CMD.
# The one place it is written: lab/up.sh starts every daemon with it and
# lab/ctl.sh restarts one with it. Their configuration files are written by
# up.sh (ctl.sh needs a lab up.sh brought up once).
lab_cmd() {
  local ip=${NODE_IP:-} P=$LAB_PKI
  [ -n "$ip" ] || ip=$(cat "$LAB_RUN/node-ip" 2>/dev/null) || ip=$(lab_node_ip)
  case $1 in
  containerd)
    LAB_CMD=("$CB_CONTAINERD_BIN/containerd" --config "$LAB_STATE/containerd.toml") ;;
  etcd)
    # (Debian's etcd 3.4 lacks on-demand watch progress: without frequent
    # progress notifications the apiserver's watch cache lags behind and new
    # watches fail with "Too large resource version", so informers relist and
    # fall behind.)
    LAB_CMD=(etcd --name lab --data-dir "$LAB_ETCD_DIR"
      --listen-client-urls "$LAB_ETCD_CLIENT" --advertise-client-urls "$LAB_ETCD_CLIENT"
      --listen-peer-urls "$LAB_ETCD_PEER" --initial-advertise-peer-urls "$LAB_ETCD_PEER"
      --initial-cluster "lab=$LAB_ETCD_PEER" --listen-metrics-urls ""
      --snapshot-count 10000 --quota-backend-bytes 2147483648
      --experimental-watch-progress-notify-interval 1s) ;;
  kube-apiserver)
    LAB_CMD=("$K8S_BIN/kube-apiserver"
      --etcd-servers="$LAB_ETCD_CLIENT"
      --bind-address="$ip" --advertise-address="$ip" --secure-port="$LAB_APISERVER_PORT"
      --service-cluster-ip-range="$LAB_SERVICE_CIDR"
      --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key"
      --client-ca-file="$P/ca.crt"
      --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key"
      --kubelet-preferred-address-types=InternalIP,Hostname
      --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key"
      --service-account-issuer="https://kubernetes.default.svc.$LAB_CLUSTER_DOMAIN"
      --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction
      --allow-privileged=true --profiling=false --event-ttl=10m) ;;
  kube-controller-manager)
    LAB_CMD=("$K8S_BIN/kube-controller-manager"
      --kubeconfig="$P/controller-manager.kubeconfig"
      --authentication-kubeconfig="$P/controller-manager.kubeconfig" --authorization-kubeconfig="$P/controller-manager.kubeconfig"
      --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true
      --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt"
      --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key"
      --allocate-node-cidrs=false --profiling=false) ;;
      # API clients keep their default QPS here and in the scheduler, the
      # kubelet and Knative: raised to 200 (burst 400) everywhere, a step of
      # N = 100 went no better (65 against 66 of 100 answered within 120 s)
      # because the API server is the node's largest CPU consumer either way
      # (docs/scale.md).
  kube-scheduler)
    LAB_CMD=("$K8S_BIN/kube-scheduler"
      --kubeconfig="$P/scheduler.kubeconfig"
      --authentication-kubeconfig="$P/scheduler.kubeconfig" --authorization-kubeconfig="$P/scheduler.kubeconfig"
      --bind-address=127.0.0.1 --leader-elect=false --profiling=false) ;;
  kubelet)
    LAB_CMD=("$K8S_BIN/kubelet" --config="$LAB_STATE/kubelet.yaml"
      --kubeconfig="$P/kubelet.kubeconfig" --hostname-override="$LAB_NODE_NAME" --node-ip="$ip"
      --root-dir="$LAB_KUBELET_DIR" --cert-dir="$LAB_KUBELET_DIR/pki") ;;
  kube-proxy)
    LAB_CMD=("$K8S_BIN/kube-proxy" --config="$LAB_STATE/kube-proxy.yaml") ;;
  coredns)
    LAB_CMD=("$COREDNS_BIN/coredns" -conf "$LAB_STATE/Corefile") ;;
  traefik)
    LAB_CMD=(env KUBECONFIG="$LAB_KUBECONFIG" "$TRAEFIK_BIN/traefik"
      --global.checkNewVersion=false --global.sendAnonymousUsage=false
      --log.level=INFO --ping=true --providers.providersThrottleDuration=200ms --entrypoints.traefik.address=127.0.0.1:$((LAB_INGRESS_PORT + 1))
      --entrypoints.web.address=":$LAB_INGRESS_PORT"
      --experimental.knative=true --providers.knative=true
      --providers.knative.publicEntrypoints=web
      --providers.knative.publicService.name=traefik --providers.knative.publicService.namespace=traefik) ;;
  *) die "unknown lab daemon '$1' (one of: ${LAB_DAEMONS[*]})" ;;
  esac
}

# lab_start_daemon NAME: lab_start with NAME's command line (lab_cmd).
lab_start_daemon() {
  lab_cmd "$1"
  [ "$1" != containerd ] || lab_running containerd || rm -f "$LAB_CRI_SOCK"
  lab_start "$1" "${LAB_CMD[@]}"
}

# lab_ready NAME: whether daemon NAME runs and answers its health check (what
# lab/up.sh and lab/ctl.sh wait for after starting it).
lab_ready() {
  lab_running "$1" || return 1
  case $1 in
  containerd) "$CB_CONTAINERD_BIN/ctr" --address "$LAB_CRI_SOCK" version ;;
  etcd) curl -fsS "$LAB_ETCD_CLIENT/health" ;;
  kube-apiserver) kctl get --raw /readyz --request-timeout=5s ;;
  kube-controller-manager) curl -fsk https://127.0.0.1:10257/healthz ;;
  kube-scheduler) curl -fsk https://127.0.0.1:10259/healthz ;;
  kubelet) kctl wait --for=condition=Ready "node/$LAB_NODE_NAME" --timeout=5s ;;
  kube-proxy) curl -fs http://127.0.0.1:10256/healthz ;;
  coredns) curl -fs http://127.0.0.1:18181/ready ;;
  traefik) curl -fs "http://127.0.0.1:$((LAB_INGRESS_PORT + 1))/ping" ;;
  *) die "unknown lab daemon '$1' (one of: ${LAB_DAEMONS[*]})" ;;
  esac
}

# lab_stop_group TIMEOUT_S NAME...: lab_stop for several daemons at once.
lab_stop_group() {
  local timeout=$1 n pids=(); shift
  for n in "$@"; do
    if lab_running "$n"; then kill "$(lab_pid "$n")" 2>/dev/null || true; pids+=("$n:$(lab_pid "$n")"); fi
  done
  for _ in $(seq 1 $((timeout * 10))); do
    local alive=0 p
    for p in "${pids[@]}"; do kill -0 "${p#*:}" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if kill -0 "${p#*:}" 2>/dev/null; then log "${p%%:*} (pid ${p#*:}) ignored SIGTERM: killing"; kill -9 "${p#*:}" 2>/dev/null || true; fi
    log "stopped ${p%%:*} (pid ${p#*:})"
  done
  for n in "$@"; do rm -f "$LAB_RUN/$n.pid"; done
}

# Step timing: step NAME starts a step (closing the previous one); steps_done
# closes the last and prints every step's duration and the total.
_STEP_NAMES=(); _STEP_SECS=(); _STEP_T=; _T0=$(date +%s.%N)
step() {
  _step_close
  _STEP_NAMES+=("$1"); _STEP_T=$(date +%s.%N)
  printf '\n%s [lab] === %s\n' "$(date +%H:%M:%S)" "$1" >&2
}
_step_close() {
  if [ -n "$_STEP_T" ]; then
    _STEP_SECS+=("$(awk -v a="$_STEP_T" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')")
    _STEP_T=
  fi
}
steps_done() {
  _step_close
  local i
  printf '\n%s timings:\n' "${1:-lab}" >&2
  for i in "${!_STEP_NAMES[@]}"; do printf '  %-44s %8ss\n' "${_STEP_NAMES[$i]}" "${_STEP_SECS[$i]}" >&2; done
  printf '  %-44s %8ss\n' "total" "$(awk -v a="$_T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" >&2
}

# write_if_changed FILE: stdin to FILE, untouched when equal (kube-proxy exits
# when its configuration file changes under it; containerd reloads CNI configs).
write_if_changed() {
  cat >"$1.new"
  if cmp -s "$1.new" "$1"; then rm -f "$1.new"; else mv "$1.new" "$1"; fi
}

# lab_lock NAME: one lab operation at a time on this machine (waits for others).
lab_lock() {
  local held=LAB_LOCK_HELD_${1^^}
  [ -z "${!held:-}" ] || return 0     # a parent lab script holds it already
  mkdir -p "$CB_RUN"
  exec 8>"$CB_RUN/lab-$1.lock"
  flock -n 8 || { log "waiting for another lab $1 to finish"; flock 8; }
  export "$held=1"
}

ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    # No daemon of these packages is started by the install (the lab starts
    # its own etcd; Debian's policy-rc.d, if any, already denies it).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
