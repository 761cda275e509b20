#!/usr/bin/env bash
# Says what of the lab runs, where its kubeconfig and ingress are. Exit 0 when
# every lab daemon runs and the apiserver answers, 1 otherwise.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
DAEMONS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns traefik)
ok=0; down=0
printf 'lab daemons (PID files in %s, logs in %s):\n' "$LAB_RUN" "$LAB_LOG"
for d in "${DAEMONS[@]}"; do
  if lab_running "$d"; then printf '  %-24s running  pid %s\n' "$d" "$(lab_pid "$d")"; ok=$((ok + 1))
  else printf '  %-24s stopped\n' "$d"; down=$((down + 1)); fi
done
node_ip=$(cat "$LAB_RUN/node-ip" 2>/dev/null || lab_node_ip 2>/dev/null || echo '?')
printf 'kubeconfig: %s%s\n' "$LAB_KUBECONFIG" "$([ -f "$LAB_KUBECONFIG" ] || echo ' (not written yet)')"
printf 'ingress:    http://127.0.0.1:%s and http://%s:%s (Host: <ksvc>.<namespace>.%s)\n' \
  "$LAB_INGRESS_PORT" "$node_ip" "$LAB_INGRESS_PORT" "$LAB_DOMAIN"
printf 'CRI:        unix://%s (the lab containerd; RuntimeClasses runc, crun, gvisor)\n' "$LAB_CRI_SOCK"
printf 'kubectl:    %s\n' "$K8S_BIN/kubectl"
if [ $down = 0 ] && kctl get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
  echo; kctl get nodes -o wide 2>/dev/null
  echo; kctl get ksvc -A 2>/dev/null
  echo; echo "lab: up"
  exit 0
fi
[ $ok = 0 ] && echo "lab: down" || echo "lab: partly up ($ok of ${#DAEMONS[@]} daemons; apiserver $(kctl get --raw /readyz --request-timeout=5s >/dev/null 2>&1 && echo answering || echo not answering))"
exit 1
