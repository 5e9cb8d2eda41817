#!/usr/bin/env bash
# Scenario 4: the physical limits on this machine, now: sequential write + fsync of the data disk
# (one fsync at the end, and every 4 MiB), one loopback TCP stream, and s3s-fs ranged GETs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DISK_DIR="${DISK_DIR:-$WORK}"
BLOCK="${BLOCK:-1048576}"

emit "$("$LIMITS_BIN" disk "$DISK_DIR" --mib 512 --fsync-mib 0)" '{"scenario": "s4"}'
emit "$("$LIMITS_BIN" disk "$DISK_DIR" --mib 512 --fsync-mib 4)" '{"scenario": "s4"}'
emit "$("$LIMITS_BIN" tcp --secs 3)" '{"scenario": "s4"}'
s3_start "$WORK/s3root"
# Ranged GETs of 1, 4 and 8 MiB (the block size, and Shale's read-ahead GETs of 4 and 8 blocks),
# 1, 4 and 8 in flight (a sliding window); then 4 KiB GETs one at a time: the round trip.
for block in "$BLOCK" $((4 * BLOCK)) $((8 * BLOCK)); do
    for c in 1 4 8; do
        emit "$("$LIMITS_BIN" s3 --endpoint "$S3_ENDPOINT" --bucket bench --object-mib 128 \
            --block "$block" --concurrency "$c")" '{"scenario": "s4"}'
    done
done
emit "$("$LIMITS_BIN" s3 --endpoint "$S3_ENDPOINT" --bucket bench --object-mib 1 \
    --block 4096 --concurrency 1)" '{"scenario": "s4"}'
s3_stop
