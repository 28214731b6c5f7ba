#!/usr/bin/env bash
# Forwarding a group to a remote host (issue 18): lb -i pcap:T -p fwd:vxlan=ADDR sends every
# packet of T inside VXLAN to a namespace behind a veth, as fast as it can; against
# tcpreplay --topspeed of the same trace on the same veth, in the same run. Packets per second
# (wall clock) and per CPU-second of the sender (user + system of the whole process: lb's
# dispatcher and its forwarder thread; tcpreplay). Then tool ports: the same trace out of the
# same veth as frames, AF_XDP TX against AF_PACKET, and tcpreplay again. Root; release build.
#   bench/forward.sh                     PACKETS=200000 RUNS=3 bench/forward.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
packets="${PACKETS:-200000}"
runs="${RUNS:-3}"
command -v tcpreplay >/dev/null || apt-get install -y tcpreplay >/dev/null
swift build -c release --package-path "$root" --product lb >/dev/null
lb="$root/.build/release/lb"
work="$(mktemp -d)"
ns="lbfwdbench$$"
cleanup() {
    [ -n "${sink:-}" ] && kill "$sink" 2>/dev/null || true
    ip link del lbfwd0 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip link add lbfwd0 type veth peer name lbfwd1 netns "$ns"
ip addr add 10.78.0.1/24 dev lbfwd0
ip link set lbfwd0 up
ip link set lbfwd0 mtu 1600
ip -n "$ns" addr add 10.78.0.2/24 dev lbfwd1
ip -n "$ns" link set lbfwd1 mtu 1600
ip -n "$ns" link set lbfwd1 up
ip -n "$ns" link set lo up
# the receiver: a socket on 4789 that reads nothing (the kernel drops what overflows it, and no
# ICMP error comes back); the sender's side is what is measured
ip netns exec "$ns" /usr/bin/python3 -c "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0',4789)); time.sleep(3600)" &
sink=$!
trace="$work/mix.pcap"
"$lb" gen -w "$trace" --packets "$packets" --seed 9 --sizes imix >/dev/null 2>&1
cpu() { awk '{print $1 + $2}' "$1"; }
# one row: run, sender, packets sent, and the /usr/bin/time file of the sending process
row() { printf "%-10s %22s %12.1f %16.1f\n" "$1" "$2" "$(echo "$3 / $(awk '{print $3}' "$4") / 1000" | bc -l)" "$(echo "$3 / $(cpu "$4") / 1000" | bc -l)"; }
# lb ARGS...: lb replays the trace with these group options; one row
run_lb() {
    local i="$1" label="$2"; shift 2
    /usr/bin/time -f "%U %S %e" -o "$work/lb.time" "$lb" -i "pcap:$trace" "$@" --run-dir "$work/run" -w 10 >"$work/lb.out" 2>"$work/lb.err"
    row "$i" "$label" "$(grep -o '"packets_forwarded":[0-9]*' "$work/lb.out" | tail -1 | cut -d: -f2)" "$work/lb.time"
}
run_tcpreplay() {
    /usr/bin/time -f "%U %S %e" -o "$work/tr.time" tcpreplay --topspeed -i lbfwd0 "$trace" >"$work/tr.out" 2>&1
    row "$1" tcpreplay "$(grep -o 'Actual: [0-9]*' "$work/tr.out" | grep -o '[0-9]*')" "$work/tr.time"
}
printf "%-10s %22s %12s %16s\n" run "sender" "kpps (wall)" "kpps per core"
for i in $(seq 1 "$runs"); do
    run_lb "$i" lb -p fwd:vxlan=10.78.0.2 --no-forward-keepalive
    run_tcpreplay "$i"
done
grep -o '"forward_fragmented":{[^}]*}\|"forward_send_errors":{[^}]*}' "$work/lb.out" | tail -2

# Tool ports: the same trace out of the same veth as frames (lb -p fwd:port=lbfwd0), AF_XDP TX
# against AF_PACKET, with tcpreplay again, in the same run
echo
printf "%-10s %22s %12s %16s\n" run "sender" "kpps (wall)" "kpps per core"
for i in $(seq 1 "$runs"); do
    for tx in af_xdp af_packet; do
        run_lb "$i" "lb port ($tx)" -p fwd:port=lbfwd0 --forward-port-tx "$tx"
    done
    run_tcpreplay "$i"
done
grep -o '"forward_send_errors":{[^}]*}' "$work/lb.out" | tail -1
