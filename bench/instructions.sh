#!/usr/bin/env bash
# Counts the instructions lb's data path and the C yardstick execute per packet, with
# valgrind --tool=callgrind: unlike wall-clock time on a shared VM, the same binary and input
# give the same count on every run, so this is the figure to compare changes with.
#   bench/instructions.sh [PACKETS] [INPUTS]      e.g. bench/instructions.sh 300000 udp64,vxlan
# After the totals, a table per input splits them by stage (stages.py: each instruction is
# charged by the functions it was inlined from, read from the binaries' debug info).
#   LB_BENCH=/other/tree/bench/.build/release/lb-bench bench/instructions.sh   counts another build of lb
#   LB_BENCH_ARGS="--dedup on" bench/instructions.sh                         lb with --dedup (1 ms); "--new-cycles": its baseline
# Only Dispatcher.run (lb) and run() (C) and what they call are counted, i.e. receive, decode,
# hash, ring writes and publishing; the consumer thread is not. Rings are the default geometry,
# with no warm-up (page faults happen in the kernel and are not counted).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
packets="${1:-300000}"
inputs="${2:-udp64,trace,vxlan}"

if [ -n "${LB_BENCH:-}" ]; then
    lbbench="$LB_BENCH"
else
    swift build -c release --package-path "$here" --product lb-bench >/dev/null
    lbbench="$here/.build/release/lb-bench"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# valgrind 3.19 cannot read the DWARF 5 the Swift toolchain writes: count on a copy without it.
cp "$lbbench" "$tmp/lb-bench-nodebug"
strip --strip-debug "$tmp/lb-bench-nodebug"
cc="${CC:-clang}"; command -v "$cc" >/dev/null || cc=gcc
# valgrind cannot run every instruction -march=native may pick on a newer CPU (AVX-512):
# the counting build targets x86-64-v2, as generic as lb's own release build
# (-g only adds debug info, for the split by stage: the code and its count are the same)
mkdir -p "$here/.build"
"$cc" -O2 -g -march=x86-64-v2 -pthread -o "$here/.build/yardstick-count" "$here/yardstick/yardstick.c"

total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }

printf "%-8s %14s %14s %10s %10s %8s\n" input "lb instr/pkt" "C instr/pkt" "lb drops" "C drops" "lb/C"
for input in ${inputs//,/ }; do
    # (the copy finds the malloc interposer's library beside the original)
    LD_LIBRARY_PATH="$(dirname "$lbbench")" valgrind --tool=callgrind --fair-sched=yes --toggle-collect='*DispatcherV3run*' --dump-instr=yes \
        --callgrind-out-file="$tmp/lb-$input.out" \
        "$tmp/lb-bench-nodebug" --inputs "$input" --rings default --packets "$packets" --warmup-exact 0 --repeat 1 \
        --quiet-wait 0 --json "$tmp/lb.json" ${LB_BENCH_ARGS:-} >"$tmp/lb.log" 2>&1
    valgrind --tool=callgrind --fair-sched=yes --toggle-collect=run --dump-instr=yes --callgrind-out-file="$tmp/c-$input.out" \
        "$here/.build/yardstick-count" "/tmp/lb-bench-$input.pcap" "$packets" 0 32768 16777216 >"$tmp/c.log" 2>&1
    lb=$(total "$tmp/lb-$input.out"); c=$(total "$tmp/c-$input.out")
    lbdrops=$(grep -o '"drops" : [0-9]*' "$tmp/lb.json" | head -1 | grep -o '[0-9]*$')
    cdrops=$(grep -o 'drops=[0-9]*' "$tmp/c.log" | grep -o '[0-9]*$')
    awk -v i="$input" -v lb="$lb" -v c="$c" -v n="$packets" -v ld="$lbdrops" -v cd="$cdrops" \
        'BEGIN { printf "%-8s %14.1f %14.1f %10d %10d %8.2f\n", i, lb / n, c / n, ld, cd, lb / c }'
done

for input in ${inputs//,/ }; do
    printf "\n%-12s%10s%10s   (%s, instructions per packet)\n" stage lb C "$input"
    python3 "$here/stages.py" --yardstick "$here/yardstick/yardstick.c" "$packets" \
        "$tmp/lb-$input.out:$lbbench" "$tmp/c-$input.out:$here/.build/yardstick-count"
done
