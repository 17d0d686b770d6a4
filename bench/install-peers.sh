#!/usr/bin/env bash
# install-peers.sh installs the relays dtbench compares dtrelay with.
#
#   bench/install-peers.sh [DIR]        (default DIR: /opt/dtbench-peers)
#
# syslog-ng (syslog-ng-core + syslog-ng-mod-http) is installed with apt.
# rsyslog conflicts with syslog-ng as a Debian package, so rsyslog and its TLS
# driver (rsyslog-openssl, else rsyslog-gnutls) are fetched with
# `apt-get download` and unpacked under DIR with `dpkg-deb -x`; dtbench then
# runs DIR/usr/sbin/rsyslogd -M DIR/usr/lib/x86_64-linux-gnu/rsyslog.
# Idempotent: what is already there is not fetched again. Needs root for apt.
set -euo pipefail

dir=${1:-${DTBENCH_PEERS:-/opt/dtbench-peers}}
export DEBIAN_FRONTEND=noninteractive

updated=0
apt_update() {
	if [ "$updated" = 0 ]; then
		apt-get update -q
		updated=1
	fi
}

# syslog-ng with its http() destination.
if ! command -v syslog-ng >/dev/null 2>&1 || ! dpkg -s syslog-ng-mod-http >/dev/null 2>&1; then
	apt_update
	apt-get install -y -q --no-install-recommends syslog-ng-core syslog-ng-mod-http
fi

# rsyslog, unpacked (not installed) under $dir.
moddir=$(ls -d "$dir"/usr/lib/*-linux-gnu/rsyslog 2>/dev/null | head -n1 || true)
if [ ! -x "$dir/usr/sbin/rsyslogd" ] || [ -z "$moddir" ] ||
	{ [ ! -e "$moddir/lmnsd_ossl.so" ] && [ ! -e "$moddir/lmnsd_gtls.so" ]; }; then
	apt_update
	mkdir -p "$dir"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(
		cd "$tmp"
		apt-get download rsyslog
		apt-get download rsyslog-openssl || apt-get download rsyslog-gnutls
		# rsyslog's shared-library dependencies that syslog-ng does not pull in.
		for p in libestr0 libfastjson4 liblognorm5 librelp0; do
			if ! dpkg -s "$p" >/dev/null 2>&1; then
				apt-get install -y -q --no-install-recommends "$p" || true
			fi
		done
	)
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$dir"
	done
fi

moddir=$(ls -d "$dir"/usr/lib/*-linux-gnu/rsyslog | head -n1)
echo "syslog-ng: $(command -v syslog-ng)"
echo "rsyslogd:  $dir/usr/sbin/rsyslogd"
echo "modules:   $moddir"
if ! ldd "$dir/usr/sbin/rsyslogd" | grep -q 'not found'; then
	"$dir/usr/sbin/rsyslogd" -v | head -n1
else
	echo "rsyslogd has missing libraries:" >&2
	ldd "$dir/usr/sbin/rsyslogd" | grep 'not found' >&2
	exit 1
fi
