#!/usr/bin/env bash
# Follower rebuild and reassignment figures of a tiered vs a non-tiered topic of the same size on
# a cluster (one controller, three brokers, then a fifth; a real S3 server, s3s-fs).
#
#     tiered-cluster-figures.sh SHALE_BIN [records]
#
# Runs tests/python/test_tiered_cluster.py with `records` records of 250 bytes per topic
# (default 400000, about 100 MB) and prints its REBUILD / REASSIGN lines: seconds until the new
# replica is in the ISR, bytes it copied from the leader, the partition's total bytes.
# Needs the test suite's venv and s3s-fs (./scripts/test.sh installs both).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHALE_BIN="$(realpath "$1")"
export SHALE_BIN SHALE_TIERED_RECORDS="${2:-400000}"
export S3S_FS_BIN="${S3S_FS_BIN:-$ROOT/.tools/bin/s3s-fs}"
cd "$ROOT/tests/python"
"$ROOT/.venv/bin/pytest" -q -p no:cacheprovider -s test_tiered_cluster.py 2>&1 \
    | grep -E "^(REBUILD|REASSIGN) |[0-9]+ (passed|failed)"
