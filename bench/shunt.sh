#!/usr/bin/env bash
# Shunting (issue 16): what it saves and what it costs, in one run.
#  1. end to end: an `lb gen --mode elephants` trace (TCP; 2% of the flows carry 90% of the
#     packets) replayed at a steady rate into two `lb flowlog` workers, without and with
#     `--shunt-after 1000000`: packets that reach the workers, the workers' CPU time, and lb's
#     CPU time per input packet;
#  2. the engine (shunt-bench): ns per packet for a delivered packet, a shunted one, and both
#     with 1,000,000 other flows in the table; and lb's XDP program timed by the kernel with
#     and without the trace's flows in its shunt map (a packet it drops never reaches lb).
#   bench/shunt.sh                       PACKETS=400000 RATE=200000 bench/shunt.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
packets="${PACKETS:-400000}"
rate="${RATE:-200000}"
swift build -c release --package-path "$root" --product lb >/dev/null
swift build -c release --package-path "$here" --product shunt-bench >/dev/null
lb="$root/.build/release/lb"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
trace="$work/elephants.pcap"
"$lb" gen -w "$trace" --mode elephants --flows 1000 --packets "$packets" --sizes 1514 --seed 7 >/dev/null 2>&1

# CPU seconds (user + system) of a finished process, from /usr/bin/time's output file
cpu() { awk '{print $1 + $2}' "$1"; }

run() {   # run NAME [flowlog args]: prints "name forwarded worker_cpu lb_cpu_ns_per_packet"
    local name=$1; shift
    local rd="$work/run-$name"
    /usr/bin/time -f "%U %S" -o "$work/lb-$name.time" "$lb" -i "pcap:$trace" -p w:2 --run-dir "$rd" -w 20 \
        --replay-rate "$rate" >"$work/lb-$name.out" 2>/dev/null &
    local l=$!
    /usr/bin/time -f "%U %S" -o "$work/w0-$name.time" "$lb" flowlog w:0 --run-dir "$rd" "$@" >/dev/null 2>&1 &
    local w0=$!
    /usr/bin/time -f "%U %S" -o "$work/w1-$name.time" "$lb" flowlog w:1 --run-dir "$rd" "$@" >/dev/null 2>&1 &
    local w1=$!
    wait $l $w0 $w1
    local fwd
    fwd=$(grep '"output_ring":null' "$work/lb-$name.out" | tail -1 | sed 's/.*"packets_forwarded":\([0-9]*\).*/\1/')
    local wcpu lcpu
    wcpu=$(echo "$(cpu "$work/w0-$name.time") + $(cpu "$work/w1-$name.time")" | bc -l)
    lcpu=$(cpu "$work/lb-$name.time")
    printf "%-22s %12s %12.2f %14.1f\n" "$name" "$fwd" "$wcpu" "$(echo "$lcpu * 1000000000 / $packets" | bc -l)"
}

echo "end to end: $packets packets (1000 TCP flows, 2% carrying 90%), replayed at $rate/s into 2 flowlog workers"
printf "%-22s %12s %12s %14s\n" case "to workers" "worker cpu s" "lb cpu ns/pkt"
run "no shunting"
run "--shunt-after 1000000" --shunt-after 1000000
echo
echo "engine (one core, 8 rings, consumer on the other core), the same trace: every packet's"
echo "headers come from memory (600 MB of frames), as a NIC's would"
bash "$root/bpf/build.sh" >/dev/null
"$here/.build/release/shunt-bench" "$trace" --xdp "$root/.build/bpf/lb_xdp.o" "${@}"
small="$work/small.pcap"
"$lb" gen -w "$small" --mode elephants --flows 50 --packets 4000 --sizes 1514 --seed 7 >/dev/null 2>&1
echo
echo "engine, 4,000 frames of the same kind (6 MB: the headers stay in the cache), so the"
echo "table's own cost shows"
"$here/.build/release/shunt-bench" "$small" "${@}"
