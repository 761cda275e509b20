#!/usr/bin/env bash
# Takes the lab down: deletes Knative Services and pods through the API while
# the kubelet still runs (so it tears their sandboxes and networks down), stops
# every lab daemon by its PID file, removes what the kubelet left in the lab's
# containerd, the lab's iptables chains (KUBE-*, CNI-*, COLDBENCH-LAB-*), its
# mounts, cgroups and cluster state. coldbench's own containerd (the node
# backend's) is never stopped. Keeps the build cache, certificates and the lab
# containerd's image store; --purge removes those too (not the build cache).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root"
lab_lock state
purge=0
for a in "$@"; do case $a in --purge) purge=1 ;; *) die "unknown flag $a (use --purge)" ;; esac; done
DAEMONS=(traefik coredns kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd)

api_up() { lab_running kube-apiserver && [ -x "$K8S_BIN/kubectl" ] && kctl get --raw /readyz --request-timeout=5s >/dev/null 2>&1; }

step "delete Knative Services and pods"
if api_up; then
  # Pods first, with a short grace period: a pod's first deletion sets how long
  # the kubelet waits for it (queue-proxy and Knative's own pods drain for
  # 30 s or more otherwise), and it cannot be shortened once the kubelet is
  # stopping its containers.
  kctl delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || true
  if kctl get crd services.serving.knative.dev >/dev/null 2>&1; then
    kctl delete ksvc --all -A --wait=false >/dev/null 2>&1 || true
  fi
  # Knative's webhooks must not outlive the webhook pod.
  kctl delete validatingwebhookconfigurations,mutatingwebhookconfigurations \
    -l app.kubernetes.io/name=knative-serving --ignore-not-found >/dev/null 2>&1 || true
  # Workload controllers would recreate pods: remove them (leaving their pods
  # to the loop below), then the pods again until none is left.
  kctl delete deployments,replicasets,daemonsets,statefulsets,jobs --all -A --cascade=orphan --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 1 15); do
    kctl delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || true
    sleep 2
    [ -z "$(kctl get pods -A -o name 2>/dev/null)" ] && break
  done
  left=$(kctl get pods -A -o name 2>/dev/null | wc -l)
  [ "$left" = 0 ] && log "no pod left" || log "$left pod(s) still listed; their sandboxes are removed below"
elif lab_running kube-apiserver; then
  log "apiserver not answering: skipping API clean-up"
else
  log "apiserver not running"
fi

step "stop lab processes"
# Node agents and add-ons first, then the control plane, then etcd. The
# apiserver's graceful shutdown waits on its watchers for ~20 s: not needed for
# a cluster whose state is deleted next.
lab_stop_group 15 traefik coredns kube-proxy kubelet
lab_stop_group 5 kube-scheduler kube-controller-manager kube-apiserver
lab_stop_group 15 etcd

step "remove the kubelet's sandboxes"
labcri() { "$LAB_RUN/labcri" -ipam-dir "$CB_RUN/cni/ipam" "$@"; }
mkdir -p "$LAB_RUN"
(cd "$COLDBENCH_ROOT" && go build -o "$LAB_RUN/labcri" ./lab/cmd/labcri) || log "could not build lab/cmd/labcri"
if [ -S "$LAB_CRI_SOCK" ]; then
  labcri -endpoint "unix://$LAB_CRI_SOCK" clean || log "sandbox clean-up reported errors"
fi
lab_stop containerd 20
# Shims outlive containerd; the lab's carry the lab's socket in their arguments.
for pid in $(pgrep -f "containerd-shim.*-address $LAB_CRI_SOCK( |$)" || true); do kill "$pid" 2>/dev/null || true; done
# gVisor sandboxes left without their shim (runsc's state is under the lab's run dir).
runsc_reap "$LAB_RUN/runsc/k8s.io"
# coldbench's own containerd is never stopped, but a kubelet pointed at it
# (by hand) would have left sandboxes there: remove those too (only sandboxes
# carrying the kubelet's labels; the node backend's are never touched).
if [ -S "$CB_SOCK" ] && [ "$(labcri -endpoint "unix://$CB_SOCK" count 2>/dev/null || echo 0)" != 0 ]; then
  labcri -endpoint "unix://$CB_SOCK" clean || true
fi

step "iptables"
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
# Connection tracking entries of service addresses (the lab's alone).
conntrack -D -d "${LAB_SERVICE_CIDR%/*}" --mask-dst 255.255.0.0 >/dev/null 2>&1 || true
for ipt in iptables ip6tables; do
  for table in filter nat mangle raw; do
    chains=$($ipt -t $table -S 2>/dev/null | awk '$1=="-N" && ($2 ~ /^(KUBE-|CNI-|COLDBENCH-LAB-)/) {print $2}') || true
    [ -n "$chains" ] || continue
    # Drop every rule that jumps to one of them, then flush and delete them.
    { $ipt -t $table -S | grep -E -- "-j (KUBE-|CNI-|COLDBENCH-LAB-)" | grep -v '^-N' || true; } | while read -r rule; do
      # shellcheck disable=SC2086
      $ipt -t $table ${rule/-A /-D } 2>/dev/null || true
    done
    for c in $chains; do $ipt -t $table -F "$c" 2>/dev/null || true; done
    for c in $chains; do $ipt -t $table -X "$c" 2>/dev/null || log "could not delete $ipt $table chain $c"; done
  done
done

step "mounts, cgroups, state"
for root in "$LAB_KUBELET_DIR" "$LAB_STATE/containerd" "$LAB_STATE/containerd2" "$LAB_RUN"; do
  { findmnt -rn -o TARGET | grep -E "^$root(/|$)" || true; } | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
done
# The kubelet's cgroup tree (cgroupfs driver, every v1 hierarchy), leaves first.
for h in /sys/fs/cgroup/*/"$LAB_CGROUP_ROOT"; do
  [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
ip link del cni0 2>/dev/null || true
rm -rf "$LAB_ETCD_DIR" "$LAB_KUBELET_DIR" "$LAB_LOG/pods" "$LAB_RUN"
if [ $purge = 1 ]; then
  log "purging $LAB_STATE (certificates, kubeconfig, lab containerd images)"
  rm -rf "$LAB_STATE"
fi

step "check"
# Lab processes are the ones using the lab's files (others may run these
# binaries with configurations of their own).
left=($(pgrep -f "^($K8S_BIN|$COREDNS_BIN)/.*$LAB_STATE/" || true))
left+=($(pgrep -f "^$TRAEFIK_BIN/traefik .*--entrypoints.web.address=:$LAB_INGRESS_PORT" || true))
left+=($(pgrep -f "containerd --config $LAB_STATE/containerd.toml" || true))
left+=($(pgrep -f "^etcd --name lab --data-dir $LAB_ETCD_DIR" || true))
left+=($(pgrep -f "containerd-shim.*-address $LAB_RUN/containerd/containerd.sock( |$)" || true))
left+=($(pgrep -f "runsc-sandbox .*--root=?$LAB_RUN/runsc" || true))
problems=()
[ ${#left[@]} = 0 ] || problems+=("lab processes still running: ${left[*]}")
for ipt in iptables ip6tables; do
  for table in filter nat mangle raw; do
    c=$($ipt -t $table -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^(KUBE-|CNI-|COLDBENCH-LAB-)/' | wc -l)
    [ "$c" = 0 ] || problems+=("$c lab chain(s) left in $ipt $table")
  done
done
m=$(findmnt -rn -o TARGET | grep -cE "^($LAB_STATE|$LAB_RUN)(/|$)" || true)
[ "$m" = 0 ] || problems+=("$m mount(s) left under $LAB_STATE or $LAB_RUN")
! ip link show cni0 >/dev/null 2>&1 || problems+=("a cni0 bridge exists")
if [ ${#problems[@]} = 0 ]; then
  log "no lab process, iptables chain, mount or cni0 bridge left"
else
  for p in "${problems[@]}"; do log "error: $p"; done
  steps_done "lab down"; exit 1
fi
steps_done "lab down"
