#!/usr/bin/env bash
# Builds everything the lab runs, from the Go module proxy and Debian only:
#   Kubernetes (apiserver, controller-manager, scheduler, kubelet, kube-proxy,
#   kubectl), Knative Serving (controller, activator, autoscaler, webhook,
#   queue), CoreDNS, Traefik; Knative's YAML; Knative's images (built by
#   coldbench's own image builder, imported by lab/up.sh).
# Results go to $COLDBENCH_LAB_CACHE (default /var/cache/coldbench/lab), one
# directory per component and version with a stamp of its inputs: a second run
# rebuilds nothing. GOMODCACHE and GOCACHE stay at Go's defaults.
# Options: --force (rebuild all), -p N (go build parallelism, default 2).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root"
force=0; par=2
while [ $# -gt 0 ]; do
  case $1 in
    --force) force=1 ;;
    -p) par=$2; shift ;;
    *) die "unknown argument $1 (use --force, -p N)" ;;
  esac
  shift
done
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
mkdir -p "$LAB_CACHE" "$LAB_LOGS"
lab_lock build
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

# stamp_of NAME: a hash of everything a component's build depends on.
stamp_of() {
  { echo "$1"; go version; echo "$K8S_VERSION $K8S_STAGING_VERSION $KNATIVE_VERSION $COREDNS_VERSION $TRAEFIK_VERSION par"
    cat "$LAB_DIR/modules/$1"/*.tmpl; sed -n '/^# BUILD-RECIPE-BEGIN/,/^# BUILD-RECIPE-END/p' "$0"; } | sha256sum | cut -c1-16
}
up_to_date() { # DIR NAME BIN...
  local dir=$1 name=$2 b; shift 2
  [ $force = 0 ] || return 1
  [ "$(cat "$dir/stamp" 2>/dev/null)" = "$(stamp_of "$name")" ] || return 1
  for b in "$@"; do [ -x "$dir/bin/$b" ] || return 1; done
}
# render NAME DIR: writes the scratch module of NAME into DIR/src.
render() {
  local name=$1 src=$2/src f
  mkdir -p "$src"
  for f in go.mod tools.go; do
    sed -e "s/@K8S_VERSION@/$K8S_VERSION/g" -e "s/@STAGING_VERSION@/$K8S_STAGING_VERSION/g" \
        -e "s/@KNATIVE_VERSION@/$KNATIVE_VERSION/g" -e "s/@COREDNS_VERSION@/$COREDNS_VERSION/g" \
        -e "s/@TRAEFIK_VERSION@/$TRAEFIK_VERSION/g" "$LAB_DIR/modules/$name/$f.tmpl" >"$src/$f.new"
    if cmp -s "$src/$f.new" "$src/$f.rendered" 2>/dev/null && [ -f "$src/$f" ]; then
      rm "$src/$f.new"      # unchanged: keep the tidied go.mod and its go.sum
    else
      cp "$src/$f.new" "$src/$f"; mv "$src/$f.new" "$src/$f.rendered"; rm -f "$src/go.sum"
    fi
  done
}
tidy() { # NAME DIR
  log "resolving $1 modules (log $LAB_LOGS/tidy-$1.log)"
  (cd "$2/src" && go mod tidy) >"$LAB_LOGS/tidy-$1.log" 2>&1 || { tail -20 "$LAB_LOGS/tidy-$1.log" >&2; die "go mod tidy of $1 failed"; }
}
gobuild() { # NAME DIR LDFLAGS PKG...
  local name=$1 dir=$2 ldflags=$3; shift 3
  log "compiling $name (log $LAB_LOGS/build-$name.log)"
  mkdir -p "$dir/bin.tmp"
  (cd "$dir/src" && go build -p "$par" -trimpath -ldflags "-s -w $ldflags" -o "$dir/bin.tmp/" "$@") \
    >"$LAB_LOGS/build-$name.log" 2>&1 || { tail -30 "$LAB_LOGS/build-$name.log" >&2; die "building $name failed"; }
  rm -rf "$dir/bin" && mv "$dir/bin.tmp" "$dir/bin"
  stamp_of "$name" >"$dir/stamp"
}

step "packages"
ensure_packages "${LAB_PACKAGES[@]}"

# BUILD-RECIPE-BEGIN (changing anything here invalidates every stamp)
K8S_DIR=$LAB_CACHE/kubernetes-$K8S_VERSION
KN_DIR=$LAB_CACHE/knative-serving-$KNATIVE_VERSION
DNS_DIR=$LAB_CACHE/coredns-$COREDNS_VERSION
TR_DIR=$LAB_CACHE/traefik-$TRAEFIK_VERSION
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
K8S_LDFLAGS=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
KN_LDFLAGS=""
DNS_LDFLAGS="-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
TR_LDFLAGS="-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION -X github.com/traefik/traefik/v3/pkg/version.BuildDate=1970-01-01T00:00:00Z"
# BUILD-RECIPE-END

# knative_yaml: Serving's config/core from its module zip, plus the networking
# CRDs (symlinks in serving's repository, so absent from its zip) from
# knative.dev/networking and the caching Image CRD from knative.dev/caching, at
# the versions serving requires. ko:// references become the local images. The
# config maps the lab sets (lab/manifests/knative-config.yaml) replace
# upstream's, so nothing has to be patched through the webhook later.
knative_yaml() {
  local serving networking caching f out=$KNATIVE_YAML.tmp
  moddir() { (cd "$KN_DIR/src" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'); }
  serving=$(moddir "knative.dev/serving@$KNATIVE_VERSION")
  networking=$(moddir "knative.dev/networking@$(cd "$KN_DIR/src" && go list -m -f '{{.Version}}' knative.dev/networking)")
  caching=$(moddir "knative.dev/caching@$(cd "$KN_DIR/src" && go list -m -f '{{.Version}}' knative.dev/caching)")
  [ -d "$serving/config/core" ] && [ -d "$networking/config" ] && [ -f "$caching/config/image.yaml" ] \
    || die "Knative module sources not found (serving=$serving networking=$networking caching=$caching)"
  rm -rf "$out" && mkdir -p "$out"
  cat_docs() { for f in "$@"; do printf -- '---\n# source: %s\n' "${f#/root/go/pkg/mod/}"; cat "$f"; echo; done; }
  cat_docs "$serving"/config/core/300-resources/*.yaml \
    "$networking"/config/{certificate,domain-claim,ingress,serverlessservice}.yaml \
    "$caching"/config/image.yaml >"$out/crds.yaml"
  local core=("$serving"/config/core/100-namespace.yaml "$serving"/config/core/200-roles/*.yaml
    "$serving"/config/core/200-serviceaccount.yaml "$serving"/config/core/300-knativecertificate.yaml)
  for f in "$serving"/config/core/configmaps/*.yaml; do
    case $(basename "$f") in autoscaler.yaml|deployment.yaml|domain.yaml|features.yaml) ;; *) core+=("$f") ;; esac
  done
  core+=("$serving"/config/core/deployments/{activator,autoscaler,controller,webhook}.yaml
    "$serving"/config/core/webhooks/*.yaml "$serving"/config/core/999-cache.yaml)
  cat_docs "${core[@]}" "$LAB_DIR/manifests/knative-config.yaml" \
    | sed -E "s#ko://knative.dev/serving/cmd/([a-z-]+)#dev.local/knative/\\1:$KNATIVE_VERSION#g" \
    | sed -e "s#@KNATIVE_VERSION@#$KNATIVE_VERSION#g" -e "s#@LAB_DOMAIN@#$LAB_DOMAIN#g" >"$out/core.yaml"
  ! grep -q 'ko://' "$out/core.yaml" || die "unrewritten ko:// reference in Knative YAML"
  knative_yaml_stamp >"$out/stamp"
  rm -rf "$KNATIVE_YAML" && mv "$out" "$KNATIVE_YAML"
  log "Knative YAML: $KNATIVE_YAML/{crds,core}.yaml"
}

# knative_yaml_stamp: what the rendered YAML depends on besides the modules,
# so that a change of the lab's Knative settings re-renders it (a cached
# core.yaml would otherwise keep the old settings, silently).
knative_yaml_stamp() {
  { echo "$KNATIVE_VERSION $LAB_DOMAIN"; cat "$LAB_DIR/manifests/knative-config.yaml"
    declare -f knative_yaml; } | sha256sum | cut -c1-16
}

todo=()
up_to_date "$K8S_DIR" kubernetes "${K8S_CMDS[@]}" || todo+=(kubernetes)
up_to_date "$KN_DIR" knative "${KNATIVE_COMPONENTS[@]}" && [ -f "$KN_DIR/images.tar" ] || todo+=(knative)
up_to_date "$DNS_DIR" coredns coredns || todo+=(coredns)
up_to_date "$TR_DIR" traefik traefik || todo+=(traefik)
dir_of() { case $1 in kubernetes) echo "$K8S_DIR" ;; knative) echo "$KN_DIR" ;; coredns) echo "$DNS_DIR" ;; traefik) echo "$TR_DIR" ;; esac; }

if [ ${#todo[@]} = 0 ]; then
  log "all lab binaries are up to date in $LAB_CACHE (nothing to build)"
else
  # Module downloads are network-bound: resolve every module at once.
  step "resolve modules (${todo[*]})"
  pids=()
  for c in "${todo[@]}"; do render "$c" "$(dir_of "$c")"; tidy "$c" "$(dir_of "$c")" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  # Compiling is CPU- and memory-bound: one component at a time.
  for c in "${todo[@]}"; do
    step "compile $c"
    case $c in
      kubernetes) gobuild kubernetes "$K8S_DIR" "$K8S_LDFLAGS" "${K8S_CMDS[@]/#/k8s.io/kubernetes/cmd/}" ;;
      knative) gobuild knative "$KN_DIR" "$KN_LDFLAGS" "${KNATIVE_COMPONENTS[@]/#/knative.dev/serving/cmd/}" ;;
      coredns) gobuild coredns "$DNS_DIR" "$DNS_LDFLAGS" github.com/coredns/coredns ;;
      traefik) gobuild traefik "$TR_DIR" "$TR_LDFLAGS" github.com/traefik/traefik/v3/cmd/traefik ;;
    esac
  done
fi

if [[ " ${todo[*]} " == *" knative "* ]] || [ ! -f "$KN_DIR/images.tar" ]; then
  step "knative images"
  [ -x "$CB_BIN" ] || (cd "$COLDBENCH_ROOT" && go build -o "$CB_BIN" ./cmd/coldbench)
  rm -rf "$KN_DIR/images.tmp" && mkdir -p "$KN_DIR/images.tmp"
  for c in "${KNATIVE_COMPONENTS[@]}"; do
    "$CB_BIN" image build --binary "$KN_DIR/bin/$c" --ref "$(knative_image "$c")" --uid 65532 \
      --output "$KN_DIR/images.tmp/$c.tar" >/dev/null
  done
  # One tarball per image; up.sh imports them all.
  tar -C "$KN_DIR/images.tmp" -cf "$KN_DIR/images.tar.new" . && mv "$KN_DIR/images.tar.new" "$KN_DIR/images.tar"
  rm -rf "$KN_DIR/images.tmp"
fi
if [[ " ${todo[*]} " == *" knative "* ]] || [ ! -f "$KNATIVE_YAML/core.yaml" ] \
  || [ "$(cat "$KNATIVE_YAML/stamp" 2>/dev/null)" != "$(knative_yaml_stamp)" ]; then
  step "knative yaml"
  knative_yaml
fi
log "binaries: $K8S_DIR/bin $KN_DIR/bin $DNS_DIR/bin $TR_DIR/bin"
steps_done "lab build"
