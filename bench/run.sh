#!/usr/bin/env bash
# Builds lb's data-path benchmark (release) and the C yardstick, runs both in one run, prints
# the table and writes JSON to bench/.build/lb-bench.json. Extra arguments go to lb-bench, e.g.
#   bench/run.sh --inputs udp64 --rings default --repeat 5
#   bench/run.sh --packets 5000000            # quicker
# Measure on a quiet machine: lb-bench waits (up to --quiet-wait seconds, default 300) for the
# CPUs to be idle before each run and flags runs whose producer did not get its whole CPU.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

swift build -c release --package-path "$here" --product lb-bench

cc="${CC:-}"
if [ -z "$cc" ]; then
    if command -v clang >/dev/null; then cc=clang; else cc=gcc; fi
fi
mkdir -p "$here/.build"
"$cc" -O2 -march=native -pthread -Wall -Wextra -o "$here/.build/yardstick" "$here/yardstick/yardstick.c"

# the corpus for input (b): shared/ sits beside the repository
corpus=()
if [ -d "$here/../../shared/zeek-corpus/traces" ]; then corpus=(--corpus "$here/../../shared/zeek-corpus/traces"); fi

exec "$here/.build/release/lb-bench" --yardstick "$here/.build/yardstick" --json "$here/.build/lb-bench.json" "${corpus[@]}" "$@"
