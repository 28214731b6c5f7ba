#!/usr/bin/env bash
# The worker library's own cost: a C program (bench/worker/worker_bench.c) drains a ring that lb
# has filled in advance, through lb_worker_next_batch/release (release builds, installed with
# scripts/install into bench/.build/worker-prefix). Prints one JSON line per run: packets per
# second through the C ABI, ns per packet, and mallocs made while draining (expected: 0).
#   bench/worker.sh [--packets N] [--batch B] [--repeat R] [--sizes S]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
packets=200000; batch=256; repeat=5; sizes=60
while [ $# -gt 0 ]; do
    case "$1" in
        --packets) packets=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --sizes) sizes=$2; shift 2 ;;
        *) echo "worker.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
prefix="$here/.build/worker-prefix"
"$root/scripts/install" --prefix "$prefix" >&2
mkdir -p "$here/.build"
cc -O2 -Wall -Wextra -o "$here/.build/worker_bench" "$here/worker/worker_bench.c" \
    $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs lbworker)
work=$(mktemp -d /tmp/lbw-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$prefix/bin/lb" gen -w "$work/t.pcap" --mode udp64 --packets "$packets" --sizes "$sizes" >&2
# a ring big enough for the whole capture, so lb publishes everything before the drain starts
slots=1; while [ $slots -lt $((packets + 1)) ]; do slots=$((slots * 2)); done
ringsize=1; while [ $ringsize -lt $(( (packets + 1) * ( (sizes + 63) / 64 * 64 + 64) )) ]; do ringsize=$((ringsize * 2)); done
for r in $(seq "$repeat"); do
    "$prefix/bin/lb" -i "pcap:$work/t.pcap" -p wb:1 --run-dir "$work/run" -w 30 \
        --ring-slots "$slots" --ring-size "$ringsize" > "$work/lb.out" 2> "$work/lb.err" &
    lb=$!
    "$here/.build/worker_bench" wb:0 "$work/run" 1500 "$batch"
    wait $lb
done
