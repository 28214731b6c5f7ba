#!/usr/bin/env bash
# Per-group policy (issue 17): ns per packet that a typical filter, slicing, both, the tenant tag
# and --dedup add to lb's data path, against the same run without them (policy-bench; release build).
#   bench/policy.sh [--packets N] [--repeat N] [--filter EXPR] [--slice N]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="${CORPUS:-$here/../../shared/zeek-corpus/traces}"
swift build -c release --package-path "$here" --product policy-bench >/dev/null
exec "$here/.build/release/policy-bench" "$corpus" "$@"
