#!/usr/bin/env bash
# make deb-test, part 2 (root): the units really run, hardening and all, under a real systemd.
# A minimal Debian 12 (debootstrap) gets dist/pharos-*.deb installed, is booted with
# systemd-nspawn (private network, /dev/net/tun bound in), and then, as an operator would:
# the controller, a relay and a node are enrolled with the packaged tools, their units are
# enabled and started (Type=notify: start returns once each said READY=1), and the checks say
# that each runs as its user with its capabilities only, the controller reaches the node over
# mTLS and the relay's tunnel is up; a client enrolls through the relay and
# pharos-caravel@PROFILE brings its tunnel up; the watchdogs are fed; stopping tears down.
# shellcheck source=test-common.sh
. "$(dirname "$0")/test-common.sh" test-units "debootstrap, systemd-nspawn"
export DEBIAN_FRONTEND=noninteractive
for tool in debootstrap:debootstrap systemd-nspawn:systemd-container nsenter:util-linux; do
	command -v "${tool%%:*}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${tool##*:}" >/dev/null; }
done

work=$(mktemp -d /var/tmp/pharos-units.XXXXXX)
fs="$work/fs"
nspawn=""
fail() {
	printf '  FAIL %s\n' "$*" >&2
	[ -z "${INIT:-}" ] || inside journalctl --no-pager -n 40 -u pharos-coxswain -u pharos-relay -u pharos-node >&2 || true
	exit 1
}
cleanup() {
	local status=$?
	if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
		[ -z "${INIT:-}" ] || inside systemctl poweroff >/dev/null 2>&1 || true
		for _ in $(seq 50); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.2; done
		# A container whose nspawn is killed keeps running orphaned: take its processes too.
		if kill -0 "$nspawn" 2>/dev/null; then
			[ -z "${INIT:-}" ] || { pkill -KILL -P "$INIT" 2>/dev/null; kill -KILL "$INIT" 2>/dev/null; } || true
			kill -KILL "$nspawn" 2>/dev/null || true
		fi
	fi
	mountpoint -q "$fs/proc" && umount "$fs/proc"
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT

# The packages' runtime dependencies (first alternatives) go into the base system.
include=systemd,systemd-sysv,dbus,adduser,iproute2,openssl,curl
for deb in "${debs[@]}"; do
	for dep in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g'); do include="$include,$dep"; done
done
start=$(date +%s)
echo "==> debootstrap bookworm (minbase + the packages' dependencies)"
# The host's own Debian mirror (a CI machine may have one of its own), else deb.debian.org.
mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
	| grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
mirror=${PHAROS_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
debootstrap --variant=minbase --include="$include" bookworm "$fs" "$mirror" >"$work/debootstrap.log" 2>&1 \
	|| { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
ok "a minimal Debian 12 in $(( $(date +%s) - start )) s"

in_chroot() { chroot "$fs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root sh -c "cd / && $1"; }
mkdir -p "$fs/root/debs" && cp "${debs[@]}" "$fs/root/debs/"
mount -t proc proc "$fs/proc"
in_chroot 'dpkg -i /root/debs/*.deb' >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i inside the container"; }
ok "dpkg -i of the four packages inside it"

# Enrollment, as the READMEs tell an operator: keys made where they live, certificates from cox.
in_chroot '
set -e
cox users add Ops --email ops@example.com --admin >/dev/null
relay gen-csr >/tmp/relay.csr
cox relays enroll --csr /tmp/relay.csr --endpoint 127.0.0.1:8444 --hostname relay.test --public 127.0.0.1:9443 --out /tmp/relay-out >/dev/null
install -o root -g pharos-relay -m 0644 /tmp/relay-out/relay.crt /tmp/relay-out/ca.crt /tmp/relay-out/device-ca.crt /etc/pharos/relay/
sed -i "s/listen_addr: \":8443\"/listen_addr: \":9443\"/" /etc/pharos/relay/relay.yaml
pharos-node gen-csr >/tmp/node.csr
cox nodes enroll --csr /tmp/node.csr --addr 127.0.0.1:8445 --name n1 --wg-port 51820 --out /tmp/node-out >/dev/null
install -m 0644 /tmp/node-out/node.crt /tmp/node-out/ca.crt /etc/pharos/node/
sed -i "s/listen_addr: \":8444\"/listen_addr: \"127.0.0.1:8445\"/; s/listen_port: 443 /listen_port: 51820 /" /etc/pharos/node/node.yaml
' >"$work/enroll.log" 2>&1 || { cat "$work/enroll.log" >&2; fail "enrollment with the packaged tools"; }
umount "$fs/proc"
ok "relay and node enrolled with cox, relay gen-csr and pharos-node gen-csr"

echo "==> booting it with systemd-nspawn"
systemd-nspawn -D "$fs" --register=no --keep-unit --private-network --bind=/dev/net/tun -b >"$work/console.log" 2>&1 &
nspawn=$!
INIT=""
# The container's PID 1 is nspawn's child once it has become systemd.
for _ in $(seq 200); do
	candidate=$(pgrep -P "$nspawn" | head -1 || true)
	if [ -n "$candidate" ] && [ "$(tr -d '\0' <"/proc/$candidate/cmdline" 2>/dev/null)" = /usr/lib/systemd/systemd ]; then
		INIT=$candidate
		break
	fi
	sleep 0.1
done
[ -n "$INIT" ] || fail "systemd-nspawn did not start the container's systemd"
inside() { nsenter -t "$INIT" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
state=""
for _ in $(seq 120); do
	state=$(inside systemctl is-system-running 2>/dev/null || true)
	case "$state" in running|degraded) break ;; esac
	sleep 0.5
done
[ "$state" = running ] || [ "$state" = degraded ] || fail "the container's systemd is ${state:-unreachable} after 60 s"
ok "systemd is $state inside"

echo "==> the units"
inside systemctl enable --now pharos-coxswain.service pharos-relay.service pharos-node.service >"$work/start.log" 2>&1 \
	|| { cat "$work/start.log" >&2; fail "systemctl enable --now"; }
ok "enable --now returned: all three said READY=1 (Type=notify)"
declare -A expect_user=([pharos-coxswain]=pharos-coxswain [pharos-relay]=pharos-relay [pharos-node]=root)
declare -A expect_caps=([pharos-coxswain]=0000000000000400 [pharos-relay]=0000000000000400 [pharos-node]=0000000000003400)
for unit in pharos-coxswain pharos-relay pharos-node; do
	pid=$(inside systemctl show -p MainPID --value "$unit")
	[ "$pid" != 0 ] || fail "$unit has no main process"
	uid=$(inside awk '/^Uid:/ {print $2}' "/proc/$pid/status")
	want=$(inside id -u "${expect_user[$unit]}")
	[ "$uid" = "$want" ] || fail "$unit runs as uid $uid, not ${expect_user[$unit]}"
	bounding=$(inside awk '/^CapBnd:/ {print $2}' "/proc/$pid/status")
	[ "$bounding" = "${expect_caps[$unit]}" ] || fail "$unit's capability bounding set is $bounding, not ${expect_caps[$unit]}"
	nnp=$(inside awk '/^NoNewPrivs:/ {print $2}' "/proc/$pid/status")
	[ "$nnp" = 1 ] || fail "$unit runs without NoNewPrivileges"
	seccomp=$(inside awk '/^Seccomp:/ {print $2}' "/proc/$pid/status")
	[ "$seccomp" = 2 ] || fail "$unit has no system-call filter (Seccomp: $seccomp)"
	ok "$unit runs as ${expect_user[$unit]}, capabilities $bounding, no new privileges, system calls filtered"
done
inside sh -c 'cd / && cox nodes status n1' >"$work/status.txt" 2>&1 || { cat "$work/status.txt" >&2; fail "cox nodes status n1"; }
grep -q "running=true" "$work/status.txt" || { cat "$work/status.txt" >&2; fail "the node's data plane is not running"; }
inside test -s /var/lib/pharos/node/awg-node.json || fail "the node keeps no state in /var/lib/pharos/node"
ok "cox reaches the node over mTLS; its wireguard-go runs; its state is in /var/lib/pharos/node"
for _ in $(seq 60); do inside journalctl -u pharos-relay --no-pager | grep -q "controller tunnel up" && break; sleep 0.5; done
inside journalctl -u pharos-relay --no-pager | grep -q "controller tunnel up" || fail "the controller's tunnel to the relay did not come up"
ok "the controller dialed the relay's tunnel port (as pharos-coxswain, from its unit)"
inside curl -sf http://127.0.0.1:8443/healthz | grep -q '"status":"ok"' || fail "the admin API does not answer on 127.0.0.1:8443"
ok "the admin API answers on 127.0.0.1:8443"

echo "==> a client: join link through the relay, then pharos-caravel@phone"
inside sh -c 'cd / && cox profiles create main --user ops@example.com --node n1' >"$work/profile.log" 2>&1 \
	|| { cat "$work/profile.log" >&2; fail "cox profiles create"; }
link=$(inside sh -c 'cd / && cox enroll ops@example.com --relay 127.0.0.1:9443' 2>/dev/null | grep '^pharosvpn://' || true)
[ -n "$link" ] || fail "cox enroll printed no join link"
inside caravel enroll "$link" --name phone >"$work/caravel.log" 2>&1 || { cat "$work/caravel.log" >&2; fail "caravel enroll through the relay"; }
inside test -d /var/lib/pharos/caravel || fail "caravel (root) did not store its profile in /var/lib/pharos/caravel"
ok "caravel enrolled through the relay's client port and synced its sealed profile"
inside systemctl start pharos-caravel@phone.service >"$work/start-caravel.log" 2>&1 \
	|| { cat "$work/start-caravel.log" >&2; inside journalctl --no-pager -u pharos-caravel@phone >&2; fail "systemctl start pharos-caravel@phone"; }
handshake=0
for _ in $(seq 50); do
	handshake=$(inside wg show pharos0 latest-handshakes 2>/dev/null | awk '{print $2; exit}' || true)
	[ "${handshake:-0}" != 0 ] && break
	sleep 0.2
done
if [ "${handshake:-0}" = 0 ]; then
	inside journalctl --no-pager -u pharos-caravel@phone >&2 || true
	inside ip -brief link >&2 || true
	fail "pharos-caravel@phone is up but its tunnel never completed a handshake with the node"
fi
ok "pharos-caravel@phone said READY=1 once up; its WireGuard handshake with the node completed"

echo "==> watchdogs (the relay's WatchdogSec is 30 s)"
sleep 35
for unit in pharos-coxswain pharos-relay pharos-node pharos-caravel@phone; do
	[ "$(inside systemctl show -p NRestarts --value "$unit")" = 0 ] || fail "$unit was restarted"
	[ "$(inside systemctl is-active "$unit")" = active ] || fail "$unit is $(inside systemctl is-active "$unit")"
done
ok "35 s later every unit is still active with no restart"

inside systemctl stop pharos-caravel@phone.service
inside ip link show pharos0 >/dev/null 2>&1 && fail "stopping pharos-caravel@phone left pharos0 behind"
ok "stopping pharos-caravel@phone takes its tunnel down"
inside systemctl stop pharos-node.service
inside ip link show awg0 >/dev/null 2>&1 && fail "stopping pharos-node left awg0 behind"
ok "stopping pharos-node removes its WireGuard interface"
echo "==> test-units: $checks checks passed"
