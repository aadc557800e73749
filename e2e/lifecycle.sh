#!/usr/bin/env bash
# Issue #20: 400 days of certificate lifecycle, with the real binaries, in a few minutes.
#
# The fleet of fleet.sh (namespaces, wireguard-go, a client reaching the "internet" through
# node-a) with a remote relay, which the client enrolls and syncs through, and the
# controller's embedded relay beside it. Every process runs under libfaketime
# (Debian's faketime) reading one shared offset file, so the wall clock of the whole fleet
# jumps together, 6 days at a time, up to day 402; monotonic time is left alone, so timers
# and timeouts behave. After each jump: one renewal pass of `cox serve`
# (fleet.reconcile_interval = 2 s), a look of the remote relay at its leaf
# (renewal.check_seconds = 1) and one `caravel sync` through it. Nothing is copied by hand.
#
# Asserted at the end: the client still reaches the internet through node-a, it still syncs
# through the remote relay, and the node, the device, the controller, the remote relay and
# the embedded relay each renewed their leaf at least 10 times.
set -euo pipefail
export PHAROS_E2E_DIR=${PHAROS_E2E_DIR:-/tmp/pharos-lifecycle}
# shellcheck source=fleet.sh
source "$(dirname "$0")/fleet.sh"

FAKETIME_LIB=${FAKETIME_LIB:-/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1}
OFFSET_FILE=/tmp/pharos-lifecycle.faketime
DAYS=${PHAROS_LIFECYCLE_DAYS:-402}
STEP_DAYS=6
EMBEDDED_RELAY=10.80.0.10:8443
COX_ENV=(COX_CONFIG="$WORK/ctrl/cox.yaml" COX_RELAY_EMBEDDED=true COX_RELAY_CLIENT_LISTEN=$EMBEDDED_RELAY
         COX_RELAY_PUBLIC_ENDPOINT=$EMBEDDED_RELAY COX_FLEET_RECONCILE_INTERVAL=2 COX_UI_LISTEN=10.79.0.2:8443)

[ -e "$FAKETIME_LIB" ] && command -v faketime >/dev/null || fail "no libfaketime: install Debian's faketime (make deps does)"
echo "+0d" >"$OFFSET_FILE"
# libfaketime's constructor adds FAKETIME_SHARED to the environment when it is missing,
# which moves `environ` and leaves a Swift program with no arguments. So one `faketime`
# process creates the shared state and lives through the run, and every other process
# gets its FAKETIME_SHARED up front.
faketime -f +0d sleep infinity </dev/null >/dev/null 2>&1 &
ANCHOR=$!
trap 'pkill -P "$ANCHOR" 2>/dev/null; kill "$ANCHOR" 2>/dev/null; true' EXIT
SHARED=""
for _ in $(seq 50); do
  for pid in $(pgrep -P "$ANCHOR") "$ANCHOR"; do
    SHARED=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^FAKETIME_SHARED=//p') || true
    [ -n "$SHARED" ] && break 2
  done
  sleep 0.1
done
[ -n "${SHARED:-}" ] || fail "faketime did not set up its shared state"
# Every process started from here on (cox, node, caravel, and the tools they run) reads its
# wall clock through libfaketime; wireguard-go (Go, no libc clock) keeps real time, which
# WireGuard does not mind.
export LD_PRELOAD=$FAKETIME_LIB FAKETIME_SHARED=$SHARED FAKETIME_TIMESTAMP_FILE=$OFFSET_FILE \
       FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1

count() { grep -a -c -- "$2" "$WORK/$1.log" || true; }
# The remote relay's leaf is not due: more than a third of its 30 days left, by the fleet's
# (fake) clock, which openssl reads too.
relay_leaf_fresh() {
  local leaf="$WORK/relay/state/relay-renewed.pem"
  [ -s "$leaf" ] || leaf="$WORK/relay/relay.crt"
  openssl x509 -noout -checkend $((10 * 86400)) -in "$leaf" >/dev/null
}
# The controller saw the relay present the leaf it issued it last (it redials the tunnel once
# after a renewal to look), and the serial it records is the one on the relay's disk.
relay_presents_newest() {
  local line serial
  line=$(cox relays list 2>/dev/null | grep ' relay.pharos.test ') || return 1
  grep -q 'renewed, next due' <<<"$line" || return 1
  serial=$(openssl x509 -noout -serial -in "$WORK/relay/state/relay-renewed.pem" | cut -d= -f2 | tr 'A-F' 'a-f')
  cox pki status | grep -E '^relay +relay.pharos.test ' | grep -q "${serial:0:16}"
}
# A sync whose certificate renewal, when one was due, went through (a call can fail while the
# controller redials the relay's tunnel with its own renewed leaf: the next try fixes it).
sync_and_renew() { local out; out=$(caravel sync 2>&1) || return 1; ! grep -q "not renewed" <<<"$out"; }
# Step timing from the real clock (date, like everything here, reads the fake one).
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
step() { STEP_START=$(uptime_ms); printf '%-84s' "$1"; }
done_step() { printf 'ok  %5d ms\n' $(( $(uptime_ms) - STEP_START )); }

lifecycle() {
  trap 'unset LD_PRELOAD; down; rm -f "$OFFSET_FILE"; pkill -P "$ANCHOR" 2>/dev/null; kill "$ANCHOR" 2>/dev/null; true' EXIT
  step "1. controller (embedded relay too), a remote relay, node-a, a client through both"
  for binary in "$BIN_COX" "$BIN_NODE" "$BIN_RELAY" "$BIN_CARAVEL"; do [ -x "$binary" ] || fail "missing $binary"; done
  down
  mkdir -p "$WORK/ctrl" "$WORK/relay" "$WORK/client"
  topology
  in_ns pv-ctrl iptables -I INPUT -p tcp --dport 8443 -d 10.80.0.10 -j ACCEPT   # the embedded relay's client port
  internet
  cox init --state-dir "$WORK/ctrl/state" >/dev/null
  node_up node-a 10.80.0.31 awga
  cox nodes status node-a >/dev/null || fail "cox nodes status node-a"
  "$BIN_RELAY" gen-csr --config-dir "$WORK/relay" >"$WORK/relay.csr"
  cox relays enroll --csr "$WORK/relay.csr" --endpoint "$RELAY_IP:8444" --hostname relay.pharos.test \
    --public "$RELAY_IP:8443" --out "$WORK/relay" >/dev/null
  start relay pv-relay env RELAY_RENEWAL_CHECK_SECONDS=1 "$BIN_RELAY" run --config-dir "$WORK/relay" --state-dir "$WORK/relay/state"
  wait_for 10 log_has relay "relay listening" || fail "the relay did not start"
  serve
  wait_for 30 log_has relay "controller tunnel up" || fail "the controller did not dial the relay's tunnel"
  cox users add Alice --email alice@example.org >/dev/null
  cox profiles create main --user alice@example.org --node node-a --protocol amneziawg >/dev/null
  local link; link=$(cox enroll alice@example.org --relay "$RELAY_IP:8443" 2>/dev/null)
  caravel enroll "$link" --name phone >/dev/null || fail "caravel enroll through the remote relay"
  connect
  expect_seen_as 10.90.0.31 || fail "the internet did not see node-a's address"
  done_step

  step "2. the fleet's clock moves $DAYS days, $STEP_DAYS at a time; a sync after each step"
  local day
  for ((day = STEP_DAYS; day <= DAYS; day += STEP_DAYS)); do
    echo "+${day}d" >"$OFFSET_FILE"
    sleep 3.2   # the offset file is re-read within 1 s; then at least one 2 s renewal pass
    wait_for 20 relay_leaf_fresh || fail "day $day: the remote relay did not renew its leaf: $(grep -a 'renewal failed' "$WORK/relay.log" | tail -1)"
    wait_for 20 sync_and_renew || fail "day $day: caravel sync failed or did not renew: $(caravel sync 2>&1 | tail -1)"
  done
  done_step

  step "3. day $DAYS: traffic flows, the client syncs, every leaf renewed at least 10 times"
  expect_seen_as 10.90.0.31 10 || fail "day $DAYS: the client no longer reaches the internet through node-a"
  # The last jump may have renewed the controller's 7-day leaf, which redials the relay's
  # tunnel: the sync waits for it as every step's does.
  wait_for 20 caravel sync || fail "day $DAYS: caravel sync failed: $(caravel sync 2>&1 | tail -1)"
  local node device controller relay embedded
  node=$(cox audit --action node.cert.renew --limit 1000 2>/dev/null | grep -c node.cert.renew || true)
  device=$(cox audit --action device.cert.renew --limit 1000 2>/dev/null | grep -c device.cert.renew || true)
  relay=$(cox audit --action relay.cert.renew --limit 1000 2>/dev/null | grep -c relay.cert.renew || true)
  [ "$relay" = "$(count relay "certificate renewed")" ] \
    || fail "the controller issued $relay relay leaves, the relay installed $(count relay "certificate renewed")"
  [ -s "$WORK/relay/state/relay-renewed.pem" ] || fail "the relay kept no renewed leaf in its state directory"
  controller=$(count cox "controller certificate renewed")
  embedded=$(count cox "embedded relay leaf re-issued")
  say ""
  say "   renewals in $DAYS days: node $node, device $device, controller $controller, remote relay $relay, embedded relay $embedded"
  for pair in "node:$node" "device:$device" "controller:$controller" "relay:$relay" "embedded relay:$embedded"; do
    [ "${pair#*:}" -ge 10 ] || fail "the ${pair%%:*} leaf was renewed only ${pair#*:} times in $DAYS days"
  done
  cox pki status | grep -E ' (expired|expiring) *$' | grep -v revoked && fail "a leaf in use is expired or expiring at day $DAYS"
  wait_for 20 relay_presents_newest \
    || fail "day $DAYS: the controller does not count the relay's newest leaf as served: $(cox relays list 2>&1 | grep relay.pharos.test)"
  printf '%-84s' ""
  done_step

  step "4. everything removed"
  # Back to the real clock: `caravel down` waits for the client in a way libfaketime stalls.
  unset LD_PRELOAD
  disconnect
  trap - EXIT
  down
  rm -f "$OFFSET_FILE"
  pkill -P "$ANCHOR" 2>/dev/null || true
  kill "$ANCHOR" 2>/dev/null || true
  done_step
  say "lifecycle: all steps passed"
}

lifecycle
