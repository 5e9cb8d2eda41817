#!/usr/bin/env bash
# Scenario 2: cold read of a tiered topic from a real S3-compatible server (s3s-fs).
#   1. broker with the S3 remote tier; produce SIZE_MIB MiB of 1 KiB records to a tiered topic
#      with small segments and local.retention.ms=1000, and the same amount to a local-only topic;
#   2. wait until the local log start (ListOffsets -4) has moved past 90% of the tiered data;
#   3. restart the broker (empty block cache) and consume the tiered topic from offset 0: MB/s,
#      time to first record, object-store GETs and bytes fetched per MiB served;
#   4. consume it again (warm cache), and consume the local-only topic (local-tier read).
# Shale only: Tansu's S3 engine has no tiering (every batch is an object), so there is no peer run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZE_MIB="${SIZE_MIB:-128}"
COUNT=$((SIZE_MIB * 1024))
if [[ "$PEER" != "shale" ]]; then
    echo "scenario 2 is Shale-only (no tiering in the peer); skipped" >&2
    exit 0
fi

s3_start "$WORK/s3root"
data="$WORK/s2"
overrides=(
    "rsm.config.storage.backend=s3" "rsm.config.s3.bucket=bench" "rsm.config.s3.endpoint=$S3_ENDPOINT"
    "rsm.config.s3.region=us-east-1" "rsm.config.s3.access.key.id=AKIDEXAMPLE"
    "rsm.config.s3.secret.access.key=SECRETEXAMPLE" "rsm.config.s3.allow.http=true"
    "remote.log.manager.task.interval.ms=500"
)
broker_start "$data" "${overrides[@]}"
broker_probe >/dev/null
driver --topic s2-tiered --partitions 1 --message-size 1024 --count "$COUNT" --consumers 0 \
    --topic-config remote.storage.enable=true --topic-config segment.bytes=8388608 \
    --topic-config local.retention.ms=1000 --label "s2 load tiered" >/dev/null
driver --topic s2-local --partitions 1 --message-size 1024 --count "$COUNT" --consumers 0 \
    --topic-config segment.bytes=8388608 --label "s2 load local" >/dev/null

latest="$(driver --topic s2-tiered --list-offsets latest | python3 -c 'import json,sys; print(json.load(sys.stdin)["offsets"][0])')"
deadline=$((SECONDS + 180))
while :; do
    local_start="$(driver --topic s2-tiered --list-offsets earliest-local | python3 -c 'import json,sys; print(json.load(sys.stdin)["offsets"][0])')"
    (( local_start * 100 >= latest * 90 )) && break
    (( SECONDS < deadline )) || { echo "local log start stuck at $local_start of $latest" >&2; exit 1; }
    sleep 0.5
done
broker_stop

# Cold: a new process, so the block and index caches are empty.
broker_start "$data" "${overrides[@]}"
startup="$(broker_probe)"
read_pass() {
    local label="$1" topic="$2" gets0 bytes0 line gets1 bytes1
    gets0="$(metric_sum 'shale_object_store_requests_total\{kind="GET"')"
    bytes0="$(metric_sum shale_remote_cache_fetched_bytes_total)"
    line="$(driver --topic "$topic" --message-size 1024 --producers 0 --consumers 1 --from-beginning --label "$label")"
    gets1="$(metric_sum 'shale_object_store_requests_total\{kind="GET"')"
    bytes1="$(metric_sum shale_remote_cache_fetched_bytes_total)"
    emit "$line" "{\"scenario\": \"s2\", \"broker\": \"$PEER\", \"startup_ms\": $startup,
        \"tiered_local_log_start\": $local_start, \"tiered_latest\": $latest,
        \"remote_gets\": $((gets1 - gets0)), \"remote_fetched_bytes\": $((bytes1 - bytes0))}" \
        "{\"broker_after\": $(broker_sample)}"
}
read_pass "s2 cold read ${SIZE_MIB} MiB" s2-tiered
read_pass "s2 warm read ${SIZE_MIB} MiB" s2-tiered
read_pass "s2 local-tier read ${SIZE_MIB} MiB" s2-local
broker_stop
s3_stop
