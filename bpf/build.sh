#!/usr/bin/env bash
# Compiles lb's XDP program: bpf/lb_xdp.c -> .build/bpf/lb_xdp.o (git-ignored; never committed).
# Called by scripts/setup; lb finds the object there (see docs/live-ingress.md).
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
    for c in /opt/swift/usr/bin/clang clang; do
        if command -v "$c" >/dev/null 2>&1; then CLANG=$c; break; fi
    done
fi
[ -n "$CLANG" ] || { echo "bpf/build.sh: no clang found (set CLANG=...)" >&2; exit 1; }
mkdir -p .build/bpf
out=.build/bpf/lb_xdp.o
if [ ! -f "$out" ] || [ bpf/lb_xdp.c -nt "$out" ] || [ bpf/lb_xdp_shared.h -nt "$out" ]; then
    "$CLANG" -O2 -g -Wall -Werror -target bpf -I/usr/include/"$(gcc -dumpmachine 2>/dev/null || echo "$(uname -m)-linux-gnu")" -Ibpf -c bpf/lb_xdp.c -o "$out.tmp"
    mv "$out.tmp" "$out"
    echo "bpf/build.sh: built $out" >&2
fi
