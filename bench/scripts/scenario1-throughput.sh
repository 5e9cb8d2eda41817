#!/usr/bin/env bash
# Scenario 1: produce + consume, 100 B and 1 KiB values, 1 and 6 partitions, acks=1 and acks=all.
# A fresh broker (empty data dir) per combination: start-up to first ack, then a DURATION-second
# run of 1 producer and 1 consumer at full speed, then broker VmHWM/VmRSS and CPU time.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for size in 100 1024; do
    for parts in 1 6; do
        for acks in 1 all; do
            data="$WORK/s1-$size-$parts-$acks"
            broker_start "$data"
            startup="$(broker_probe)"
            idle="$(broker_sample)"
            line="$(driver --topic "s1-$size-$parts" --partitions "$parts" --message-size "$size" \
                --acks "$acks" --duration "$DURATION" --producers 1 --consumers 1 \
                --label "s1 ${size}B p$parts acks=$acks")"
            after="$(broker_sample)"
            broker_stop
            emit "$line" "{\"scenario\": \"s1\", \"broker\": \"$PEER\", \"startup_ms\": $startup}" \
                "{\"broker_idle\": $idle, \"broker_after\": $after}"
            rm -rf "$data"
        done
    done
done
