#!/usr/bin/env bash
# The whole PharosVPN fleet on one machine, in network namespaces (root):
#   pv-ctrl    coxswain (private: drops every inbound connection; it dials out)
#   pv-relay   a remote relay (client port 8443, tunnel port 8444)
#   pv-node-a  a node (wireguard-go, UDP 51820), also on the "internet" side
#   pv-node-b  a second node
#   pv-node-c  a third node (the exit of a 3-hop cascade)
#   pv-client  caravel (reaches only the relay and the nodes' data-plane ports)
#   pv-client2 a second machine the client's profile is copied to (a leaked profile)
#   pv-inet    the "internet": an HTTP server that answers with the caller's address
#   pv-pub     the public segment's switch (a bridge, no addresses)
# The host reaches the controller's admin API and UI on 10.79.0.2:8443 (and its SIEM stream
# on 9443) over its own veth (pvadm0, 10.79.0.1), as an operator would through an SSH
# tunnel; nothing else gets in.
# Public segment 10.80.0.0/24; internet segment 10.90.0.0/24 (reached by the client only
# through a tunnel, leaving a node masqueraded).
#
#   fleet.sh e2e    the scenario, every step asserted and timed; everything removed at the end
#   fleet.sh up     bring the fleet up with a connected client and leave it running (make demo)
#   fleet.sh down   remove everything (make demo-down)
#   fleet.sh bench  round trip and TCP throughput through 1, 2 and 3 hops (make bench; iperf3)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${PHAROS_E2E_DIR:-/tmp/pharos-fleet}
BIN_COX=${PHAROS_COX_BINARY:-$ROOT/coxswain/.build/debug/cox}
BIN_NODE=${PHAROS_NODE_BINARY:-$ROOT/node/.build/debug/node}
BIN_RELAY=${PHAROS_RELAY_BINARY:-$ROOT/relay/.build/debug/relay}
BIN_CARAVEL=${PHAROS_CARAVEL_BINARY:-$ROOT/caravel-cli/.build/debug/caravel}
NAMESPACES=(pv-ctrl pv-relay pv-node-a pv-node-b pv-node-c pv-client pv-client2 pv-inet pv-pub)
RELAY_IP=10.80.0.20
INET_URL=http://10.90.0.50:8080/
ADMIN_URL=http://10.79.0.2:8443
ADMIN_EMAIL=admin@pharos.test

say() { printf '%s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; [ -d "$WORK" ] && tail -n 20 "$WORK"/*.log >&2 2>/dev/null || true; exit 1; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# Endpoint rotation at the shortest interval cox.yaml allows (only nodes with more than one
# entry address rotate: node-b once step 8 gives it a second one).
COX_ENV=(COX_CONFIG="$WORK/ctrl/cox.yaml" COX_RELAY_EMBEDDED=false COX_FLEET_RECONCILE_INTERVAL=5 COX_UI_LISTEN=10.79.0.2:8443
         COX_FLEET_ROTATION_ENABLED=true COX_FLEET_ROTATION_INTERVAL_SECONDS=10 COX_FLEET_ROTATION_JITTER_SECONDS=0
         COX_ANALYTICS_INTERVAL_SECONDS=5 COX_SIEM_LISTEN=10.79.0.2:9443 COX_GEOIP_DB="$WORK/geo.mmdb")
cox() { in_ns pv-ctrl env "${COX_ENV[@]}" "$BIN_COX" "$@"; }
caravel() { in_ns pv-client env CARAVEL_HOME="$WORK/client/store" CARAVEL_RUN_DIR="$WORK/client/run" "$BIN_CARAVEL" "$@"; }

# Waits up to $1 seconds for a command to succeed.
wait_for() {
  local seconds=$1; shift
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
log_has() { grep -a -q -- "$2" "$WORK/$1.log"; }
# Forget what a log said so far (the process keeps writing; grep -a reads past the hole).
log_reset() { : >"$WORK/$1.log"; }

# --- topology -------------------------------------------------------------------------

down() {
  for pidfile in "$WORK"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 0.5
  for pidfile in "$WORK"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
  done
  pkill -f 'wireguard-go (awga|awgb|awgc|pharos0|pharos1)' 2>/dev/null || true
  for ns in "${NAMESPACES[@]}"; do
    # Whatever still runs there (an inner link's daemon outliving its agent) goes too.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf /etc/netns/pv-client /etc/netns/pv-client2
  ip link del pvadm0 2>/dev/null || true
  rm -f /var/run/wireguard/awg[a-c].sock /var/run/wireguard/pharos0.sock /var/run/wireguard/pharos1.sock
  rm -rf "$WORK"
}

# veth from namespace $1 (named $2, address $3) to the bridge in $4.
link() {
  local ns=$1 name=$2 address=$3 hub=$4
  ip link add "$name" netns "$ns" type veth peer name "h-$name" netns "$hub"
  ip -n "$hub" link set "h-$name" master br0 up
  ip -n "$ns" addr add "$address" dev "$name"
  ip -n "$ns" link set "$name" up
}

topology() {
  for ns in "${NAMESPACES[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  # caravel connect points /etc/resolv.conf at the profile's resolver: the client's own
  # file (ip netns exec mounts it over /etc/resolv.conf), so the host's is never touched.
  for client in pv-client pv-client2; do
    mkdir -p /etc/netns/$client
    printf 'nameserver 10.80.0.1\n' >/etc/netns/$client/resolv.conf
  done
  for hub in pv-pub pv-inet; do
    ip -n "$hub" link add br0 type bridge
    ip -n "$hub" link set br0 up
  done
  link pv-ctrl   c0 10.80.0.10/24 pv-pub
  link pv-relay  r0 $RELAY_IP/24  pv-pub
  link pv-node-a a0 10.80.0.31/24 pv-pub
  link pv-node-b b0 10.80.0.32/24 pv-pub
  link pv-node-c n0 10.80.0.35/24 pv-pub
  link pv-client k0 10.80.0.40/24 pv-pub
  link pv-client2 k1 10.80.0.41/24 pv-pub
  link pv-node-a a1 10.90.0.31/24 pv-inet
  link pv-node-b b1 10.90.0.32/24 pv-inet
  link pv-node-c n1 10.90.0.35/24 pv-inet
  ip -n pv-inet addr add 10.90.0.50/24 dev br0
  # The nodes' way out (their masquerade leaves through the default route's interface).
  ip -n pv-node-a route add default via 10.90.0.50
  ip -n pv-node-b route add default via 10.90.0.50
  ip -n pv-node-c route add default via 10.90.0.50
  # The operator's way to the admin API (8443) and the SIEM stream (9443): a veth from the
  # host, accepted on those ports only.
  ip link add pvadm0 type veth peer name adm0 netns pv-ctrl
  ip addr add 10.79.0.1/30 dev pvadm0
  ip link set pvadm0 up
  ip -n pv-ctrl addr add 10.79.0.2/30 dev adm0
  ip -n pv-ctrl link set adm0 up
  # The controller accepts nothing it did not ask for, but the operator's two ports.
  in_ns pv-ctrl iptables -A INPUT -i adm0 -s 10.79.0.1 -p tcp --dport 8443 -j ACCEPT
  in_ns pv-ctrl iptables -A INPUT -i adm0 -s 10.79.0.1 -p tcp --dport 9443 -j ACCEPT
  in_ns pv-ctrl iptables -A INPUT -i lo -j ACCEPT
  in_ns pv-ctrl iptables -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
  in_ns pv-ctrl iptables -A INPUT -j DROP
}

start() { # name namespace command...: background process, log and pid in $WORK
  local name=$1 ns=$2; shift 2
  ip netns exec "$ns" "$@" >"$WORK/$name.log" 2>&1 &
  echo $! >"$WORK/$name.pid"
  disown $!   # no "Killed" chatter when a step kills it on purpose
}
stop() { # name [signal]
  local pid; pid=$(cat "$WORK/$1.pid" 2>/dev/null) || return 0
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$WORK/$1.pid"
}

internet() {
  start inet pv-inet python3 -c '
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("you are " + self.client_address[0] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("10.90.0.50", 8080), H).serve_forever()'
  wait_for 10 in_ns pv-inet curl -s --max-time 1 "$INET_URL" || fail "the internet HTTP server did not start"
}

node_up() { # name ip interface
  local name=$1 ip=$2 iface=$3 dir="$WORK/$1"
  mkdir -p "$dir"
  "$BIN_NODE" gen-csr --config-dir "$dir" >"$dir.csr"
  cox nodes enroll --csr "$dir.csr" --addr "$ip:8444" --name "$name" --region lab --wg-port 51820 --out "$dir" >/dev/null
  cat >"$dir/node.yaml" <<YAML
control:
  listen_addr: "$ip:8444"
dataplane:
  backend: wireguard-go
  interface: $iface
  listen_port: 51820
  address: 10.86.0.1/16
YAML
  node_start "$name"
}
node_start() {
  local name=$1
  start "$name" "pv-$name" "$BIN_NODE" run --config-dir "$WORK/$name"
  wait_for 20 log_has "$name" "control port open" || fail "$name did not open its control port"
}

serve() {
  start cox pv-ctrl env "${COX_ENV[@]}" "$BIN_COX" serve
  wait_for 20 log_has cox "account service up" || fail "cox serve did not start"
  wait_for 20 curl -sf "$ADMIN_URL/healthz" || fail "the admin API did not come up on $ADMIN_URL"
}

fleet_up() {
  for binary in "$BIN_COX" "$BIN_NODE" "$BIN_RELAY" "$BIN_CARAVEL"; do
    [ -x "$binary" ] || fail "missing $binary: run 'make build' (or make test) first"
  done
  down
  mkdir -p "$WORK/ctrl" "$WORK/relay" "$WORK/client"
  # A GeoIP database (the tests' writer) placing the two client machines a world apart.
  /usr/bin/python3 "$ROOT/coxswain/Tests/GeoIP/write_mmdb.py" "$WORK/geo.mmdb" \
    "10.80.0.40/32=DE,Berlin,52.52,13.405" "10.80.0.41/32=AU,Sydney,-33.8688,151.2093" || fail "write_mmdb.py"
  topology
  internet
  cox init --state-dir "$WORK/ctrl/state" >/dev/null
  # An administrator for the web UI, with a password of its own (kept 0600 beside the logs).
  cox users add Admin --email "$ADMIN_EMAIL" --admin >/dev/null
  (umask 077; head -c 15 /dev/urandom | base64 | tr '+/' '-_' >"$WORK/admin-password")
  cox users passwd "$ADMIN_EMAIL" <"$WORK/admin-password" >/dev/null || fail "cox users passwd"
  node_up node-a 10.80.0.31 awga
  node_up node-b 10.80.0.32 awgb
  node_up node-c 10.80.0.35 awgc
  cox nodes status node-a >/dev/null || fail "cox nodes status node-a"
  cox nodes status node-b >/dev/null || fail "cox nodes status node-b"
  cox nodes status node-c >/dev/null || fail "cox nodes status node-c"
  "$BIN_RELAY" gen-csr --config-dir "$WORK/relay" >"$WORK/relay.csr"
  cox relays enroll --csr "$WORK/relay.csr" --endpoint "$RELAY_IP:8444" --hostname relay.pharos.test \
    --public "$RELAY_IP:8443" --out "$WORK/relay" >/dev/null
  start relay pv-relay "$BIN_RELAY" run --config-dir "$WORK/relay"
  wait_for 10 log_has relay "relay listening" || fail "the relay did not start"
  serve
  wait_for 30 log_has relay "controller tunnel up" || fail "the controller did not dial the relay's tunnel"
}

client_enroll() {
  cox users add Alice --email alice@example.org >/dev/null
  cox profiles create main --user alice@example.org --node node-a --protocol amneziawg >/dev/null
  local link; link=$(cox enroll alice@example.org --relay "$RELAY_IP:8443" 2>/dev/null)
  caravel enroll "$link" --name phone >/dev/null || fail "caravel enroll"
}
connect() { # [stored profile name [caravel connect options]]
  local name=${1:-phone}
  [ $# -gt 0 ] && shift
  start connect pv-client env CARAVEL_HOME="$WORK/client/store" CARAVEL_RUN_DIR="$WORK/client/run" \
    "$BIN_CARAVEL" connect "$name" "$@" --engine-binary wireguard-go
  wait_for 20 log_has connect "connected:" || fail "caravel connect did not come up"
}
disconnect() { caravel down >/dev/null 2>&1 || true; stop connect; }
# One open leaked_profile alert naming both client machines' addresses.
leak_alerted() {
  local alerts; alerts=$(cox alerts list --kind leaked_profile 2>/dev/null) || return 1
  grep -q '10.80.0.40' <<<"$alerts" && grep -q '10.80.0.41' <<<"$alerts" && grep -q ' open ' <<<"$alerts"
}
# GeoIP puts 10.80.0.40 in Berlin and 10.80.0.41 in Sydney: one key in both within seconds.
travel_alerted() { cox alerts list --kind impossible_travel 2>/dev/null | grep -q 'Berlin, DE'; }
fetch() { in_ns pv-client curl -s --max-time 3 "$INET_URL"; }
# Waits until the internet server sees $1 as the caller.
expect_seen_as() { wait_for "${2:-20}" sh -c "ip netns exec pv-client curl -s --max-time 2 $INET_URL | grep -q 'you are $1$'"; }

# --- the scenario ---------------------------------------------------------------------

STEP_START=0
step() { STEP_START=$(date +%s%N); printf '%-84s' "$1"; }
done_step() { printf 'ok  %5d ms\n' $(( ($(date +%s%N) - STEP_START) / 1000000 )); }

e2e() {
  [ -n "${PHAROS_E2E_KEEP:-}" ] || trap down EXIT
  step "1. cox init + serve; nodes and relay enrolled from their CSRs; tunnel up"
  fleet_up; done_step

  step "2. admin API from the operator's host: a readonly token sees both nodes active"
  local token; token=$(cox tokens create e2e --scope readonly 2>/dev/null)
  local nodes; nodes=$(curl -sf -H "Authorization: Bearer $token" "$ADMIN_URL/api/nodes?status=active") || fail "GET /api/nodes"
  for name in node-a node-b; do grep -q "\"name\":\"$name\"" <<<"$nodes" || fail "GET /api/nodes does not list $name active: $nodes"; done
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" -X DELETE "$ADMIN_URL/api/users/x")" = 403 ] \
    || fail "a readonly token could attempt a deletion"
  in_ns pv-relay curl -s --max-time 2 "http://10.80.0.10:8443/healthz" >/dev/null && fail "the admin API is reachable from the public segment"
  done_step

  step "3. invite, enroll through the relay, sync, connect, reach the internet via node-a"
  client_enroll
  connect
  expect_seen_as 10.90.0.31 || fail "the internet did not see node-a's address (saw: $(fetch || echo nothing))"
  done_step

  step "4. a copied profile elsewhere: leaked_profile, impossible_travel; SIEM gets it"
  # The operator's SIEM (Python grpcio, on the operator's host) subscribes to alerts first
  # (leaked_profile, impossible_travel and new_geo arrive, in whatever order the sweeps find them).
  cox tokens create siem --scope monitor >"$WORK/siem.token" 2>/dev/null || fail "cox tokens create --scope monitor"
  chmod 600 "$WORK/siem.token"
  cox pki root >"$WORK/fleet-root.pem" 2>/dev/null || fail "cox pki root"
  log_reset cox
  /usr/bin/python3 "$ROOT/coxswain/Tests/SIEM/monitor_client.py" --address 10.79.0.2:9443 --root "$WORK/fleet-root.pem" \
    --server-name 10.79.0.2 --protos "$ROOT/protocol-spec/Protos" --kinds alert --count 10 --timeout 300 \
    <"$WORK/siem.token" >"$WORK/siem.log" 2>&1 &
  echo $! >"$WORK/siem.pid"
  disown $!
  wait_for 20 log_has cox "SIEM consumer subscribed" || fail "the SIEM consumer did not subscribe: $(cat "$WORK/siem.log")"
  mkdir -p "$WORK/client2"
  cp -a "$WORK/client/store" "$WORK/client2/store"
  start connect2 pv-client2 env CARAVEL_HOME="$WORK/client2/store" CARAVEL_RUN_DIR="$WORK/client2/run" \
    "$BIN_CARAVEL" connect phone --engine-binary wireguard-go --interface pharos1
  wait_for 20 log_has connect2 "connected:" || fail "the copied profile did not connect: $(cat "$WORK/connect2.log")"
  # One key, two machines: each one's handshake takes the node's peer from the other. They
  # send in turns of 6 s, longer than the node's 5 s poll, so each turn's endpoint is seen.
  local deadline=$(( $(date +%s) + 90 )) turn=0
  until leak_alerted; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no leaked_profile alert in 90 s: $(cox alerts list --status all 2>&1 | tail -3)"
    local ns=pv-client; [ $((turn % 2)) = 1 ] && ns=pv-client2
    for _ in 1 2 3 4 5 6; do in_ns "$ns" curl -s --max-time 1 "$INET_URL" >/dev/null || sleep 0.5; sleep 0.5; done
    turn=$((turn + 1))
  done
  # GeoIP places the copy in Sydney, seconds after Berlin.
  wait_for 15 travel_alerted || fail "no impossible_travel alert: $(cox alerts list --status all 2>&1 | tail -4)"
  wait_for 10 log_has siem '"kind": "leaked_profile"' || fail "the SIEM stream did not deliver the alert: $(cat "$WORK/siem.log")"
  grep -q '10.80.0.40' "$WORK/siem.log" && grep -q '10.80.0.41' "$WORK/siem.log" || fail "the SIEM alert lacks an address: $(cat "$WORK/siem.log")"
  in_ns pv-client2 env CARAVEL_HOME="$WORK/client2/store" CARAVEL_RUN_DIR="$WORK/client2/run" \
    "$BIN_CARAVEL" down --interface pharos1 >/dev/null 2>&1 || true
  stop connect2
  # Its session was replaced by the copy's last handshake: WireGuard starts a new one after
  # 15 s without an answer.
  expect_seen_as 10.90.0.31 45 || fail "the first machine has no traffic once the copy is gone"
  done_step

  step "5. controller SIGKILLed: the tunnel carries on; a fresh client connects from cache"
  stop cox KILL
  expect_seen_as 10.90.0.31 5 || fail "traffic stopped when the controller died"
  disconnect
  connect
  expect_seen_as 10.90.0.31 || fail "a client restarted from its cached profile has no traffic"
  done_step

  step "6. node-a restarted with the controller down: peers restored from disk"
  stop node-a KILL
  pkill -KILL -f 'wireguard-go awga' || true
  ip -n pv-node-a link del awga 2>/dev/null || true
  fetch >/dev/null && fail "node-a is down but traffic still flows"
  node_start node-a
  expect_seen_as 10.90.0.31 40 || fail "the tunnel did not come back after node-a restarted"
  done_step

  step "7. controller back: re-reconciles; moving the device to node-b reaches the client"
  log_reset relay
  serve
  wait_for 30 log_has relay "controller tunnel up" || fail "the tunnel to the relay did not come back"
  local spec; spec=$(cox profiles list | awk '$3 == "main" {print $1}')
  [ -n "$spec" ] || fail "no profile spec named main"
  cox profiles rm "$spec" >/dev/null
  cox profiles create main-b --user alice@example.org --node node-b --protocol amneziawg >/dev/null
  wait_for 30 caravel sync || fail "caravel sync after the profile change"
  disconnect
  connect
  expect_seen_as 10.90.0.32 || fail "traffic does not leave through node-b after the move"
  done_step

  step "8. device revoked: its peers leave both nodes, its next sync is refused"
  local device; device=$(cox devices list | awk '$3 == "phone" {print $1}' | head -1)
  [ -n "$device" ] || fail "no device named phone"
  cox devices rm "$device" >/dev/null
  for n in a b; do
    [ -z "$(in_ns pv-node-$n wg show awg$n peers)" ] || fail "node-$n still has the revoked device's peer"
  done
  if caravel sync >/dev/null 2>&1; then fail "a revoked device could still sync"; fi
  done_step

  step "9. legacy .pharosid synced by password; the tunnel hops between node-b's addresses"
  disconnect
  ip -n pv-node-b addr add 10.80.0.33/24 dev b0
  in_ns pv-node-b iptables -A INPUT -d 10.80.0.33 -p udp --dport 51820 -j ACCEPT
  cox nodes endpoints node-b 10.80.0.33 >/dev/null || fail "cox nodes endpoints"
  cox users add Bob --email bob@example.org >/dev/null
  (umask 077; head -c 15 /dev/urandom | base64 >"$WORK/bob-password")
  cox users passwd bob@example.org <"$WORK/bob-password" >/dev/null || fail "cox users passwd bob"
  cox profiles create bob-main --user bob@example.org --node node-b --protocol amneziawg >/dev/null
  cox devices issue bob@example.org --name laptop --relay "$RELAY_IP:8443" --server-name relay.pharos.test \
    --out "$WORK/client/laptop.pharosid" >/dev/null || fail "cox devices issue"
  # Two secrets on stdin: the account password (the relay and controller see it), then the
  # passphrase that wraps the account key (they never do).
  (umask 077; printf '%s\nbob passphrase %s\n' "$(cat "$WORK/bob-password")" "$RANDOM" >"$WORK/bob-secrets")
  # The store still holds Alice's (revoked) account: another user's identity does not replace it unasked.
  if caravel sync "$WORK/client/laptop.pharosid" --email bob@example.org --password-stdin <"$WORK/bob-secrets" >/dev/null 2>&1; then
    fail "another user's identity replaced the stored account without --replace"
  fi
  caravel sync "$WORK/client/laptop.pharosid" --replace --email bob@example.org --password-stdin <"$WORK/bob-secrets" >/dev/null \
    || fail "caravel sync with the issued identity"
  caravel list | grep -q '^laptop ' || fail "the legacy sync stored no profile named laptop"
  connect laptop
  log_has connect "rotating between 10.80.0.32, 10.80.0.33" || fail "the tunnel does not rotate: $(cat "$WORK/connect.log")"
  expect_seen_as 10.90.0.32 || fail "the legacy device has no traffic through node-b"
  wait_for 30 sh -c "[ \$(grep -c 'moved to' '$WORK/connect.log') -ge 2 ]" || fail "the tunnel did not move twice in 30 s"
  expect_seen_as 10.90.0.32 5 || fail "traffic stopped after the tunnel moved"
  local second; second=$(in_ns pv-node-b iptables -nvx -L INPUT | awk '/10.80.0.33/ {print $1}')
  [ "${second:-0}" -gt 0 ] || fail "no packet reached node-b's second address"
  done_step

  step "10. cascade: exit switched live a→b, a→b→c, back; mid hop killed and healed"
  disconnect
  # A node routes a device's address one way: Bob's direct profile on node-b goes first.
  local direct; direct=$(cox profiles list --user bob@example.org | awk '$3 == "bob-main" {print $1}')
  [ -n "$direct" ] || fail "no bob-main profile to replace"
  cox profiles rm "$direct" >/dev/null || fail "cox profiles rm bob-main"
  cox profiles create entry-a --user bob@example.org --node node-a --protocol amneziawg >/dev/null || fail "cox profiles create entry-a"
  local synced; synced=$(sed -n 2p "$WORK/bob-secrets" | caravel sync --password-stdin 2>&1) || fail "caravel sync for entry-a: $synced"
  connect laptop --profile entry-a
  expect_seen_as 10.90.0.31 || fail "the direct profile does not leave at node-a"
  cox paths add a-to-b --hops node-a,node-b >/dev/null || fail "cox paths add a-to-b"
  cox paths add a-b-c --hops node-a,node-b,node-c --color 2F80ED >/dev/null || fail "cox paths add a-b-c"
  cox paths list | grep -q "a-b-c .*#2f80ed" || fail "cox paths list does not show a-b-c's color: $(cox paths list)"
  # The live exit switch: the same tunnel, no sync; the next request leaves at the new exit (within 5 s).
  local t; t=$(date +%s%N)
  cox paths bind laptop a-to-b >/dev/null || fail "cox paths bind a-to-b"
  expect_seen_as 10.90.0.32 5 || fail "5 s after cox paths bind the internet still does not see node-b"
  local to_b=$(( ($(date +%s%N) - t) / 1000000 )); t=$(date +%s%N)
  cox paths bind laptop a-b-c >/dev/null || fail "cox paths bind a-b-c"
  expect_seen_as 10.90.0.35 5 || fail "5 s after binding the 3-hop path the internet still does not see node-c"
  local to_c=$(( ($(date +%s%N) - t) / 1000000 ))
  # The mid hop's machine dies (the agent and its daemons): nothing gets out, least of all early at node-a.
  stop node-b KILL
  ip netns pids pv-node-b | xargs -r kill -KILL 2>/dev/null || true
  local lost; lost=$(fetch || true)
  [ -z "$lost" ] || fail "with the mid hop dead a request still got out: $lost"
  t=$(date +%s%N)
  node_start node-b
  expect_seen_as 10.90.0.35 30 || fail "the 3-hop path did not heal within 30 s of node-b's restart"
  local healed=$(( ($(date +%s%N) - t) / 1000000 )); t=$(date +%s%N)
  cox paths unbind laptop >/dev/null || fail "cox paths unbind"
  expect_seen_as 10.90.0.31 5 || fail "5 s after cox paths unbind the internet still does not see node-a"
  local to_a=$(( ($(date +%s%N) - t) / 1000000 ))
  [ "$(grep -ac 'connected:' "$WORK/connect.log")" -eq 1 ] || fail "the client reconnected during the switches: $(cat "$WORK/connect.log")"
  disconnect
  # A profile made for the path: the bundle names its entry.
  cox profiles rm "$(cox profiles list --user bob@example.org | awk '$3 == "entry-a" {print $1}')" >/dev/null || fail "cox profiles rm entry-a"
  cox profiles create cascade --user bob@example.org --path a-to-b >/dev/null || fail "cox profiles create --path"
  synced=$(sed -n 2p "$WORK/bob-secrets" | caravel sync --password-stdin 2>&1) || fail "caravel sync after the path was added: $synced"
  connect laptop --profile cascade
  log_has connect "via node-a" || fail "the cascade does not enter at node-a: $(cat "$WORK/connect.log")"
  expect_seen_as 10.90.0.32 || fail "the internet does not see node-b at the end of the cascade"
  in_ns pv-node-a wg show awg1 endpoints | grep -q "10.80.0.32:51820" || fail "node-a has no inner link to node-b"
  in_ns pv-node-a ip route get 10.90.0.50 | grep -q "dev awg1" && fail "node-a's own traffic went into the inner link"
  # Every hop pushed again: pushes change peers in place, so the tunnel carries on at once.
  cox paths provision a-to-b >/dev/null || fail "cox paths provision"
  [ "$(fetch)" = "you are 10.90.0.32" ] || fail "the first request after cox paths provision did not get through node-b"
  done_step
  printf '    exit switch, command to first request seen from the new exit: node-b %d ms, node-c (3 hops) %d ms, node-a %d ms\n' \
    "$to_b" "$to_c" "$to_a"
  printf '    mid hop SIGKILLed with its daemons: path healed %d ms after node-b was started again\n' "$healed"

  step "11. backup while serving, restore elsewhere: same relay, nodes and clients"
  disconnect
  (umask 077; printf 'fleet backup %s\n' "$(head -c 12 /dev/urandom | base64)" >"$WORK/backup-passphrase")
  cox backup --out "$WORK/fleet.backup" <"$WORK/backup-passphrase" >/dev/null || fail "cox backup while cox serve runs"
  stop cox
  COX_ENV[0]="COX_CONFIG=$WORK/ctrl2/cox.yaml"   # another machine's controller, from the file alone
  local refused; refused=$(echo "not the passphrase" | cox restore "$WORK/fleet.backup" 2>&1) && fail "a wrong passphrase restored"
  grep -q "the passphrase does not open" <<<"$refused" || fail "a wrong passphrase was refused for another reason: $refused"
  [ ! -e "$WORK/ctrl2" ] || fail "a refused restore left $WORK/ctrl2 behind"
  cox restore "$WORK/fleet.backup" <"$WORK/backup-passphrase" >/dev/null || fail "cox restore"
  log_reset relay
  serve
  wait_for 30 log_has relay "controller tunnel up" || fail "the restored controller did not dial the relay's tunnel"
  # Bob's device logs in with its certificate, then with his password: both kept by the backup.
  local synced; synced=$(sed -n 2p "$WORK/bob-secrets" | caravel sync --password-stdin 2>&1) \
    || fail "the client could not sync through the relay with the restored controller: $synced"
  synced=$(caravel sync --email bob@example.org --password-stdin <"$WORK/bob-secrets" 2>&1) \
    || fail "a password login did not sync with the restored controller: $synced"
  local peers; peers=$(in_ns pv-node-a wg show awga peers | wc -l)
  cox users add Dave --email dave@example.org >/dev/null || fail "cox users add on the restored controller"
  cox devices add dave@example.org --name tablet >/dev/null || fail "cox devices add on the restored controller"
  cox profiles create dave-main --user dave@example.org --node node-a --protocol amneziawg >/dev/null
  wait_for 20 sh -c "[ \$(ip netns exec pv-node-a wg show awga peers | wc -l) -gt $peers ]" \
    || fail "a profile made on the restored controller did not reach node-a"
  cox audit verify >/dev/null || fail "the restored audit chain does not verify"
  done_step

  step "12. everything removed"
  trap - EXIT
  down
  for ns in "${NAMESPACES[@]}"; do ip netns list | grep -qw "$ns" && fail "namespace $ns left behind"; done
  pgrep -f 'wireguard-go (awga|awgb|awgc|pharos0|pharos1)' >/dev/null && fail "a wireguard-go process was left behind"
  [ -e "$WORK" ] && fail "$WORK left behind"
  ip link show pvadm0 >/dev/null 2>&1 && fail "the admin veth was left behind"
  done_step
  say "e2e: all steps passed"
}

demo_up() {
  say "==> building the fleet in network namespaces (logs in $WORK)"
  fleet_up
  say "==> controller, relay and two nodes are up; enrolling a client through the relay"
  client_enroll
  connect
  expect_seen_as 10.90.0.31 || fail "the client has no traffic through node-a"
  cat <<TXT

PharosVPN demo fleet is running.
  controller   ip netns exec pv-ctrl env COX_CONFIG=$WORK/ctrl/cox.yaml $BIN_COX nodes list
  client       ip netns exec pv-client env CARAVEL_HOME=$WORK/client/store $BIN_CARAVEL list
               ip netns exec pv-client env CARAVEL_RUN_DIR=$WORK/client/run $BIN_CARAVEL status
  through it   ip netns exec pv-client curl $INET_URL      # answers "you are 10.90.0.31" (node-a)
  logs         $WORK/*.log
  admin UI     $ADMIN_URL/ui/   user $ADMIN_EMAIL, password in $WORK/admin-password
               (from another machine: ssh -L 8443:10.79.0.2:8443 root@this-host, then http://127.0.0.1:8443/ui/)
  admin API    TOKEN=\$(ip netns exec pv-ctrl env COX_CONFIG=$WORK/ctrl/cox.yaml $BIN_COX tokens create demo --scope monitor)
               curl -H "Authorization: Bearer \$TOKEN" $ADMIN_URL/api/nodes
Stop everything with: make demo-down
TXT
}

# Round trip and TCP throughput from the client to the internet host through 1, 2 and 3
# hops (node-a; node-a → node-b; node-a → node-b → node-c), one JSON line each. The hops are
# switched with cox paths bind on the same tunnel. Every link is a veth on one machine: the
# figures are the software's cost (encryption, forwarding, the agents), not a network's.
bench() {
  command -v iperf3 >/dev/null || fail "iperf3 is missing (apt-get install iperf3)"
  trap down EXIT
  fleet_up >/dev/null
  client_enroll
  connect
  expect_seen_as 10.90.0.31 || fail "the client has no traffic through node-a"
  start iperf pv-inet iperf3 -s -B 10.90.0.50
  cox paths add a-to-b --hops node-a,node-b >/dev/null || fail "cox paths add a-to-b"
  cox paths add a-b-c --hops node-a,node-b,node-c >/dev/null || fail "cox paths add a-b-c"
  wait_for 10 in_ns pv-inet sh -c 'ss -ltn | grep -q 10.90.0.50:5201' || fail "iperf3 -s did not start"
  local base="" hops exit rtt mbit added
  for hops in 1 2 3; do
    case $hops in
      1) exit=10.90.0.31 ;;
      2) exit=10.90.0.32; cox paths bind phone a-to-b >/dev/null || fail "cox paths bind a-to-b" ;;
      3) exit=10.90.0.35; cox paths bind phone a-b-c >/dev/null || fail "cox paths bind a-b-c" ;;
    esac
    expect_seen_as "$exit" 10 || fail "$hops hops: the internet does not see $exit"
    rtt=$(in_ns pv-client ping -n -q -c 100 -i 0.02 10.90.0.50 | awk -F/ '/^rtt/ {print $5}') \
      || fail "$hops hops: ping through the tunnel failed"
    [ -n "$rtt" ] || fail "$hops hops: ping through the tunnel printed no round trip"
    mbit=$(in_ns pv-client iperf3 -c 10.90.0.50 -t 5 -J | /usr/bin/python3 -c \
      'import json, sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6, 1))') \
      || fail "$hops hops: iperf3 through the tunnel failed"
    [ -n "$base" ] || base=$rtt
    added=$(/usr/bin/python3 -c "print(round(($rtt - $base) / max(1, $hops - 1), 3))")
    printf '{"bench":"cascade","hops":%d,"exit":"%s","rtt_ms":%s,"added_rtt_ms_per_hop":%s,"tcp_mbit_s":%s}\n' \
      "$hops" "$exit" "$rtt" "$added" "$mbit"
  done
}

# Sourced (e2e/lifecycle.sh) it only defines the functions above.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    e2e) e2e ;;
    up) demo_up ;;
    down) down; say "fleet removed" ;;
    bench) bench ;;
    *) say "usage: $0 e2e|up|down|bench"; exit 64 ;;
  esac
fi
