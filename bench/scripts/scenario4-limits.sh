#!/usr/bin/env bash
# Scenario 4: the physical limits on this machine, now: sequential write + fsync of the data disk
# (one fsync at the end, and every 4 MiB), one loopback TCP stream, and s3s-fs ranged GETs with
# the block cache's block size (1 MiB) one at a time and 4 at a time (read-ahead 4).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DISK_DIR="${DISK_DIR:-$WORK}"
BLOCK="${BLOCK:-1048576}"

emit "$("$LIMITS_BIN" disk "$DISK_DIR" --mib 512 --fsync-mib 0)" '{"scenario": "s4"}'
emit "$("$LIMITS_BIN" disk "$DISK_DIR" --mib 512 --fsync-mib 4)" '{"scenario": "s4"}'
emit "$("$LIMITS_BIN" tcp --secs 3)" '{"scenario": "s4"}'
s3_start "$WORK/s3root"
for c in 1 4; do
    emit "$("$LIMITS_BIN" s3 --endpoint "$S3_ENDPOINT" --bucket bench --object-mib 64 \
        --block "$BLOCK" --concurrency "$c")" '{"scenario": "s4"}'
done
s3_stop
