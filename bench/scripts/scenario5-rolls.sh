#!/usr/bin/env bash
# Scenario 5: produce latency across segment rolls. One producer at a fixed rate (latency from each
# record's intended send time, so a stall at a roll shows as latency), acks=all, 1 KiB values, on
# a topic with small segments (segment.bytes=$SEGMENT_BYTES, default 1 MiB: a roll every ~1,000
# records) and, for comparison, with segments that never roll during the run. Each run reports
# produce-ack p50/p99/p999/max; the broker's rolled segments are counted from its data dir.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RATE="${RATE:-5000}"
SEGMENT_BYTES="${SEGMENT_BYTES:-1048576}"

one_run() {
    local seg_bytes="$1" label="$2" data line segments
    data="$WORK/s5-$seg_bytes"
    broker_start "$data"
    broker_probe >/dev/null
    line="$(driver --topic s5 --partitions 1 --message-size 1024 --acks all \
        --target-rate "$RATE" --linger 5 --duration "$DURATION" --producers 1 --consumers 0 \
        --topic-config "segment.bytes=$seg_bytes" --label "$label")"
    segments="$(find "$data/logs/s5-0" -name '*.log' | wc -l)"
    broker_stop
    emit "$line" "{\"scenario\": \"s5\", \"broker\": \"$BROKER_LABEL\", \"segments\": $segments}"
    rm -rf "$data"
}

one_run "$SEGMENT_BYTES" "s5 rolls every $SEGMENT_BYTES B, $RATE rec/s"
one_run 1073741824 "s5 no rolls, $RATE rec/s"
