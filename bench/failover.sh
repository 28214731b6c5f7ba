#!/usr/bin/env bash
# Share of flows that change rings when one of N workers fails and when it returns, lb's
# failover against hash mod N. Placement only (deterministic), so any machine gives the same
# figures. Extra arguments go to failover-share (--rings N, --flows F).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
swift build -c release --package-path "$here" --product failover-share
exec "$here/.build/release/failover-share" "$@"
