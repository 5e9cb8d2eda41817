#!/usr/bin/env bash
# Scenario 1: produce + consume, 100 B and 1 KiB values, 1 and 6 partitions, acks=1 and acks=all.
# A fresh broker (empty data dir) per combination: start-up to first ack, then a DURATION-second
# run of 1 producer and 1 consumer at full speed, then broker VmHWM/VmRSS and CPU time.
# With PEER=tansu it runs once per engine in TANSU_ENGINES (default "memory s3"); the s3 engine
# stores every batch as an object in an s3s-fs bucket (its consumers get DRAIN seconds, default
# 10, after the run to catch up: that engine reads far slower than it writes).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# one_run SIZE PARTS ACKS CONSUMERS LABEL: a fresh broker, one driver run, one result line.
one_run() {
    local size="$1" parts="$2" acks="$3" consumers="$4" label="$5" data startup idle line after
    data="$WORK/s1-$size-$parts-$acks-$consumers"
    broker_start "$data"
    startup="$(broker_probe)"
    idle="$(broker_sample)"
    line="$(driver --topic "s1-$size-$parts" --partitions "$parts" --message-size "$size" \
        --acks "$acks" --duration "$DURATION" --producers 1 --consumers "$consumers" \
        --drain-timeout "${DRAIN:-30}" --label "$label")"
    after="$(broker_sample)"
    broker_stop
    emit "$line" "{\"scenario\": \"s1\", \"broker\": \"$BROKER_LABEL\", \"startup_ms\": $startup}" \
        "{\"broker_idle\": $idle, \"broker_after\": $after}"
    rm -rf "$data"
}

run_matrix() {
    local size parts acks
    for size in 100 1024; do
        for parts in 1 6; do
            for acks in 1 all; do
                one_run "$size" "$parts" "$acks" 1 "s1 ${size}B p$parts acks=$acks"
            done
        done
        # Produce alone: the broker's CPU per GB on the write path, without a consumer.
        one_run "$size" 1 1 0 "s1 ${size}B p1 acks=1 produce only"
    done
}

if [[ "$PEER" == "shale" ]]; then
    run_matrix
    exit 0
fi
for engine in ${TANSU_ENGINES:-memory s3}; do
    BROKER_LABEL="tansu-$engine"
    if [[ "$engine" == "s3" ]]; then
        s3_start "$WORK/s3root-tansu"
        export AWS_ENDPOINT="$S3_ENDPOINT" AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
            AWS_SECRET_ACCESS_KEY=SECRETEXAMPLE AWS_DEFAULT_REGION=us-east-1 AWS_ALLOW_HTTP=true
        TANSU_ENGINE="s3://bench/" DRAIN="${DRAIN:-10}" run_matrix
        s3_stop
    else
        TANSU_ENGINE="memory://tansu/" run_matrix
    fi
done
