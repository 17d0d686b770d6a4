#!/usr/bin/env bash
# install-promtool.sh unpacks promtool, for the tests of the shipped alert
# rules and of the /metrics exposition (internal/relay: TestAlertRules,
# TestMetricsExposition), from Debian's prometheus package: fetched with
# `apt-get download` and unpacked with `dpkg-deb -x` under DIR, like
# bench/install-peers.sh does for rsyslog (installing the package would set
# up and start a Prometheus server). The tests find DIR/usr/bin/promtool.
#
#   deploy/prometheus/install-promtool.sh [DIR]   (default DIR: $DTBENCH_PEERS or /opt/dtbench-peers)
#
# Idempotent. Needs root for apt-get update.
set -euo pipefail

dir=${1:-${DTBENCH_PEERS:-/opt/dtbench-peers}}
if [ -x "$dir/usr/bin/promtool" ]; then
	"$dir/usr/bin/promtool" --version | head -n1
	exit 0
fi
tmp=$(mktemp -d)
chmod 755 "$tmp" # apt-get download runs as _apt
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && { apt-get download prometheus || { apt-get update -q && apt-get download prometheus; }; })
mkdir -p "$dir"
dpkg-deb -x "$tmp"/prometheus_*.deb "$dir"
"$dir/usr/bin/promtool" --version | head -n1
