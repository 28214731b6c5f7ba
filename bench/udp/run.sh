#!/usr/bin/env bash
# The udp:: benchmark: VXLAN traffic at increasing rates, over a veth pair between two network
# namespaces this script creates (lbub*), into
#   (a) lb -i udp::ADDR:4789:vxlan -p t:$RINGS   with $RINGS `lb cat -w /dev/null` consumers
#   (b) lb -i af_xdp:IFACE --divert 'udp dst port 4789'   (only when this lb has AF_XDP ingress)
#   (c) the peer: $PEER_PROCS udprecv processes on SO_REUSEPORT doing recvmmsg (Zeek's UDP source)
# For each: datagrams sent, delivered, lost, and CPU seconds per million packets of the
# receiving side (lb alone; the peer's processes summed). Needs root (namespaces). Release lb.
#
#   sudo bench/udp/run.sh                         # rates 100k 200k 400k 800k, 5 s each
#   RATES="50000 1000000" SECONDS_EACH=10 sudo bench/udp/run.sh
#   TARGETS="udp peer" sudo bench/udp/run.sh
#   XDP_ARGS="--xdp-mode skb" sudo bench/udp/run.sh   # extra lb options for the af_xdp row
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
RATES=${RATES:-"100000 200000 400000 800000"}
SECONDS_EACH=${SECONDS_EACH:-5}
RINGS=${RINGS:-4}
PEER_PROCS=${PEER_PROCS:-$RINGS}
TARGETS=${TARGETS:-"udp af_xdp peer"}
LB=${LB:-$root/.build/release/lb}
XDP_ARGS=${XDP_ARGS:-}
out=${OUT:-$here/.build}
mkdir -p "$out"

export PATH=/opt/swift/usr/bin:$PATH
if [ ! -x "$LB" ] || [ -z "${LB_NO_BUILD:-}" ]; then (cd "$root" && swift build -c release --product lb >/dev/null); fi
clang -O2 -Wall -o "$out/udpsend" "$here/udpsend.c"
clang -O2 -Wall -o "$out/udprecv" "$here/udprecv.c"

id=$$
S=lbubs$id R=lbubr$id VS=lbubS$id VR=lbubR$id
work=$(mktemp -d /tmp/lbub-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$S" 2>/dev/null || true
    ip netns del "$R" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
ip netns add "$S"; ip netns add "$R"
ip link add "$VS" netns "$S" type veth peer name "$VR" netns "$R"
ip -n "$S" addr add 10.78.0.1/24 dev "$VS"; ip -n "$S" link set "$VS" up; ip -n "$S" link set lo up
ip -n "$R" addr add 10.78.0.2/24 dev "$VR"; ip -n "$R" link set "$VR" up; ip -n "$R" link set lo up
ip netns exec "$S" ping -c 1 -W 2 10.78.0.2 >/dev/null

cpu_of() {   # utime + stime of a process, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
json_field() { python3 -c 'import json,sys; d=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]; a=[x for x in d if "packets_received" in x][-1]; v=a
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"; }

has_xdp() {   # this lb accepts -i af_xdp: (the AF_XDP ingress is merged)
    local msg; msg=$(timeout 5 "$LB" -i af_xdp:lbub-none -p x:1 -w 0 --run-dir "$work/probe" 2>&1 || true)
    ! grep -q "not built yet\|use pcap:" <<<"$msg"
}

run_lb() {   # $1 = label, rest = lb input options
    local label=$1; shift
    local dir="$work/$label"; mkdir -p "$dir/run"
    local cats=()
    for k in $(seq 0 $((RINGS - 1))); do
        "$LB" cat "t:$k" -w /dev/null --run-dir "$dir/run" --wait 30 >/dev/null 2>"$dir/cat$k.err" & cats+=($!); pids+=($!)
    done
    ip netns exec "$R" "$LB" "$@" -p "t:$RINGS" -w 30 -o 0.5 --run-dir "$dir/run" >"$dir/lb.out" 2>"$dir/lb.err" &
    local lbpid=$!; pids+=($lbpid)
    for _ in $(seq 300); do [ "$(grep -c 'consumer attached' "$dir/lb.err" || true)" -ge "$RINGS" ] && break; sleep 0.1; done
    local c0; c0=$(cpu_of $lbpid)
    ip netns exec "$S" "$out/udpsend" -d 10.78.0.2 -p 4789 -r "$rate" -t "$SECONDS_EACH" >"$dir/send.out"
    # wait until lb has read everything queued (its count stops moving), at most 10 s
    local last=-1 now
    for _ in $(seq 20); do
        sleep 0.6
        now=$(json_field "$dir/lb.out" packets_received 2>/dev/null || echo 0)
        [ "$now" = "$last" ] && break
        last=$now
    done
    local c1; c1=$(cpu_of $lbpid)
    kill -TERM $lbpid; wait $lbpid || true
    for p in "${cats[@]}"; do wait "$p" || true; done
    local sent; sent=$(awk '/^sent/ {print $2}' "$dir/send.out")
    local fwd; fwd=$(json_field "$dir/lb.out" packets_forwarded)
    local kd; kd=$(json_field "$dir/lb.out" udp.kernel_drops 2>/dev/null || echo 0)
    local rcv; rcv=$(json_field "$dir/lb.out" udp.datagrams_received 2>/dev/null || json_field "$dir/lb.out" packets_received)
    report "$label" "$sent" "$fwd" "$(echo "$c1 - $c0" | bc -l)" \
        "received=$rcv kernel_drops=$kd ring_drops=$(json_field "$dir/lb.out" packets_dropped)"
}

run_peer() {
    local dir="$work/peer"; mkdir -p "$dir"
    ip netns exec "$R" "$out/udprecv" -a 10.78.0.2 -p 4789 -n "$PEER_PROCS" >"$dir/recv.out" &
    local rp=$!; pids+=($rp)
    for _ in $(seq 100); do grep -q ready "$dir/recv.out" 2>/dev/null && break; sleep 0.05; done
    ip netns exec "$S" "$out/udpsend" -d 10.78.0.2 -p 4789 -r "$rate" -t "$SECONDS_EACH" >"$dir/send.out"
    sleep 1
    kill -TERM $rp; wait $rp || true
    local sent; sent=$(awk '/^sent/ {print $2}' "$dir/send.out")
    local got; got=$(awk '/^received/ {print $2}' "$dir/recv.out")
    report "peer x$PEER_PROCS" "$sent" "$got" "$(awk '/^cpu_seconds/ {print $2}' "$dir/recv.out")" \
        "kernel_drops=$(awk '/^kernel_drops/ {print $2}' "$dir/recv.out")"
}

report() {   # label sent received cpu_seconds notes
    local lost=$(( $2 - $3 ))
    local pct; pct=$(echo "scale=3; 100 * $lost / ($2 + ($2 == 0))" | bc -l)
    local per; per=$(echo "scale=3; $4 * 1000000 / ($3 + ($3 == 0))" | bc -l)
    local achieved=$(( $2 / SECONDS_EACH ))
    printf "| %-10s | %9s | %9s | %10s | %10s | %8s | %6s%% | %8s | %s |\n" "$1" "$rate" "$achieved" "$2" "$3" "$lost" "$pct" "$per" "$5" | tee -a "$out/results.md"
}

echo "# udp:: benchmark $(date -u +%FT%TZ), $(nproc) CPUs, ${SECONDS_EACH}s per point, $RINGS rings" | tee "$out/results.md"
echo "| receiver   | offered pps | sent pps | sent       | delivered  | lost     | loss    | cpu s/Mpkt | notes |" | tee -a "$out/results.md"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |" | tee -a "$out/results.md"
for rate in $RATES; do
    for t in $TARGETS; do
        case $t in
        udp) run_lb "lb-udp" -i "udp::10.78.0.2:4789:vxlan" ;;
        af_xdp)
            if has_xdp; then
                # shellcheck disable=SC2086
                run_lb "lb-af_xdp" -i "af_xdp:$VR" --divert 'udp dst port 4789' $XDP_ARGS
            else
                printf "| %-10s | %9s | n/a: this lb has no AF_XDP ingress (-i af_xdp:); the row runs once it is merged |\n" "lb-af_xdp" "$rate" | tee -a "$out/results.md"
            fi ;;
        peer) run_peer ;;
        esac
    done
done
echo "results: $out/results.md"
