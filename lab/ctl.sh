#!/usr/bin/env bash
# Stops, starts or restarts one daemon of a running lab, with the very command
# line lab/up.sh starts it with (lab_cmd in lib.sh), for fault tests and
# repairs:
#
#   lab/ctl.sh stop DAEMON [TIMEOUT_S]   SIGTERM, then SIGKILL after TIMEOUT_S (default 15)
#   lab/ctl.sh start DAEMON              start it and wait until it answers its health check
#   lab/ctl.sh restart DAEMON            stop, then start
#   lab/ctl.sh status DAEMON             exit 0 when it runs and answers
#
# DAEMON: containerd etcd kube-apiserver kube-controller-manager kube-scheduler
# kubelet kube-proxy coredns traefik. The lab must have been brought up by
# lab/up.sh (which writes the daemons' configuration); make lab-up and
# make lab-down bring the whole lab up and down.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage() { echo "usage: $0 stop|start|restart|status DAEMON [TIMEOUT_S]  (DAEMON: ${LAB_DAEMONS[*]})" >&2; exit 2; }
[ $# -ge 2 ] || usage
op=$1 name=$2 timeout=${3:-15}
[[ " ${LAB_DAEMONS[*]} " == *" $name "* ]] || usage
[[ $timeout =~ ^[0-9]+$ ]] || usage
[ "$(id -u)" = 0 ] || die "run as root"

start() {
  [ -f "$LAB_RUN/node-ip" ] || die "the lab was never brought up here: run make lab-up"
  lab_start_daemon "$name"
  local i limit=${COLDBENCH_LAB_UP_TIMEOUT:-300}
  for ((i = 0; i < limit; i++)); do
    if lab_ready "$name" >/dev/null 2>&1; then log "$name ready"; return 0; fi
    lab_running "$name" || die "$name exited at start: see $LAB_LOG/$name.log"
    sleep 1
  done
  die "$name not ready after ${limit}s: see $LAB_LOG/$name.log"
}

case $op in
status) lab_ready "$name" >/dev/null 2>&1 ;;
stop) lab_lock state; lab_stop "$name" "$timeout" ;;
start) lab_lock state; start ;;
restart) lab_lock state; lab_stop "$name" "$timeout"; start ;;
*) usage ;;
esac
