#!/bin/sh
# Before the files are unpacked: the dtrelay user and group, which own
# /var/lib/dtrelay and the group of /etc/dtrelay. The sysusers.d file is not
# unpacked yet, so its line is given here too (the Fedora
# %sysusers_create_compat way); deploy/dtrelay.sysusers is the same line
# (a test in cmd/dtrelay checks that).
set -e
SYSUSERS='u dtrelay - "dtrelay Darktrace alert forwarder" /var/lib/dtrelay'
if command -v systemd-sysusers >/dev/null 2>&1; then
	echo "$SYSUSERS" | systemd-sysusers --replace=/usr/lib/sysusers.d/dtrelay.conf -
elif ! getent passwd dtrelay >/dev/null; then
	nologin=/usr/sbin/nologin
	[ -x "$nologin" ] || nologin=/sbin/nologin
	getent group dtrelay >/dev/null || groupadd --system dtrelay
	useradd --system --gid dtrelay --home-dir /var/lib/dtrelay --no-create-home \
		--shell "$nologin" --comment "dtrelay Darktrace alert forwarder" dtrelay
fi
