#!/bin/sh
# Before removal (not before an upgrade): stop and disable the service.
# deb passes "remove" (or "upgrade"), rpm the count left after: 0 on removal.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl stop dtrelay.service || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable dtrelay.service >/dev/null 2>&1 || true
	fi
	;;
esac
