#!/usr/bin/env bash
# Scenario 2: cold read of a tiered topic from a real S3-compatible server (s3s-fs).
#   1. broker with the S3 remote tier and a block cache of CACHE_MIB (default 512); produce
#      SIZE_MIB MiB (default 320) of 1 KiB records to a tiered topic with 64 MiB segments and
#      local.retention.ms=1000, and the same amount to a local-only topic;
#   2. wait until the local log start (ListOffsets -4) has passed 75% of the tiered data;
#   3. restart the broker (empty block cache) and consume the tiered topic from offset 0: MB/s,
#      time to first record, object-store GETs and bytes fetched per MiB served;
#   4. consume it again (warm cache), and consume the local-only topic (local-tier read).
# With PEER=tansu: Tansu's S3 engine has no tiering (every batch is an object), so its "cold
# read" is a restart and a read from offset 0 of PEER_SIZE_MIB (default 64) MiB, capped at
# DRAIN (default 30) seconds.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZE_MIB="${SIZE_MIB:-320}"
CACHE_MIB="${CACHE_MIB:-512}"

s3_start "$WORK/s3root"

if [[ "$PEER" != "shale" ]]; then
    export AWS_ENDPOINT="$S3_ENDPOINT" AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
        AWS_SECRET_ACCESS_KEY=SECRETEXAMPLE AWS_DEFAULT_REGION=us-east-1 AWS_ALLOW_HTTP=true
    export TANSU_ENGINE="s3://bench/"
    BROKER_LABEL="tansu-s3"
    count=$((${PEER_SIZE_MIB:-64} * 1024))
    broker_start "$WORK/s2-peer"
    broker_probe >/dev/null
    driver --topic s2-tiered --partitions 1 --message-size 1024 --count "$count" --consumers 0 \
        --label "s2 load" >/dev/null
    broker_stop
    broker_start "$WORK/s2-peer"
    startup="$(broker_probe)"
    line="$(driver --topic s2-tiered --message-size 1024 --producers 0 --consumers 1 \
        --from-beginning --duration 0 --drain-timeout "${DRAIN:-30}" --label "s2 cold read")"
    emit "$line" "{\"scenario\": \"s2\", \"broker\": \"$BROKER_LABEL\", \"startup_ms\": $startup}" \
        "{\"broker_after\": $(broker_sample)}"
    broker_stop
    s3_stop
    exit 0
fi

COUNT=$((SIZE_MIB * 1024))
data="$WORK/s2"
overrides=(
    "rsm.config.storage.backend=s3" "rsm.config.s3.bucket=bench" "rsm.config.s3.endpoint=$S3_ENDPOINT"
    "rsm.config.s3.region=us-east-1" "rsm.config.s3.access.key.id=AKIDEXAMPLE"
    "rsm.config.s3.secret.access.key=SECRETEXAMPLE" "rsm.config.s3.allow.http=true"
    "rsm.config.cache.size.bytes=$((CACHE_MIB << 20))" "remote.log.manager.task.interval.ms=500"
)
# Extra broker settings, e.g. BROKER_OVERRIDES="rsm.config.readahead.blocks=16".
read -ra extra <<<"${BROKER_OVERRIDES:-}"
overrides+=("${extra[@]}")
broker_start "$data" "${overrides[@]}"
broker_probe >/dev/null
driver --topic s2-tiered --partitions 1 --message-size 1024 --count "$COUNT" --consumers 0 \
    --topic-config remote.storage.enable=true --topic-config segment.bytes=67108864 \
    --topic-config local.retention.ms=1000 --label "s2 load tiered" >/dev/null
driver --topic s2-local --partitions 1 --message-size 1024 --count "$COUNT" --consumers 0 \
    --topic-config segment.bytes=67108864 --label "s2 load local" >/dev/null

latest="$(driver --topic s2-tiered --list-offsets latest | python3 -c 'import json,sys; print(json.load(sys.stdin)["offsets"][0])')"
deadline=$((SECONDS + 180))
while :; do
    local_start="$(driver --topic s2-tiered --list-offsets earliest-local | python3 -c 'import json,sys; print(json.load(sys.stdin)["offsets"][0])')"
    (( local_start * 100 >= latest * 75 )) && break
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
        \"tiered_local_log_start\": $local_start, \"tiered_latest\": $latest, \"cache_mib\": $CACHE_MIB,
        \"remote_gets\": $((gets1 - gets0)), \"remote_fetched_bytes\": $((bytes1 - bytes0))}" \
        "{\"broker_after\": $(broker_sample)}"
}
read_pass "s2 cold read ${SIZE_MIB} MiB" s2-tiered
read_pass "s2 warm read ${SIZE_MIB} MiB" s2-tiered
read_pass "s2 local-tier read ${SIZE_MIB} MiB" s2-local
broker_stop
s3_stop
