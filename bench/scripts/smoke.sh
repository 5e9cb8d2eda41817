#!/usr/bin/env bash
# CI smoke run of the load driver (not a benchmark): a fresh broker, ~3 s of produce + consume with
# tiny values, and the JSON line must show zero errors and nonzero produce and consume throughput.
# Usage: bench/scripts/smoke.sh   (SHALE_BIN and BENCH_BIN name the binaries)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PEER=shale

broker_start "$WORK/smoke"
startup="$(broker_probe)"
line="$(driver --topic smoke --partitions 2 --message-size 16 --batch-size 20 --duration 3 \
    --producers 1 --consumers 1 --acks all --label smoke)"
echo "$line"
echo "start-up to first ack: ${startup} ms"
python3 - "$line" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
problems = []
if d.get("errors") != 0:
    problems.append(f"errors={d.get('errors')} {d.get('error_samples')}")
for side in ("produce", "consume"):
    if not d.get(side, {}).get("msgs_per_s", 0) > 0:
        problems.append(f"{side} throughput is zero")
if d["consume"]["msgs"] != d["produce"]["msgs"]:
    problems.append(f"consumed {d['consume']['msgs']} != produced {d['produce']['msgs']}")
if problems:
    sys.exit("smoke run failed: " + "; ".join(problems))
print("smoke run ok")
PY
