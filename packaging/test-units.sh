#!/usr/bin/env bash
# make deb-test, part 2 (root): the units really run, hardening and all, under a real systemd.
# A minimal Debian 12 (debootstrap) gets dist/pharos-*.deb installed, is booted with
# systemd-nspawn (private network, /dev/net/tun bound in), and then, as an operator would:
# the controller is started (Type=notify: start returns once it said READY=1), and a relay and
# a node are installed, enrolled and started by `cox relays add` and `cox nodes add` over SSH
# (Debian's sshd inside); and the checks say
# that each runs as its user with its capabilities only, the controller reaches the node over
# mTLS and the relay's tunnel is up; a client enrolls through the relay and
# pharos-caravel@PROFILE brings its tunnel up; the watchdogs are fed; stopping tears down.
# Then the node's life over SSH: update to a newer package, stop, start, a changed host key
# refused with nothing done, and removal of the node and the relay.
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
include=systemd,systemd-sysv,dbus,adduser,iproute2,openssl,curl,openssh-server,openssh-client
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
mkdir -p "$fs/root/debs" "$fs/root/agent-debs/newer"
for deb in "${debs[@]}"; do
	case "$deb" in */pharos-node_*|*/pharos-relay_*) cp "$deb" "$fs/root/agent-debs/" ;; *) cp "$deb" "$fs/root/debs/" ;; esac
done
# `cox nodes update` gets a newer pharos-node: the same package with its version raised.
node_deb=$(ls "$fs"/root/agent-debs/pharos-node_*.deb)
node_version=$(dpkg-deb -f "$node_deb" Version)
newer_version="$node_version+ssh1"
dpkg-deb -R "$node_deb" "$work/newer"
sed -i "s/^Version: .*/Version: $newer_version/" "$work/newer/DEBIAN/control"
dpkg-deb --root-owner-group -b "$work/newer" "$fs/root/agent-debs/newer/pharos-node_${newer_version}.deb" >/dev/null
mount -t proc proc "$fs/proc"
in_chroot 'dpkg -i /root/debs/*.deb' >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i inside the container"; }
ok "dpkg -i of the controller and client packages inside it (the relay's and the node's come over SSH)"

# Enrollment, as the READMEs tell an operator: keys made where they live, certificates from cox.
in_chroot '
set -e
cox users add Ops --email ops@example.com --admin >/dev/null
install -d -m 0700 /root/.ssh
cox ssh-key >/root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
' >"$work/enroll.log" 2>&1 || { cat "$work/enroll.log" >&2; fail "enrollment with the packaged tools"; }
umount "$fs/proc"
ok "the controller's SSH key (cox ssh-key) authorized for root"

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
inside systemctl enable --now pharos-coxswain.service >"$work/start.log" 2>&1 \
	|| { cat "$work/start.log" >&2; fail "systemctl enable --now"; }
ok "enable --now returned: the controller said READY=1 (Type=notify)"
for _ in $(seq 60); do inside systemctl is-active --quiet ssh.service && break; sleep 0.5; done
t0=$(date +%s)
inside sh -c "cd / && cox relays add root@127.0.0.1 --package /root/agent-debs/pharos-relay_*.deb --endpoint 127.0.0.1:8444 --hostname relay.test --public 127.0.0.1:9443 --client-listen-port 9453" \
	>"$work/add-relay.log" 2>&1 || { cat "$work/add-relay.log" >&2; fail "cox relays add root@127.0.0.1"; }
[ "$(inside systemctl is-active pharos-relay.service)" = active ] || fail "cox relays add left pharos-relay $(inside systemctl is-active pharos-relay.service)"
inside systemctl is-enabled --quiet pharos-relay.service || fail "cox relays add did not enable pharos-relay"
ok "cox relays add over SSH in $(( $(date +%s) - t0 )) s: package installed, key made there (relay gen-csr), certificates installed, unit enabled and started"
# Clients are told 9443 (--public) and the relay listens on 9453 (--client-listen-port), as
# behind a port-forwarding NAT; the client step below goes through such a forward.
listening=""
for _ in $(seq 40); do inside bash -c 'exec 3<>/dev/tcp/127.0.0.1/9453' 2>/dev/null && { listening=yes; break; }; sleep 0.25; done
[ -n "$listening" ] || fail "the relay does not listen on --client-listen-port 9453"
! inside bash -c 'exec 3<>/dev/tcp/127.0.0.1/9443' 2>/dev/null || fail "the relay listens on --public's port 9443 although --client-listen-port is 9453"
ok "the relay listens for clients on --client-listen-port 9453, not on --public's 9443"
t0=$(date +%s)
inside sh -c "cd / && cox nodes add root@127.0.0.1 --package /root/agent-debs/pharos-node_*.deb --addr 127.0.0.1:8445 --name n1 --wg-port 51820" \
	>"$work/add.log" 2>&1 || { cat "$work/add.log" >&2; fail "cox nodes add root@127.0.0.1"; }
grep -q "answered GetStatus" "$work/add.log" || { cat "$work/add.log" >&2; fail "cox nodes add did not wait for the node to answer"; }
inside systemctl is-enabled --quiet pharos-node.service || fail "cox nodes add did not enable pharos-node"
[ "$(inside dpkg-query -W -f='${Version}' pharos-node)" = "$node_version" ] || fail "pharos-node $node_version is not installed"
[ -z "$(inside find /var/lib/pharos/coxswain -name '.ssh-*' -o -name '.package-*')" ] || fail "a copy of the controller's SSH key or a package was left in its state directory"
inside sh -c 'cd / && cox ssh-key pins' | grep -q "^127.0.0.1 " || fail "the host key of 127.0.0.1 was not pinned"
ok "cox nodes add over SSH in $(( $(date +%s) - t0 )) s: package installed, key made there, CSR signed, unit enabled and started, GetStatus answered, host key pinned"
# A one-time password puts the controller's key in another user's authorized_keys.
password="one-time $(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
inside useradd -m -s /bin/sh ops || fail "useradd ops"
printf 'ops:%s\n' "$password" | inside chpasswd || fail "chpasswd ops"
printf '%s\n' "$password" | inside sh -c 'cd / && cox ssh-key install ops@127.0.0.1' >"$work/install-key.log" 2>&1 \
	|| { cat "$work/install-key.log" >&2; fail "cox ssh-key install ops@127.0.0.1"; }
grep -q "added the controller's key" "$work/install-key.log" || { cat "$work/install-key.log" >&2; fail "cox ssh-key install did not add the key"; }
inside grep -qxF "$(inside sh -c 'cd / && cox ssh-key')" /home/ops/.ssh/authorized_keys || fail "the controller's key is not in ~ops/.ssh/authorized_keys"
found=0; inside grep -rqsF "$password" /var/lib/pharos/coxswain || found=$?
[ "$found" = 1 ] || fail "the one-time password was kept in the state directory (grep: $found)"
ok "cox ssh-key install: a one-time password (stdin) added the controller's key to ~ops/.ssh/authorized_keys; the key login works; the password is kept nowhere"
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
# The NAT in front of the relay: 9443, which clients are told, forwards to the relay's 9453.
inside iptables -t nat -A OUTPUT -o lo -p tcp --dport 9443 -j REDIRECT --to-ports 9453 \
	|| fail "iptables could not add the forward 9443 -> 9453 inside the container"
inside sh -c 'cd / && cox profiles create main --user ops@example.com --node n1' >"$work/profile.log" 2>&1 \
	|| { cat "$work/profile.log" >&2; fail "cox profiles create"; }
link=$(inside sh -c 'cd / && cox enroll ops@example.com --relay 127.0.0.1:9443' 2>/dev/null | grep '^pharosvpn://' || true)
[ -n "$link" ] || fail "cox enroll printed no join link"
inside caravel enroll "$link" --name phone >"$work/caravel.log" 2>&1 || { cat "$work/caravel.log" >&2; fail "caravel enroll through the relay"; }
inside test -d /var/lib/pharos/caravel || fail "caravel (root) did not store its profile in /var/lib/pharos/caravel"
ok "caravel enrolled through the relay's client port (9443, forwarded to 9453) and synced its sealed profile"
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

echo "==> the node's life over SSH"
t0=$(date +%s)
inside sh -c "cd / && cox nodes update n1 --package /root/agent-debs/newer/pharos-node_${newer_version}.deb" >"$work/update.log" 2>&1 \
	|| { cat "$work/update.log" >&2; fail "cox nodes update n1"; }
grep -q -- "-> $newer_version" "$work/update.log" && grep -q "answered GetStatus" "$work/update.log" \
	|| { cat "$work/update.log" >&2; fail "cox nodes update did not report $node_version -> $newer_version and an answer"; }
[ "$(inside dpkg-query -W -f='${Version}' pharos-node)" = "$newer_version" ] || fail "pharos-node was not updated to $newer_version"
ok "cox nodes update in $(( $(date +%s) - t0 )) s: pharos-node $node_version -> $newer_version, restarted, answered GetStatus"
inside sh -c 'cd / && cox nodes stop n1' >"$work/stop.log" 2>&1 || { cat "$work/stop.log" >&2; fail "cox nodes stop n1"; }
[ "$(inside systemctl is-active pharos-node.service)" = inactive ] || fail "cox nodes stop left pharos-node $(inside systemctl is-active pharos-node.service)"
inside ip link show awg0 >/dev/null 2>&1 && fail "stopping pharos-node left awg0 behind"
ok "cox nodes stop: the unit is inactive and its WireGuard interface gone"
# Started through the admin API: the daemon runs ssh from inside its hardened unit.
inside sh -c 'cd / && cox tokens create units-test --scope admin --expires 1h 2>/dev/null | sed "s/.*/header = \"Authorization: Bearer &\"/" >/root/curl.cfg'
inside curl -sS -K /root/curl.cfg -X POST http://127.0.0.1:8443/api/nodes/n1/start >"$work/start-node.json" 2>&1 \
	|| { cat "$work/start-node.json" >&2; fail "POST /api/nodes/n1/start"; }
grep -q '"agent_version":"' "$work/start-node.json" && grep -q '"running":true' "$work/start-node.json" \
	|| { cat "$work/start-node.json" >&2; inside journalctl --no-pager -n 20 -u pharos-coxswain >&2; fail "POST /api/nodes/n1/start did not start the node and see it answer"; }
[ "$(inside systemctl is-active pharos-node.service)" = active ] || fail "POST /api/nodes/n1/start left pharos-node inactive"
ok "POST /api/nodes/n1/start (cox serve's ssh, inside its unit): the unit is active and the node answers GetStatus"
# The server's host key changes (a reinstall, or someone in the middle): refused, nothing done.
inside sh -c 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh.service'
if inside sh -c 'cd / && cox nodes stop n1' >"$work/mitm.log" 2>&1; then cat "$work/mitm.log" >&2; fail "cox nodes stop went through a changed host key"; fi
grep -q "refused: 127.0.0.1 presented SSH host key SHA256:" "$work/mitm.log" || { cat "$work/mitm.log" >&2; fail "the changed host key was not refused with its sentence"; }
[ "$(inside systemctl is-active pharos-node.service)" = active ] || fail "the refused stop stopped pharos-node anyway"
ok "a changed host key is refused with a sentence, and the node keeps running"
inside sh -c 'cd / && cox ssh-key forget 127.0.0.1' >/dev/null || fail "cox ssh-key forget 127.0.0.1"
inside sh -c 'cd / && cox nodes rm n1' >"$work/rm.log" 2>&1 || { cat "$work/rm.log" >&2; fail "cox nodes rm n1"; }
[ "$(inside systemctl is-active pharos-node.service)" = inactive ] || fail "cox nodes rm left pharos-node running"
inside systemctl is-enabled --quiet pharos-node.service && fail "cox nodes rm left pharos-node enabled"
inside test ! -e /etc/pharos/node/node.crt || fail "cox nodes rm left node.crt on the host"
inside ip link show awg0 >/dev/null 2>&1 && fail "cox nodes rm left awg0 behind"
inside sh -c 'cd / && cox nodes list' >"$work/list.txt" 2>&1 || { cat "$work/list.txt" >&2; fail "cox nodes list"; }
grep -qw n1 "$work/list.txt" && fail "n1 is still listed after cox nodes rm"
ok "after forgetting the old pin: cox nodes rm stops and disables the unit, removes its certificates there and the node here"
inside sh -c 'cd / && cox relays rm relay.test' >"$work/rm-relay.log" 2>&1 || { cat "$work/rm-relay.log" >&2; fail "cox relays rm relay.test"; }
[ "$(inside systemctl is-active pharos-relay.service)" = inactive ] || fail "cox relays rm left pharos-relay running"
inside test ! -e /etc/pharos/relay/relay.crt || fail "cox relays rm left relay.crt on the host"
ok "cox relays rm stops and disables the relay there and removes its certificates"
echo "==> test-units: $checks checks passed"
