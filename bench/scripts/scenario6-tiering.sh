#!/usr/bin/env bash
# Scenario 6: tiering throughput with 1 and 50 tiered partitions against s3s-fs.
#   1. broker with the S3 remote tier and tiering tasks parked (task interval one hour); load
#      SIZE_MIB MiB (default 256) of 1 KiB records into a tiered topic of PARTS partitions with
#      SEGMENT_MIB (default 1) MiB segments and local.retention.bytes=1;
#   2. restart with a 200 ms task interval and remote.log.manager.copier.thread.pool.size=POOL,
#      and time how long until every partition's local log start (ListOffsets -4) has reached
#      its active segment: everything rolled was uploaded, published and deleted locally.
# Runs: 1 partition; 50 partitions with the default pool of 10; 50 partitions with a pool of 1
# (one copy at a time, as before tiering ran in parallel).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZE_MIB="${SIZE_MIB:-256}"
SEGMENT_MIB="${SEGMENT_MIB:-1}"

s3_start "$WORK/s3root"
s3_overrides=(
    "rsm.config.storage.backend=s3" "rsm.config.s3.bucket=bench" "rsm.config.s3.endpoint=$S3_ENDPOINT"
    "rsm.config.s3.region=us-east-1" "rsm.config.s3.access.key.id=AKIDEXAMPLE"
    "rsm.config.s3.secret.access.key=SECRETEXAMPLE" "rsm.config.s3.allow.http=true"
    "log.retention.check.interval.ms=200"
)

# active_bases DATA TOPIC: the base offset of each partition's newest segment, as a JSON list.
active_bases() {
    python3 - "$1" "$2" <<'PY'
import pathlib, sys
data, topic = pathlib.Path(sys.argv[1]), sys.argv[2]
parts = sorted((int(d.name.rsplit("-", 1)[1]), d) for d in data.glob(f"{topic}-*") if d.is_dir())
print([max(int(f.stem) for f in d.glob("*.log")) for _, d in parts])
PY
}

# rolled_bytes DATA TOPIC: bytes in every partition's segments but the newest.
rolled_bytes() {
    python3 - "$1" "$2" <<'PY'
import pathlib, sys
data, topic = pathlib.Path(sys.argv[1]), sys.argv[2]
total = 0
for d in data.glob(f"{topic}-*"):
    logs = sorted(d.glob("*.log"), key=lambda f: int(f.stem))
    total += sum(f.stat().st_size for f in logs[:-1])
print(total)
PY
}

one_run() {
    local parts="$1" pool="$2" topic="s6-$1-$2" data bases bytes start_us end_us now
    data="$WORK/s6-$parts-$pool"
    broker_start "$data" "${s3_overrides[@]}" "remote.log.manager.task.interval.ms=3600000"
    broker_probe >/dev/null
    driver --topic "$topic" --partitions "$parts" --message-size 1024 --count $((SIZE_MIB * 1024)) \
        --consumers 0 --topic-config remote.storage.enable=true \
        --topic-config segment.bytes=$((SEGMENT_MIB << 20)) --topic-config local.retention.bytes=1 \
        --label "s6 load" >/dev/null
    broker_stop
    bases="$(active_bases "$data/logs" "$topic")"
    bytes="$(rolled_bytes "$data/logs" "$topic")"
    start_us="$(now_us)"
    broker_start "$data" "${s3_overrides[@]}" "remote.log.manager.task.interval.ms=200" \
        "remote.log.manager.copier.thread.pool.size=$pool"
    local deadline=$((SECONDS + 600))
    while :; do
        now="$(driver --topic "$topic" --list-offsets earliest-local 2>/dev/null | python3 -c '
import json, sys
print(json.load(sys.stdin)["offsets"])' 2>/dev/null || echo "[]")"
        if python3 -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); sys.exit(0 if len(a)==len(b) and all(x>=y for x,y in zip(a,b)) else 1)' "$now" "$bases"; then
            break
        fi
        (( SECONDS < deadline )) || { echo "tiering stuck: local starts $now, active bases $bases" >&2; exit 1; }
        sleep 0.2
    done
    end_us="$(now_us)"
    local after
    after="$(broker_sample)"
    broker_stop
    emit "$(python3 -c "
import json
secs = ($end_us - $start_us) / 1e6
print(json.dumps({'label': 's6 tier $parts partitions, copier pool $pool', 'partitions': $parts,
    'pool': $pool, 'rolled_bytes': $bytes, 'secs': round(secs, 2),
    'mb_per_s': round($bytes / 1e6 / secs, 1)}))")" '{"scenario": "s6", "broker": "shale"}' \
        "{\"broker_after\": $after}"
    rm -rf "$data"
}

one_run 1 10
one_run 50 10
one_run 50 1
s3_stop
