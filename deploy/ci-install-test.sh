#!/usr/bin/env bash
# ci-install-test.sh: the packages as an admin gets them. As root on a Debian
# machine: build the .deb and .rpm (make package), install the .deb with
# dpkg -i, check the installed unit (systemd-analyze verify, an exposure
# score of at most 2.0) and configuration (dtrelay check), run the relay as
# the dtrelay user on the packaged configuration without systemd (CI has no
# systemd as PID 1), send an alert over TCP to port 1514 and find it in the
# file output under /var/lib/dtrelay, stop it, then dpkg --purge and check
# that the files are gone. The .rpm is listed with rpm when it is there.
#
#   bash deploy/ci-install-test.sh      (make install-test; .ci/run)
#
# It installs and purges the dtrelay package of this machine, so outside CI
# it refuses to run where dtrelay is installed or /var/lib/dtrelay holds
# files (set DTRELAY_INSTALL_TEST_FORCE=1 to run anyway). What a previous,
# interrupted run left (the package, its state, its relay) is cleaned up
# first. It leaves no process and no port in use behind.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXPOSURE=2.0
UNIT=/usr/lib/systemd/system/dtrelay.service
CONFIG=/etc/dtrelay/dtrelay.yaml
OUTFILE=/var/lib/dtrelay/alerts.ndjson
PIDFILE=/run/dtrelay-ci-install-test.pid
LOG=$(mktemp /tmp/dtrelay-install-test.XXXXXX.log)

if [ "$(id -u)" != 0 ]; then
	echo "ci-install-test: not root: skipping the package install test"
	exit 0
fi
if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "ci-install-test: not a Debian machine (no dpkg/apt-get): skipping the package install test"
	exit 0
fi

step() { printf '\n== %s\n' "$*"; }
run() {
	printf '+ %s\n' "$*"
	"$@"
}
fail() {
	echo "ci-install-test: FAIL: $*" >&2
	exit 1
}

export DEBIAN_FRONTEND=noninteractive
updated=0
need() { # need COMMAND PACKAGE: apt-get install PACKAGE when COMMAND is missing
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$updated" = 0 ]; then
		apt-get update -q >/dev/null
		updated=1
	fi
	apt-get install -y -q --no-install-recommends "$2" >/dev/null
}

installed() { dpkg-query -W -f='${Status}' dtrelay 2>/dev/null | grep -qv '^unknown\|not-installed'; }

# stop_relay stops the relay this script started (by its recorded pid,
# checked to still be /usr/bin/dtrelay) and waits for it to exit.
stop_relay() {
	[ -f "$PIDFILE" ] || return 0
	local pid
	pid=$(cat "$PIDFILE")
	local exe
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	if [ -n "$pid" ] && { [ "$exe" = /usr/bin/dtrelay ] || [ "$exe" = "/usr/bin/dtrelay (deleted)" ]; }; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
}

cleanup() {
	local rc=$?
	stop_relay
	if installed; then
		dpkg --purge dtrelay >/dev/null 2>&1 || true
	fi
	if [ "$rc" != 0 ] && [ -s "$LOG" ]; then
		echo "--- dtrelay's log:" >&2
		cat "$LOG" >&2
	fi
	rm -f "$LOG"
	exit "$rc"
}

if [ "${CI:-}" != true ] && [ "${DTRELAY_INSTALL_TEST_FORCE:-}" != 1 ]; then
	if installed || [ -n "$(ls -A /var/lib/dtrelay 2>/dev/null)" ]; then
		fail "dtrelay is installed here or /var/lib/dtrelay holds files: this test would purge them (DTRELAY_INSTALL_TEST_FORCE=1 to run anyway)"
	fi
fi
trap cleanup EXIT

step "leftovers of an earlier run"
stop_relay
if installed; then
	run dpkg --purge dtrelay
fi
rm -rf /var/lib/dtrelay
if command -v ss >/dev/null 2>&1 && ss -Htlnu 'sport = :1514' | grep -q .; then
	ss -tlnup 'sport = :1514' >&2 || true
	fail "port 1514 is in use by another process"
fi

need systemd-analyze systemd
need rpm rpm || echo "rpm cannot be installed: the .rpm is only checked to exist"

step "build the packages"
run make package
deb=$(ls dist/dtrelay_*.deb)
rpmfile=$(ls dist/dtrelay-*.rpm)

step "the .rpm"
[ -s "$rpmfile" ] || fail "no .rpm built"
if command -v rpm >/dev/null 2>&1; then
	run rpm -qip "$rpmfile" 2>/dev/null | sed -n '1,4p'
	listing=$(rpm -qlvp "$rpmfile" 2>/dev/null)
	echo "$listing"
	for f in /usr/bin/dtrelay "$UNIT" /usr/lib/sysusers.d/dtrelay.conf "$CONFIG"; do
		grep -q " $f\$" <<<"$listing" || fail "the .rpm lacks $f"
	done
	rpm -qcp "$rpmfile" 2>/dev/null | grep -qx "$CONFIG" || fail "the .rpm does not mark $CONFIG as a config file"
fi

step "install the .deb"
run dpkg -i "$deb"
id dtrelay
ls -ld /etc/dtrelay "$CONFIG" /var/lib/dtrelay /usr/bin/dtrelay "$UNIT"
grep -qx /etc/dtrelay/dtrelay.yaml /var/lib/dpkg/info/dtrelay.conffiles || fail "$CONFIG is not a conffile"
run /usr/bin/dtrelay version
/usr/bin/dtrelay version | grep -qv '(devel)' || fail "the binary has no version (-ldflags -X main.version)"

step "the installed unit"
out=$(systemd-analyze verify "$UNIT" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
echo "+ systemd-analyze verify $UNIT: clean"
score=$(systemd-analyze security --offline=true "$UNIT" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "no exposure level from systemd-analyze security"
echo "+ systemd-analyze security --offline=true $UNIT: exposure $score (at most $MAX_EXPOSURE)"
awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' || fail "exposure $score is above $MAX_EXPOSURE"

step "the packaged configuration"
run runuser -u dtrelay -- /usr/bin/dtrelay check -c "$CONFIG"

step "run it as the dtrelay user, without systemd"
printf '+ setpriv --reuid=dtrelay --regid=dtrelay --init-groups --no-new-privs --inh-caps=-all /usr/bin/dtrelay run -c %s &\n' "$CONFIG"
(cd /var/lib/dtrelay && exec setpriv --reuid=dtrelay --regid=dtrelay --init-groups --no-new-privs --inh-caps=-all \
	/usr/bin/dtrelay run -c "$CONFIG") </dev/null >/dev/null 2>"$LOG" &
pid=$!
echo "$pid" >"$PIDFILE"
up=0
for _ in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || fail "dtrelay exited at start"
	if (exec 3<>/dev/tcp/127.0.0.1/1514) 2>/dev/null; then
		up=1
		break
	fi
	sleep 0.1
done
[ "$up" = 1 ] || fail "nothing accepts on 127.0.0.1:1514 after 10s"
ps -o user=,pid=,args= -p "$pid"

step "send an alert over TCP to 1514"
marker="ci-install-$(date +%s)-$$"
alert="{\"pbid\":1,\"time\":1700000000000,\"score\":1,\"model\":{\"name\":\"Unrestricted Test Model\"},\"ci\":\"$marker\"}"
line="<165>1 2024-01-01T00:00:00Z dt-master darktrace - - - $alert"
echo "+ printf '%s\\n' '$line' > /dev/tcp/127.0.0.1/1514"
exec 3<>/dev/tcp/127.0.0.1/1514
printf '%s\n' "$line" >&3
exec 3>&-
found=0
for _ in $(seq 100); do
	if grep -qF "$marker" "$OUTFILE" 2>/dev/null; then
		found=1
		break
	fi
	sleep 0.1
done
[ "$found" = 1 ] || fail "the alert is not in $OUTFILE after 10s"
grep -F "$marker" "$OUTFILE"
[ "$(grep -F "$marker" "$OUTFILE")" = "$alert" ] || fail "the alert in $OUTFILE is not byte for byte the one sent"
ls -l "$OUTFILE"
[ "$(stat -c %U "$OUTFILE")" = dtrelay ] || fail "$OUTFILE is not owned by dtrelay"
[ -d /var/lib/dtrelay/spool ] || fail "no spool under /var/lib/dtrelay"

step "SIGHUP leaves it running, SIGTERM stops it cleanly"
run kill -HUP "$pid"
sleep 0.5
kill -0 "$pid" 2>/dev/null || fail "dtrelay died of SIGHUP"
run kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
rm -f "$PIDFILE"
echo "exit code $rc"
[ "$rc" = 0 ] || fail "dtrelay exited $rc after SIGTERM, want 0"
grep -q '"message":"stopped"' "$LOG" || fail "no 'stopped' log line"

step "the syscalls it makes are within the unit's SystemCallFilter and RestrictAddressFamilies"
# No systemd here to apply the filter, so: the relay (run, with an alert
# over TCP and UDP, a /metrics scrape, SIGHUP, SIGTERM; and check) under
# strace, every syscall it made looked up in what the unit allows.
if need strace strace; then
	syscall_set() { # the syscalls of a systemd-analyze syscall-filter group, its groups expanded
		systemd-analyze syscall-filter "$1" | tail -n +2 | sed 's/^ *//; /^#/d; /^$/d' | while read -r s; do
			case $s in @*) syscall_set "$s" ;; *) echo "$s" ;; esac
		done
	}
	filter=$(sed -n 's/^SystemCallFilter=//p' "$UNIT")
	allowed=$(mktemp)
	denied=$(mktemp)
	trace=$(mktemp -d)
	chown dtrelay "$trace"
	while read -r rule; do # a leading ~ denies every group and call on its line
		out=$allowed
		case $rule in "~"*) out=$denied rule=${rule#"~"} ;; esac
		for f in $rule; do
			case $f in @*) syscall_set "$f" ;; *) echo "$f" ;; esac
		done >>"$out"
	done <<<"$filter"
	(cd /var/lib/dtrelay && exec setpriv --reuid=dtrelay --regid=dtrelay --init-groups --no-new-privs --inh-caps=-all \
		strace -f -qq -o "$trace/check" /usr/bin/dtrelay check -c "$CONFIG") >/dev/null
	(cd /var/lib/dtrelay && NOTIFY_SOCKET=/run/dtrelay-ci-no-such-socket exec setpriv --reuid=dtrelay --regid=dtrelay \
		--init-groups --no-new-privs --inh-caps=-all strace -f -qq -o "$trace/run" /usr/bin/dtrelay run -c "$CONFIG") \
		</dev/null >/dev/null 2>>"$LOG" &
	spid=$! # strace, once the subshell and setpriv have exec'd it
	pid=
	for _ in $(seq 100); do
		for c in $(cat "/proc/$spid/task/$spid/children" 2>/dev/null); do
			[ "$(readlink "/proc/$c/exe" 2>/dev/null)" = /usr/bin/dtrelay ] && pid=$c
		done
		[ -n "$pid" ] && (exec 3<>/dev/tcp/127.0.0.1/1514) 2>/dev/null && break
		sleep 0.1
	done
	[ -n "$pid" ] || fail "dtrelay under strace did not start"
	echo "$pid" >"$PIDFILE"
	printf '%s\n' "$line" >/dev/tcp/127.0.0.1/1514
	printf '%s\n' "$line" >/dev/udp/127.0.0.1/1514
	exec 3<>/dev/tcp/127.0.0.1/9514
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	timeout 5 head -c 12 <&3 | grep -q 'HTTP/1.. 200' || fail "no /metrics from dtrelay under strace"
	exec 3<&-
	for _ in $(seq 100); do
		[ "$(grep -cF "$marker" "$OUTFILE")" -ge 3 ] && break
		sleep 0.1
	done
	kill -HUP "$pid"
	sleep 0.3
	kill -TERM "$pid"
	rc=0
	wait "$spid" || rc=$?
	rm -f "$PIDFILE"
	[ "$rc" = 0 ] || fail "dtrelay under strace exited $rc"
	used=$(cat "$trace"/check "$trace"/run | awk '{print $2}' | grep -o '^[a-z_0-9]*' | sort -u)
	outside=$(grep -vxF -f "$allowed" <<<"$used" || true)
	outside="$outside $(grep -xF -f "$denied" <<<"$used" || true)"
	echo "$(wc -l <<<"$used") syscalls made: $(tr '\n' ' ' <<<"$used")"
	filter=$(tr '\n' ' ' <<<"$filter")
	[ -z "${outside// /}" ] || fail "syscalls outside SystemCallFilter= $filter: $(echo $outside)"
	echo "all within SystemCallFilter= $filter"
	families=$(sed -n 's/^RestrictAddressFamilies=//p' "$UNIT")
	for af in $(cat "$trace"/check "$trace"/run | grep -o 'socket(AF_[A-Z0-9]*' | sed 's/socket(//' | sort -u); do
		grep -qw -- "$af" <<<"$families" || fail "a socket of family $af, outside RestrictAddressFamilies=$families"
	done
	echo "socket families used: $(cat "$trace"/check "$trace"/run | grep -o 'socket(AF_[A-Z0-9]*' | sed 's/socket(//' | sort -u | tr '\n' ' ')(RestrictAddressFamilies=$families)"
	rm -rf "$allowed" "$denied" "$trace"
else
	echo "strace cannot be installed: the syscalls are not checked"
fi

step "purge"
run dpkg --purge dtrelay
for f in /usr/bin/dtrelay "$UNIT" /usr/lib/sysusers.d/dtrelay.conf /etc/dtrelay /var/lib/dtrelay /usr/share/doc/dtrelay; do
	[ ! -e "$f" ] || fail "$f is still there after dpkg --purge"
done
echo "gone: /usr/bin/dtrelay, the unit, the sysusers.d file, /etc/dtrelay, /var/lib/dtrelay, /usr/share/doc/dtrelay"
if getent passwd dtrelay >/dev/null; then
	echo "the dtrelay user stays (Debian policy)"
fi
if command -v ss >/dev/null 2>&1 && ss -Htlnu 'sport = :1514' | grep -q .; then
	fail "port 1514 is still in use"
fi
echo
echo "ci-install-test: ok (exposure $score; $(stat -c %s "$deb") byte .deb, $(stat -c %s "$rpmfile") byte .rpm)"
