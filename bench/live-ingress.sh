#!/usr/bin/env bash
# Live ingress through a veth pair: lb (release) on one end — af_xdp native, af_xdp generic,
# af_packet — and tcpreplay at full speed on the other. For each mode it prints what was sent,
# what lb received, the loss at each stage (XSK ring full / AF_PACKET drops / lb's rings) and
# lb's CPU time per packet received (user+system, from /proc). Needs root. veth is not a NIC:
# the figures show lb's per-packet cost and where a shortfall is lost, not line-rate capacity.
#   bench/live-ingress.sh                      # the Zeek corpus's Ethernet traces, 50 loops
#   LOOPS=200 MODES="native af_packet" bench/live-ingress.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$here/.."
cd "$repo"
. scripts/setup
swift build -c release --product lb >&2
lb="$repo/.build/release/lb"
export LB_XDP_OBJECT="$repo/.build/bpf/lb_xdp.o"
corpus="${LB_CORPUS:-$repo/../shared/zeek-corpus}/traces"
loops="${LOOPS:-50}"
modes="${MODES:-native generic af_packet}"
traces=("$corpus/smtp.pcap" "$corpus/wikipedia.pcap" "$corpus/http/no_crlf.pcap" "$corpus/ssh/ssh.pcap" "$corpus/pop3/pop3.pcap")
hz=$(getconf CLK_TCK)

tag="bench$$"
nsa="lbx-$tag-a"; nsb="lbx-$tag-b"; a="lbx${$}a"; b="lbx${$}b"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$nsa" 2>/dev/null || true
    ip netns del "$nsb" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$nsa"; ip netns add "$nsb"
ip link add "$a" netns "$nsa" type veth peer name "$b" netns "$nsb"
for x in "$nsa:$a" "$nsb:$b"; do
    ns=${x%%:*}; dev=${x##*:}
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" link set "$dev" mtu 9200 up
done

printf '%-10s %10s %10s %9s %12s %12s %10s %12s\n' mode sent received lost xsk_full af_pkt_drops ring_drop cpu_ns/pkt
for mode in $modes; do
    case $mode in
        af_packet) input="af_packet:$a"; extra=() ;;
        *) input="af_xdp:$a"; extra=(--xdp-mode "$mode") ;;
    esac
    run="$work/$mode"; mkdir -p "$run"
    ip netns exec "$nsa" "$lb" -i "$input" "${extra[@]}" -p t:2 -w 30 --run-dir "$run" >"$run/lb.out" 2>"$run/lb.err" &
    lbpid=$!; pids+=("$lbpid")
    sleep 0.5
    "$lb" cat t:0 --run-dir "$run" -w /dev/null 2>/dev/null & c0=$!; pids+=("$c0")
    "$lb" cat t:1 --run-dir "$run" -w /dev/null 2>/dev/null & c1=$!; pids+=("$c1")
    for _ in $(seq 100); do [ "$(grep -c 'consumer attached' "$run/lb.err")" -ge 2 ] && break; sleep 0.1; done
    t0=$(awk '{print $14+$15}' /proc/$lbpid/stat)
    sent=$(ip netns exec "$nsb" tcpreplay -i "$b" --topspeed --loop "$loops" "${traces[@]}" 2>&1 | awk '/Actual:/ {print $2}')
    sleep 1
    t1=$(awk '{print $14+$15}' /proc/$lbpid/stat)
    kill -TERM "$lbpid"; wait "$lbpid" || true; wait "$c0" "$c1" || true
    line=$(grep '"output_ring":null' "$run/lb.out" | tail -1)
    num() { echo "$line" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2 || true; }
    recv=$(num packets_received); dropped=$(num packets_dropped)
    full=$(num rx_ring_full); full=${full:-0}; tpd=$(num tp_drops); tpd=${tpd:-0}
    cpu_ns=$(( (t1 - t0) * 1000000000 / hz ))
    per=$(( recv > 0 ? cpu_ns / recv : 0 ))
    printf '%-10s %10s %10s %9s %12s %12s %10s %12s\n' "$mode" "$sent" "$recv" "$((sent - recv))" "$full" "$tpd" "$dropped" "$per"
done
echo "(lost = sent - received; the stages that lost them: xsk_full (AF_XDP rx ring full), af_pkt_drops, and ring_drop for lb's rings)" >&2
