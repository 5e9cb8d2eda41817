#!/usr/bin/env bash
# Scenario 3: 1,000 partitions and 1,000 idle connections. Fixed-rate produce (so latency is
# measured from intended send times) across all partitions while the idle connections are held;
# broker memory before and after.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PARTS="${PARTS:-1000}"
IDLE="${IDLE:-1000}"
RATE="${RATE:-20000}"
ulimit -n 65536 2>/dev/null || true

data="$WORK/s3"
broker_start "$data"
startup="$(broker_probe)"
idle="$(broker_sample)"
line="$(driver --topic s3-many --partitions "$PARTS" --idle-connections "$IDLE" --message-size 100 \
    --acks 1 --target-rate "$RATE" --linger 5 --duration "$DURATION" --producers 1 --consumers 1 \
    --label "s3 ${PARTS} partitions ${IDLE} idle conns ${RATE} msg/s")"
after="$(broker_sample)"
broker_stop
emit "$line" "{\"scenario\": \"s3\", \"broker\": \"$BROKER_LABEL\", \"startup_ms\": $startup}" \
    "{\"broker_idle\": $idle, \"broker_after\": $after}"
