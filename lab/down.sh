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
purge=0
for a in "$@"; do case $a in --purge) purge=1 ;; *) die "unknown flag $a (use --purge)" ;; esac; done
DAEMONS=(traefik coredns kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd)

api_up() { lab_running kube-apiserver && [ -x "$K8S_BIN/kubectl" ] && kctl get --raw /readyz --request-timeout=5s >/dev/null 2>&1; }

step "delete Knative Services and pods"
if api_up; then
  if kctl get crd services.serving.knative.dev >/dev/null 2>&1; then
    kctl delete ksvc --all -A --timeout=60s >/dev/null 2>&1 || log "some ksvcs did not go in 60s"
  fi
  # Knative's webhooks must not outlive the webhook pod.
  kctl delete validatingwebhookconfigurations,mutatingwebhookconfigurations \
    -l app.kubernetes.io/name=knative-serving --ignore-not-found >/dev/null 2>&1 || true
  # Workload controllers would recreate pods: remove them, then the pods.
  kctl delete deployments,replicasets,daemonsets,statefulsets,jobs --all -A --wait=false >/dev/null 2>&1 || true
  kctl delete pods --all -A --grace-period=5 --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 1 90); do
    [ -z "$(kctl get pods -A -o name 2>/dev/null)" ] && break
    sleep 1
  done
  left=$(kctl get pods -A -o name 2>/dev/null | wc -l)
  [ "$left" = 0 ] && log "no pod left" || log "$left pod(s) still listed; their sandboxes are removed below"
elif lab_running kube-apiserver; then
  log "apiserver not answering: skipping API clean-up"
else
  log "apiserver not running"
fi

step "stop lab processes"
for d in "${DAEMONS[@]}"; do lab_stop "$d" 20; done

step "remove the kubelet's sandboxes"
if lab_running containerd; then
  (cd "$COLDBENCH_ROOT" && go build -o "$LAB_RUN/labcri" ./lab/cmd/labcri) && \
    "$LAB_RUN/labcri" -endpoint "unix://$LAB_CRI_SOCK" -ipam-dir "$CB_RUN/cni/ipam" clean || log "sandbox clean-up reported errors"
  lab_stop containerd 20
fi
# Shims outlive containerd; the lab's carry the lab's socket in their arguments.
for pid in $(pgrep -f "containerd-shim.*-address $LAB_CRI_SOCK( |$)" || true); do kill "$pid" 2>/dev/null || true; done
if [ -x "$K8S_BIN/kubectl" ] && [ -S "$CB_SOCK" ] && [ -x "$LAB_RUN/labcri" ]; then
  # A kubelet may have been pointed at coldbench's own containerd: clean it too
  # (only sandboxes carrying the kubelet's labels).
  n=$("$LAB_RUN/labcri" -endpoint "unix://$CB_SOCK" count 2>/dev/null || echo 0)
  [ "$n" = 0 ] || "$LAB_RUN/labcri" -endpoint "unix://$CB_SOCK" -ipam-dir "$CB_RUN/cni/ipam" clean || true
fi

step "iptables"
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
for ipt in iptables ip6tables; do
  for table in filter nat mangle raw; do
    chains=$($ipt -t $table -S 2>/dev/null | awk '$1=="-N" && ($2 ~ /^(KUBE-|CNI-|COLDBENCH-LAB-)/) {print $2}') || true
    [ -n "$chains" ] || continue
    # Drop every rule that jumps to one of them, then flush and delete them.
    $ipt -t $table -S | grep -E -- "-j (KUBE-|CNI-|COLDBENCH-LAB-)" | grep -v '^-N' | while read -r rule; do
      # shellcheck disable=SC2086
      $ipt -t $table ${rule/-A /-D } 2>/dev/null || true
    done
    for c in $chains; do $ipt -t $table -F "$c" 2>/dev/null || true; done
    for c in $chains; do $ipt -t $table -X "$c" 2>/dev/null || log "could not delete $ipt $table chain $c"; done
  done
done

step "mounts, cgroups, state"
for root in "$LAB_KUBELET_DIR" "$LAB_STATE/containerd" "$LAB_RUN"; do
  findmnt -rn -o TARGET | grep -E "^$root(/|$)" | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
done
# The kubelet's cgroup tree (cgroupfs driver, every v1 hierarchy), leaves first.
for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
  [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
ip link del cni0 2>/dev/null || true
rm -rf "$LAB_ETCD_DIR" "$LAB_KUBELET_DIR" "$LAB_RUN"
if [ $purge = 1 ]; then
  log "purging $LAB_STATE (certificates, kubeconfig, lab containerd images)"
  rm -rf "$LAB_STATE"
fi

step "check"
left=($(pgrep -f "^($K8S_BIN|$COREDNS_BIN|$TRAEFIK_BIN)/" || true))
left+=($(pgrep -f "^containerd --config $LAB_STATE/containerd.toml" || true))
left+=($(pgrep -f "^etcd --name lab --data-dir $LAB_ETCD_DIR" || true))
left+=($(pgrep -f "containerd-shim.*-address $LAB_CRI_SOCK( |$)" || true))
[ ${#left[@]} = 0 ] && log "no lab process left" || { log "error: lab processes still running: ${left[*]}"; steps_done "lab down"; exit 1; }
steps_done "lab down"
