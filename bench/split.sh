#!/usr/bin/env bash
# The fixed cost and the speed of splitting a capture: `lb -i pcap:X -p g:2` with two
# `lb cat g:K -w FILE` consumers (started together, as a script would), against a
# `tcpdump -r X -w /dev/null` copy of the same file. Fastest of REPEAT each, in one run.
#   bench/split.sh [PACKETS...]        default: 1000 1000000      REPEAT=5 bench/split.sh 1000000
#   LB_BINARY=/other/lb bench/split.sh   another build (the before of a change)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
repeat="${REPEAT:-5}"
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1000 1000000)
lb="${LB_BINARY:-}"
if [ -z "$lb" ]; then
    swift build -c release --package-path "$root" --product lb >/dev/null
    lb="$root/.build/release/lb"
fi
command -v tcpdump >/dev/null || { echo "split.sh: tcpdump is needed (scripts/setup installs it)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
fastest() { sort -g | head -1; }

printf "%-10s %14s %14s %8s\n" packets "lb split (s)" "tcpdump (s)" ratio
for n in "${sizes[@]}"; do
    trace="$work/t$n.pcap"
    "$lb" gen -w "$trace" --packets "$n" --flows 1000 --seed 3 >/dev/null 2>&1
    lbt=(); tdt=()
    for _ in $(seq "$repeat"); do
        run="$work/run"; rm -rf "$run"
        t0=$(now)
        "$lb" -i "pcap:$trace" -p g:2 --run-dir "$run" -w 10 >/dev/null 2>"$work/lb.err" &
        l=$!
        "$lb" cat g:0 -w "$work/a.pcap" --run-dir "$run" 2>/dev/null &
        c0=$!
        "$lb" cat g:1 -w "$work/b.pcap" --run-dir "$run" 2>/dev/null &
        c1=$!
        wait $l $c0 $c1
        t1=$(now)
        lbt+=("$(echo "$t1 - $t0" | bc -l)")
        t0=$(now)
        tcpdump -r "$trace" -w /dev/null 2>/dev/null
        t1=$(now)
        tdt+=("$(echo "$t1 - $t0" | bc -l)")
    done
    a=$(printf "%s\n" "${lbt[@]}" | fastest); b=$(printf "%s\n" "${tdt[@]}" | fastest)
    printf "%-10s %14.3f %14.3f %8.2f\n" "$n" "$a" "$b" "$(echo "$a / $b" | bc -l)"
done
