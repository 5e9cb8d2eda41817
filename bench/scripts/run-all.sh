#!/usr/bin/env bash
# Runs every scenario and writes JSON lines to bench/results/<UTC date-time>.jsonl, then prints
# the markdown table (bench/scripts/table.py) with ratios Shale/peer and Shale/physical limits.
#
#   bench/scripts/run-all.sh                 Shale only: limits (4), scenarios 1, 2, 3
#   PEER=tansu bench/scripts/run-all.sh      also scenarios 1-3 against Tansu 0.6.0, memory and S3
#                                            engines (installs it into bench/.peer on first use:
#                                            ~17 min; never in CI)
#   DURATION=10 (seconds per driver run), SIZE_MIB=320 (scenario 2), NO_BUILD=1 (skip cargo build)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p shale-broker
    cargo build --release -p shale-bench --bins
fi
mkdir -p bench/results
export OUT="${OUT:-$ROOT/bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).jsonl}"
: >"$OUT"
{
    echo "{\"scenario\": \"machine\", \"nproc\": $(nproc), \"mem_total_kib\": $(awk '/MemTotal/ {print $2}' /proc/meminfo),"
    echo " \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"kernel\": \"$(uname -r)\","
    echo " \"date\": \"$(date -u +%FT%TZ)\", \"git\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\","
    echo " \"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
} | python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())))' >>"$OUT"

PEER=shale "$HERE/scenario4-limits.sh"
PEER=shale "$HERE/scenario1-throughput.sh"
PEER=shale "$HERE/scenario2-cold-read.sh"
PEER=shale "$HERE/scenario3-many.sh"
PEER=shale "$HERE/scenario5-rolls.sh"
PEER=shale "$HERE/scenario6-tiering.sh"
if [[ "${PEER:-shale}" != "shale" ]]; then
    "$HERE/scenario1-throughput.sh"
    "$HERE/scenario2-cold-read.sh"
    BROKER_LABEL=tansu-memory "$HERE/scenario3-many.sh"
fi
echo "results: $OUT"
python3 "$HERE/table.py" "$OUT"
