#!/usr/bin/env bash
# Builds flowlog-bench (release) and runs it over the Zeek corpus beside the repository.
# Extra arguments go to flowlog-bench, e.g. bench/flowlog/run.sh --loops 50
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
swift build -c release --package-path "$here/.." --product flowlog-bench
exec "$here/../.build/release/flowlog-bench" --corpus "$here/../../../shared/zeek-corpus/traces" "$@"
