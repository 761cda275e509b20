#!/usr/bin/env bash
# The lab's PKI, made with openssl: a local CA, the apiserver's serving
# certificate, one client certificate per component, the service-account key
# pair, and a kubeconfig per client. Idempotent: keeps what exists, renews the
# apiserver certificate when the node address changed. Usage: lab/pki.sh NODE_IP
set -euo pipefail
source "$(dirname "$0")/lib.sh"
node_ip=${1:?usage: pki.sh NODE_IP}
mkdir -p "$LAB_PKI"
cd "$LAB_PKI"
umask 077

if [ ! -f ca.crt ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=coldbench-lab-ca" 2>/dev/null
  log "made the lab CA ($LAB_PKI/ca.crt)"
fi
if [ ! -f sa.key ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
fi

# cert NAME SUBJECT EXTENSIONS: a key and a CA-signed certificate.
cert() {
  local name=$1 subj=$2 ext=$3
  openssl req -new -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  printf '%s\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
    -days 825 -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

svc_ip=$LAB_KUBERNETES_SVC_IP
want_san="IP:127.0.0.1,IP:$node_ip,IP:$svc_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$LAB_CLUSTER_DOMAIN"
if [ ! -f apiserver.crt ] || [ "$(cat apiserver.san 2>/dev/null)" != "$want_san" ]; then
  cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$want_san"
  echo "$want_san" >apiserver.san
  log "made the apiserver certificate for $node_ip"
fi

# name|subject of every client certificate.
clients=(
  "admin|/O=system:masters/CN=coldbench-lab-admin"
  "apiserver-kubelet-client|/O=system:masters/CN=kube-apiserver-kubelet-client"
  "controller-manager|/CN=system:kube-controller-manager"
  "scheduler|/CN=system:kube-scheduler"
  "kube-proxy|/CN=system:kube-proxy"
  "kubelet|/O=system:nodes/CN=system:node:$LAB_NODE_NAME"
)
for c in "${clients[@]}"; do
  name=${c%%|*}
  [ -f "$name.crt" ] || cert "$name" "${c#*|}" "$client_ext"
done

# Kubeconfigs are rewritten every time (the node address may have changed).
server="https://$node_ip:$LAB_APISERVER_PORT"
b64() { base64 -w0 <"$1"; }
kubeconfig() { # NAME OUT
  cat >"$2.new" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: coldbench-lab
  cluster:
    server: $server
    certificate-authority-data: $(b64 ca.crt)
users:
- name: $1
  user:
    client-certificate-data: $(b64 "$1.crt")
    client-key-data: $(b64 "$1.key")
contexts:
- name: coldbench-lab
  context: {cluster: coldbench-lab, user: $1}
current-context: coldbench-lab
EOF
  mv "$2.new" "$2"
}
for n in controller-manager scheduler kube-proxy kubelet; do kubeconfig "$n" "$LAB_PKI/$n.kubeconfig"; done
kubeconfig admin "$LAB_KUBECONFIG"
chmod 600 "$LAB_KUBECONFIG"
