#!/usr/bin/env bash
# install-peers.sh installs the relays dtbench compares dtrelay with, and the
# real RELP peers the RELP tests use.
#
#   bench/install-peers.sh [DIR]        (default DIR: /opt/dtbench-peers)
#
# syslog-ng (syslog-ng-core + syslog-ng-mod-http) is installed with apt.
# rsyslog conflicts with syslog-ng as a Debian package, so rsyslog, its TLS
# driver (rsyslog-openssl, else rsyslog-gnutls) and its RELP modules
# (rsyslog-relp: imrelp.so, omrelp.so) are fetched with `apt-get download` and
# unpacked under DIR with `dpkg-deb -x`; dtbench and the tests then run
# DIR/usr/sbin/rsyslogd -M DIR/usr/lib/x86_64-linux-gnu/rsyslog. Their shared
# libraries (libestr0, libfastjson4, liblognorm5, and librelp0, which does
# RELP's TLS with OpenSSL or GnuTLS, both linked in) are installed with apt.
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

tmp=$(mktemp -d)
chmod 755 "$tmp" # apt-get download runs as _apt
trap 'rm -rf "$tmp"' EXIT

# syslog-ng with its http() destination.
if ! command -v syslog-ng >/dev/null 2>&1 || ! dpkg -s syslog-ng-mod-http >/dev/null 2>&1; then
	apt_update
	apt-get install -y -q --no-install-recommends syslog-ng-core syslog-ng-mod-http
fi

# rsyslog's shared-library dependencies that syslog-ng does not pull in.
for p in libestr0 libfastjson4 liblognorm5 librelp0; do
	if ! dpkg -s "$p" >/dev/null 2>&1; then
		apt_update
		apt-get install -y -q --no-install-recommends "$p" || true
	fi
done

# rsyslog and its TLS driver, unpacked (not installed) under $dir.
moddir=$(ls -d "$dir"/usr/lib/*-linux-gnu/rsyslog 2>/dev/null | head -n1 || true)
if [ ! -x "$dir/usr/sbin/rsyslogd" ] || [ -z "$moddir" ] ||
	{ [ ! -e "$moddir/lmnsd_ossl.so" ] && [ ! -e "$moddir/lmnsd_gtls.so" ]; }; then
	apt_update
	mkdir -p "$dir" "$tmp/rsyslog"
	(
		cd "$tmp/rsyslog"
		apt-get download rsyslog
		apt-get download rsyslog-openssl || apt-get download rsyslog-gnutls
	)
	for deb in "$tmp"/rsyslog/*.deb; do
		dpkg-deb -x "$deb" "$dir"
	done
	moddir=$(ls -d "$dir"/usr/lib/*-linux-gnu/rsyslog | head -n1)
fi

# rsyslog-relp, of the same version as the unpacked rsyslog (its modules are
# built against it; the version is the first line of the unpacked changelog).
if [ ! -e "$moddir/imrelp.so" ] || [ ! -e "$moddir/omrelp.so" ]; then
	apt_update
	ver=$(zcat "$dir/usr/share/doc/rsyslog/changelog.Debian.gz" 2>/dev/null |
		sed -n '1s/^rsyslog (\([^)]*\)).*/\1/p' || true)
	mkdir -p "$tmp/relp"
	(
		cd "$tmp/relp"
		if [ -z "$ver" ] || ! apt-get download "rsyslog-relp=$ver"; then
			echo "rsyslog-relp ${ver:-of unknown version} not available; fetching the candidate" >&2
			apt-get download rsyslog-relp
		fi
	)
	dpkg-deb -x "$tmp"/relp/rsyslog-relp_*.deb "$dir"
fi

echo "syslog-ng: $(command -v syslog-ng)"
echo "rsyslogd:  $dir/usr/sbin/rsyslogd"
echo "modules:   $moddir"
for f in "$dir/usr/sbin/rsyslogd" "$moddir/imrelp.so" "$moddir/omrelp.so"; do
	if ldd "$f" | grep -q 'not found'; then
		echo "$f has missing libraries:" >&2
		ldd "$f" | grep 'not found' >&2
		exit 1
	fi
done
"$dir/usr/sbin/rsyslogd" -v | head -n1
echo "relp:      imrelp.so, omrelp.so with $(ldd "$moddir/imrelp.so" | grep -o 'librelp[^ ]*' | head -n1)"

# rsyslogd loads imrelp and omrelp with OpenSSL as their TLS library.
cat >"$tmp/relp-check.conf" <<'EOF'
module(load="imrelp" tls.tlslib="openssl")
input(type="imrelp" address="127.0.0.1" port="2514")
module(load="omrelp" tls.tlslib="openssl")
action(type="omrelp" target="127.0.0.1" port="2514")
EOF
if ! out=$("$dir/usr/sbin/rsyslogd" -N1 -f "$tmp/relp-check.conf" -M "$moddir" 2>&1); then
	echo "rsyslogd cannot load imrelp/omrelp:" >&2
	echo "$out" >&2
	exit 1
fi
echo "imrelp, omrelp: loaded by rsyslogd -N1"
