#!/usr/bin/env bash
# Brings the lab up: a single-node Kubernetes (etcd, apiserver,
# controller-manager, scheduler, kubelet, kube-proxy in iptables mode),
# CoreDNS and Traefik as processes on this machine, Knative Serving as pods,
# RuntimeClasses runc, crun and gvisor; then waits until a probe Knative Service
# answers through Traefik. Idempotent: what already runs is kept.
# Needs lab/build.sh first (make lab-build). Undo with lab/down.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root"
lab_lock state
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
timeout_s=${COLDBENCH_LAB_UP_TIMEOUT:-300}   # per waiting step

for b in "$K8S_BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl} \
  "$COREDNS_BIN/coredns" "$TRAEFIK_BIN/traefik" "$KNATIVE_YAML/core.yaml"; do
  [ -e "$b" ] || die "$b is missing: build the lab first (make lab-build)"
done

# wait_for WHAT CMD...: retries CMD every second until it succeeds or the step times out.
wait_for() {
  local what=$1 i; shift
  for ((i = 0; i < timeout_s; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "timed out after ${timeout_s}s waiting for $what"
}

# State left by a lab whose processes were ended without lab/down.sh (a
# reboot, a killed session): clean it up first, so the lab starts afresh.
if ! lab_running kube-apiserver && ! lab_running etcd && { [ -d "$LAB_ETCD_DIR" ] || [ -d "$LAB_KUBELET_DIR" ]; }; then
  step "clean up a lab left behind"
  "$LAB_DIR/down.sh"
fi

step "node set-up (scripts/node-up.sh)"
"$COLDBENCH_ROOT/scripts/node-up.sh" 8>&-   # its containerd must not hold the lab's lock
ensure_packages "${LAB_PACKAGES[@]}"
NODE_IP=$(lab_node_ip)
log "node address $NODE_IP"
mkdir -p "$LAB_STATE" "$LAB_RUN" "$LAB_LOG"
echo "$NODE_IP" >"$LAB_RUN/node-ip"

step "host networking"
# Service traffic between pods on one bridge must pass iptables; pods reach
# services through the host.
sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 net.ipv4.ip_forward=1
# Room for the study's scale, 500 function pods at once on this node (issue
# 14); each value is only ever raised, never lowered below the host's:
# - neighbour table: the kernel's table is one for every network namespace;
#   the host (kubelet probes), the activator and Traefik each need an entry
#   per pod address on the bridge, and past gc_thresh3 (1024 by default)
#   packets are dropped with "neighbour table overflow";
# - pid_max: threads count, and 500 pods are ~13 000 threads with runc (shim,
#   queue-proxy, function, pause) and more with gVisor; 2 cores give 32 768;
# - inotify: every container's shim, runc and the kubelet's cAdvisor take
#   instances, all as root, against a per-user limit of 128.
# conntrack is left alone: its default here (262 144) is ~100× what 500
# cold starts use. Open files: see docs/scale.md (the hard limit cannot be
# raised without CAP_SYS_RESOURCE).
raise_sysctl() { # KEY MIN
  local cur; cur=$(sysctl -n "$1" 2>/dev/null) || { log "sysctl $1 not available"; return 0; }
  [ "$cur" -ge "$2" ] || sysctl -qw "$1=$2"
}
raise_sysctl net.ipv4.neigh.default.gc_thresh1 4096
raise_sysctl net.ipv4.neigh.default.gc_thresh2 8192
raise_sysctl net.ipv4.neigh.default.gc_thresh3 16384
raise_sysctl kernel.pid_max 4194304
raise_sysctl fs.inotify.max_user_instances 8192
raise_sysctl fs.inotify.max_user_watches 1048576
# Lab traffic stays on this machine: nothing from the pod network is forwarded
# out of any interface but the pods' own bridge, and a packet for a service
# address that kube-proxy has not translated (yet) is refused here, instead of
# following the default route off the machine.
iptables -N COLDBENCH-LAB-EGRESS 2>/dev/null || iptables -F COLDBENCH-LAB-EGRESS
iptables -A COLDBENCH-LAB-EGRESS -d "$LAB_SERVICE_CIDR" -p tcp -j REJECT --reject-with tcp-reset
iptables -A COLDBENCH-LAB-EGRESS -d "$LAB_SERVICE_CIDR" -j REJECT
iptables -A COLDBENCH-LAB-EGRESS -s "$LAB_POD_CIDR" ! -o coldbench0 -j REJECT
for chain in FORWARD OUTPUT; do
  iptables -C $chain -j COLDBENCH-LAB-EGRESS 2>/dev/null || iptables -I $chain 1 -j COLDBENCH-LAB-EGRESS
done

step "lab containerd"
# The lab's kubelet gets a containerd of its own, from the node backend's very
# config file and binaries (config/containerd.toml, containerd 2.x built by
# scripts/build-runtimes.sh: runc, crun, gVisor's runsc, restrict_oom_score_adj,
# coldbench's pause image, coldbench's CNI bridge), with its own root and
# socket: a kubelet stops every running sandbox it did not create (its
# housekeeping treats them as orphaned pods), so sharing one daemon would kill
# the node backend's sandboxes while the lab runs.
# Its CNI network is coldbench's (config/cni.conflist: same name, bridge,
# subnet and IPAM store, so both daemons draw from one pool of addresses) plus
# routes to the service range and the node address: pods need the apiserver
# and DNS, and get no default route, so nothing they send can leave the machine.
mkdir -p "$LAB_RUN/containerd" "$LAB_STATE/cni/net.d"
lab_render() { RENDER_STATE=$LAB_STATE RENDER_RUN=$LAB_RUN RENDER_ETC=$LAB_STATE render "$@"; }
lab_render "$COLDBENCH_ROOT/config/containerd.toml" | write_if_changed "$LAB_STATE/containerd.toml"
lab_render "$COLDBENCH_ROOT/config/runsc.toml" | write_if_changed "$LAB_STATE/runsc.toml"
sed -e "s#@RUN@#$CB_RUN#g" -e "s#@POD_CIDR@#$LAB_POD_CIDR#g" -e "s#@SERVICE_CIDR@#$LAB_SERVICE_CIDR#g" \
  -e "s#@NODE_IP@#$NODE_IP#g" "$LAB_DIR/manifests/cni.conflist" | write_if_changed "$LAB_STATE/cni/net.d/10-coldbench.conflist"
lab_start_daemon containerd
wait_for "containerd on $LAB_CRI_SOCK" lab_ready containerd
lab_ctr() { "$CB_CONTAINERD_BIN/ctr" --address "$LAB_CRI_SOCK" -n k8s.io "$@" 2> >(grep -v "DEPRECATION: The support for cgroup v1" >&2); }
lab_ctr images import "$CB_STATE/images/coldbench-images.tar" >/dev/null
for img in fn-go:v1 fn-c:v1; do   # also under dev.local/, which Knative never resolves
  lab_ctr images tag --force "coldbench.local/$img" "dev.local/coldbench/$img" >/dev/null 2>&1 || true
done
# coldbench's node agent (deploy/agent.yaml, issue 15), built by coldbench's
# own image builder like the functions; the DaemonSet is applied below.
"$CB_BIN" image build coldbench-agent --work-dir "$CB_STATE/build" --output "$LAB_STATE/agent-image.tar" >/dev/null
lab_ctr images import "$LAB_STATE/agent-image.tar" >/dev/null
tmp=$(mktemp -d)
tar -C "$tmp" -xf "$LAB_CACHE/knative-serving-$KNATIVE_VERSION/images.tar"
for t in "$tmp"/*.tar; do lab_ctr images import "$t" >/dev/null; done
rm -rf "$tmp"
log "images: $(lab_ctr images ls -q | grep -cE '^(coldbench.local|dev.local)/') coldbench and Knative images in the lab containerd"

step "certificates and kubeconfigs"
"$LAB_DIR/pki.sh" "$NODE_IP"

step "etcd"
mkdir -p "$LAB_ETCD_DIR" && chmod 700 "$LAB_ETCD_DIR"
# Every daemon's command line is in lib.sh (lab_cmd), shared with lab/ctl.sh.
lab_start_daemon etcd
wait_for etcd lab_ready etcd

step "kube-apiserver"
P=$LAB_PKI
lab_start_daemon kube-apiserver
wait_for "the apiserver to be ready" lab_ready kube-apiserver

step "controller-manager, scheduler"
lab_start_daemon kube-controller-manager
lab_start_daemon kube-scheduler
wait_for "controller-manager health" lab_ready kube-controller-manager
wait_for "scheduler health" lab_ready kube-scheduler

step "kubelet, kube-proxy"
mkdir -p "$LAB_KUBELET_DIR"
# The kubelet's cgroups live under /coldbench-lab in every hierarchy, apart
# from the node backend's (/coldbench) and from any other kubelet's /kubepods.
for h in /sys/fs/cgroup/*/; do
  mountpoint -q "$h" || continue
  mkdir -p "$h$LAB_CGROUP_ROOT"
  if [ -f "${h}cpuset.cpus" ]; then   # a new cpuset starts empty: inherit the root's
    [ -n "$(cat "$h$LAB_CGROUP_ROOT/cpuset.cpus")" ] || cat "${h}cpuset.cpus" >"$h$LAB_CGROUP_ROOT/cpuset.cpus"
    [ -n "$(cat "$h$LAB_CGROUP_ROOT/cpuset.mems")" ] || cat "${h}cpuset.mems" >"$h$LAB_CGROUP_ROOT/cpuset.mems"
  fi
done
write_if_changed "$LAB_STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Kubernetes 1.34 still runs on cgroup v1 when told to (1.35 refuses).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$LAB_CGROUP_ROOT
containerRuntimeEndpoint: unix://$LAB_CRI_SOCK
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
clusterDomain: $LAB_CLUSTER_DOMAIN
clusterDNS: [$NODE_IP]
# Pods get the cluster's DNS only (CoreDNS answers the cluster zone, nothing else).
resolvConf: ""
failSwapOn: false
# The images here cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# 2Gi, not the default 100Mi: at the study's N, a runtime whose sandboxes
# are heavy (gVisor's Sentry and Gofer per pod) can fill the node's memory;
# the kubelet then evicts function pods (recorded as such) while the host's
# own processes (control plane, coldbench, the shell running it) keep room.
evictionHard: {memory.available: 2Gi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
podLogsDir: $LAB_LOG/pods
# The study's scale, 500 function pods at once, plus Knative's own (issue 14);
# the default is 110.
maxPods: 600
EOF
write_if_changed "$LAB_STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $P/kube-proxy.kubeconfig}
hostnameOverride: $LAB_NODE_NAME
clusterCIDR: $LAB_POD_CIDR
bindAddress: 127.0.0.1
nodePortAddresses: [primary]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
lab_start_daemon kubelet
lab_start_daemon kube-proxy
wait_for "node $LAB_NODE_NAME Ready" lab_ready kubelet
wait_for "kube-proxy health" lab_ready kube-proxy

step "CoreDNS"
write_if_changed "$LAB_STATE/Corefile" <<EOF
# The cluster zone only: no forwarding, names outside it are refused.
$LAB_CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
  bind $NODE_IP
  errors
  ready 127.0.0.1:18181
  kubernetes $LAB_CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
    kubeconfig $LAB_KUBECONFIG coldbench-lab
    pods insecure
  }
  cache 10
}
EOF
lab_start_daemon coredns
wait_for "CoreDNS ready" lab_ready coredns

step "cluster objects"
sed -e "s#@NODE_IP@#$NODE_IP#g" -e "s#@INGRESS_PORT@#$LAB_INGRESS_PORT#g" -e "s#@DNS_IP@#$NODE_IP#g" \
  "$LAB_DIR/manifests/cluster.yaml" | kctl apply -f - >/dev/null

step "Knative Serving $KNATIVE_VERSION"
kctl apply -f "$KNATIVE_YAML/crds.yaml" >/dev/null
kctl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kctl apply -f "$KNATIVE_YAML/core.yaml" >/dev/null
wait_for "Knative deployments available" kctl -n knative-serving wait --for=condition=Available deployment --all --timeout=5s

step "coldbench node agent"
# deploy/agent.yaml as users apply it, but for the lab containerd's socket,
# which is not at containerd's default path. Its namespace is the one
# deploy/rbac.yaml declares; the rest of rbac.yaml (a ServiceAccount for
# coldbench) is not needed here: the lab's kubeconfig is an administrator's.
kctl create namespace coldbench-system --dry-run=client -o yaml | kctl apply -f - >/dev/null
sed -e "s#/run/containerd/containerd.sock#$LAB_CRI_SOCK#g" "$COLDBENCH_ROOT/deploy/agent.yaml" | kctl apply -f - >/dev/null
wait_for "the node agent's DaemonSet rolled out" kctl -n coldbench-system rollout status daemonset/coldbench-agent --timeout=5s

step "Traefik"
lab_start_daemon traefik
wait_for "Traefik ping" lab_ready traefik

step "probe Knative Service through the ingress"
kctl apply -f "$LAB_DIR/manifests/probe.yaml" >/dev/null
wait_for "ksvc probe Ready" kctl -n coldbench-lab wait --for=condition=Ready ksvc/probe --timeout=5s
host="probe.coldbench-lab.$LAB_DOMAIN"
wait_for "an answer from ksvc probe via http://127.0.0.1:$LAB_INGRESS_PORT (Host: $host)" \
  bash -c "curl -fsS --max-time 10 -H 'Host: $host' http://127.0.0.1:$LAB_INGRESS_PORT/ | grep -q 'coldbench: hello'"
log "probe answered: $(curl -fsS --max-time 10 -H "Host: $host" "http://127.0.0.1:$LAB_INGRESS_PORT/")"

steps_done "lab up"
cat >&2 <<EOF

lab is up:
  kubeconfig  $LAB_KUBECONFIG      (export KUBECONFIG=$LAB_KUBECONFIG)
  ingress     http://127.0.0.1:$LAB_INGRESS_PORT and http://$NODE_IP:$LAB_INGRESS_PORT  (Host: <ksvc>.<namespace>.$LAB_DOMAIN)
  kubectl     $K8S_BIN/kubectl
EOF
