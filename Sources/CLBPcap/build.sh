#!/usr/bin/env bash
# Builds liblbpcap.so (lb's rings as capture devices of the system's libpcap) into
# .build/release/liblbpcap.so. Plain C against libc and the system's libpcap: it is preloaded
# into analyzers (tcpdump, Zeek, Suricata, ...), so it must not bring a language runtime with it,
# and SwiftPM links every library product with the Swift runtime -- hence this script, which
# scripts/setup runs. Rebuilds only when a source is newer than the library.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=Sources/CLBPcap
out=${1:-.build/release/liblbpcap.so}
CC=${CC:-cc}
mkdir -p "$(dirname "$out")"
stale=0
[ -f "$out" ] || stale=1
for f in "$src"/*.c "$src"/*.h "$src"/include/*.h Sources/CLBRing/include/lb_ring.h "$src"/build.sh; do
    [ "$f" -nt "$out" ] && stale=1
done
if [ "$stale" = 1 ]; then
    # -fvisibility=hidden: only pcap_* and lbpcap_version are exported (LBP_EXPORT)
    "$CC" -std=gnu11 -O2 -flto -g -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation \
        -I"$src" -I"$src/include" -ISources/CLBRing/include \
        -Wl,-soname,liblbpcap.so -Wl,--no-undefined -Wl,-z,defs \
        -o "$out.tmp.$$" "$src"/*.c -lpcap
    # a temporary name of this run's own: two builds at once (parallel tests installing into
    # the same build directory) must not move each other's file away
    mv "$out.tmp.$$" "$out"
    echo "CLBPcap/build.sh: built $out" >&2
fi
