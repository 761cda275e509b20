#!/usr/bin/env bash
# Installs what coldbench's tests need beyond the node backend
# (scripts/node-up.sh), idempotently: Debian's chromium, for the headless
# screenshot test of the HTML report (pkg/report/html_integration_test.go).
# Run as root.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if ! command -v chromium >/dev/null; then
  [ "$(id -u)" = 0 ] || die "run as root to install chromium (apt-get)"
  log "installing chromium (headless screenshot test of the HTML report)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
