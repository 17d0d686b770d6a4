#!/bin/sh
# After removal. A deb purge also deletes the state: the spool (alerts not
# yet delivered), the dead letters and the file output under
# /var/lib/dtrelay. The dtrelay user stays (Debian policy: its files may
# remain elsewhere).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/dtrelay
	rmdir /etc/dtrelay 2>/dev/null || true
fi
