#!/bin/sh
# After install or upgrade: systemd reads the new unit, and a running relay
# restarts on the new binary (its spool keeps what it had queued). A first
# install is not started: edit /etc/dtrelay/dtrelay.yaml, then
# systemctl enable --now dtrelay.
set -e
# The state directory (systemd's StateDirectory= creates it too; this is for
# a relay started without systemd). Not in the package: dpkg would try to
# remove it, full, on removal; a purge deletes it (postremove).
if [ ! -d /var/lib/dtrelay ]; then
	install -d -o dtrelay -g dtrelay -m 0750 /var/lib/dtrelay
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	systemctl try-restart dtrelay.service || true
fi
