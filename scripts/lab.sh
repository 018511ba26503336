#!/usr/bin/env bash
# scripts/lab.sh up|down|status|start BOX|cut|heal: the VIP failover lab by hand.
#
# A bridge and three network namespaces, as the failover integration
# test uses:
#   se-a   box A (main)    192.0.2.11   eth0
#   se-b   box B (backup)  192.0.2.12   eth0
#   se-c   client          192.0.2.100  eth0
#   heartbeat link se-a hb0 198.51.100.11 <-> se-b hb0 198.51.100.12
#   (its own veth pair: cutting it leaves the client LAN up)
#   VIP 192.0.2.10/24 (group "db"), heartbeat UDP 694, interval 100 ms,
#   deadtime 300 ms, failback after 1 s.
# Both boxes run the real binary (built into tmp/lab/sipedge) with
# generated configs; a TCP listener on 127.0.0.1:3306 in each box plays
# the database the VIP tracks.
#
# Try:
#   sudo scripts/lab.sh up
#   sudo tmp/lab/sipedge ctl -config tmp/lab/edge-a.yaml vip
#   sudo ip netns exec se-c ip neigh            # who has the VIP
#   sudo kill -9 $(cat tmp/lab/edge-a.pid)      # B takes over in ~0.3 s
#   sudo ip -n se-a addr del 192.0.2.10/24 dev eth0   # (what PID 1 does)
#   sudo scripts/lab.sh start edge-a            # A returns, failback
#   sudo tmp/lab/sipedge ctl -config tmp/lab/edge-b.yaml vip takeover db
#   sudo kill $(cat tmp/lab/edge-a.pid)         # clean stop: handover
#   sudo scripts/lab.sh cut                      # heartbeat link down: both take the VIP
#   sudo scripts/lab.sh heal                     # back up: B releases within a heartbeat
#   sudo tmp/lab/sipedge ctl -config tmp/lab/edge-a.yaml vip auto db   # end a takeover/release pin
#   sudo scripts/lab.sh down
# Right after a release, the releasing box relays packets still sent to
# it for the VIP (status shows "relaying", eth0 forwarding 1 for ~3 s).
# Logs: tmp/lab/edge-a.log, tmp/lab/edge-b.log.
set -euo pipefail

cd "$(dirname "$0")/.."
LAB=${LAB_DIR:-$PWD/tmp/lab}
NS_BR=se-br NS_A=se-a NS_B=se-b NS_C=se-c
VIP=192.0.2.10

need_root() { [ "$(id -u)" = 0 ] || { echo "lab.sh: needs root (network namespaces)" >&2; exit 1; }; }

config() { # name self peer role priority peer-on-the-VIP's-segment
	mkdir -p "$LAB/$1"
	cat >"$LAB/$1.yaml" <<YAML
node: {name: $1, profile: four-box, platform: generic-x86_64, data_dir: $LAB/$1}
cluster: {listen: "$2:694", peer: "$3:694", key_file: $LAB/cluster.key, interval: 100ms}
vips:
  - name: db
    address: $VIP/24
    interface: eth0
    role: $4
    priority: $5
    deadtime: 300ms
    initdead: 1s
    failback: {enabled: true, stable_for: 1s}
    garp: {count: 3, repeat_after: 1s}
    track: [{tcp: "127.0.0.1:3306"}]
    peer_address: $6   # the heartbeat runs on hb0: tell the placement check where the peer is on eth0
YAML
}

ns_of() { case $1 in edge-a) echo $NS_A ;; edge-b) echo $NS_B ;; *) echo "unknown box $1" >&2; exit 2 ;; esac; }

start() { # name
	local ns; ns=$(ns_of "$1")
	if [ -f "$LAB/$1.pid" ] && kill -0 "$(cat "$LAB/$1.pid")" 2>/dev/null; then
		echo "$1 already running (pid $(cat "$LAB/$1.pid"))"; return
	fi
	ip netns exec "$ns" "$LAB/sipedge" run -config "$LAB/$1.yaml" >>"$LAB/$1.log" 2>&1 &
	echo $! >"$LAB/$1.pid"
	echo "$1 started in $ns (pid $!), log $LAB/$1.log"
}

db_listener() { # ns
	if command -v python3 >/dev/null; then
		ip netns exec "$1" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 3306)); s.listen(16)
while True:
    c, _ = s.accept(); c.close()' >/dev/null 2>&1 &
		echo $! >"$LAB/db-$1.pid"
		for _ in $(seq 50); do
			ip netns exec "$1" bash -c '</dev/tcp/127.0.0.1/3306' 2>/dev/null && return
			sleep 0.1
		done
		echo "lab.sh: the 127.0.0.1:3306 listener in $1 did not come up" >&2
	else
		echo "lab.sh: no python3: nothing listens on 127.0.0.1:3306, the VIP group will be in fault" >&2
	fi
}

up() {
	need_root
	mkdir -p "$LAB"
	go build -o "$LAB/sipedge" ./daemon
	for ns in $NS_BR $NS_A $NS_B $NS_C; do
		ip netns add $ns
		ip -n $ns link set lo up
	done
	ip -n $NS_BR link add br0 type bridge
	ip -n $NS_BR link set br0 up
	local i=0
	for spec in "$NS_A 192.0.2.11/24" "$NS_B 192.0.2.12/24" "$NS_C 192.0.2.100/24"; do
		set -- $spec
		ip -n $NS_BR link add p$i type veth peer name eth0 netns "$1"
		ip -n $NS_BR link set p$i master br0 up
		ip -n "$1" addr add "$2" dev eth0
		ip -n "$1" link set eth0 up
		i=$((i + 1))
	done
	[ -f "$LAB/cluster.key" ] || "$LAB/sipedge" ctl cluster keygen "$LAB/cluster.key"
	chmod 600 "$LAB/cluster.key"
	ip -n $NS_A link add hb0 type veth peer name hb0 netns $NS_B
	ip -n $NS_A addr add 198.51.100.11/24 dev hb0
	ip -n $NS_B addr add 198.51.100.12/24 dev hb0
	ip -n $NS_A link set hb0 up
	ip -n $NS_B link set hb0 up
	config edge-a 198.51.100.11 198.51.100.12 main 150 192.0.2.12
	config edge-b 198.51.100.12 198.51.100.11 backup 100 192.0.2.11
	db_listener $NS_A
	db_listener $NS_B
	start edge-a
	start edge-b
	sleep 1.5
	status
}

status() {
	for b in edge-a edge-b; do
		echo "== $b"
		"$LAB/sipedge" ctl -config "$LAB/$b.yaml" vip 2>&1 || true
	done
	echo "== client neighbour table"
	ip -n $NS_C neigh show $VIP || true
	echo "== relay (eth0 forwarding; rules 32100/32101 only during a relay window)"
	for ns in $NS_A $NS_B; do
		echo "$ns: forwarding $(ip netns exec $ns cat /proc/sys/net/ipv4/conf/eth0/forwarding 2>/dev/null || echo ?)" \
			"$(ip -n $ns rule show 2>/dev/null | grep -E '^3210[01]:' | tr '\n' ' ')"
	done
}

down() {
	need_root
	for f in "$LAB"/edge-a.pid "$LAB"/edge-b.pid "$LAB"/db-*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$f"
	done
	for ns in $NS_A $NS_B $NS_C $NS_BR; do
		ip netns del $ns 2>/dev/null || true
	done
	echo "lab down (logs and configs kept in $LAB)"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
start) need_root; start "${2:?usage: lab.sh start edge-a|edge-b}" ;;
cut) need_root; ip -n $NS_A link set hb0 down; echo "heartbeat link cut (both boxes take the VIP after the deadtime)" ;;
heal) need_root; ip -n $NS_A link set hb0 up; echo "heartbeat link healed" ;;
*) echo "usage: $0 up|down|status|start BOX|cut|heal" >&2; exit 2 ;;
esac
