#!/usr/bin/env bash
# Shared helpers for the benchmark scenarios (source it). Starts/stops one broker at a time
# (Shale, or Tansu 0.6.0 when PEER=tansu), samples its memory and CPU from /proc, measures
# start-up to the first acknowledged produce, and appends JSON lines to $OUT.
#
# Environment: SHALE_BIN, BENCH_BIN, LIMITS_BIN, S3S_FS_BIN, PEER (shale|tansu), OUT (jsonl file),
# DURATION (seconds per driver run, default 10), TANSU_ENGINE (memory://tansu/ or s3://bench/),
# BROKER_LABEL (the "broker" field of result lines, default $PEER), BROKER_CPUS / DRIVER_CPUS
# (taskset CPU lists, default 0 and 1 on a machine with 2+ CPUs: the broker gets one core and the
# load driver the other, so neither steals the other's CPU; set both empty to not pin).
set -euo pipefail

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHALE_BIN="${SHALE_BIN:-$BENCH_ROOT/target/release/shale}"
BENCH_BIN="${BENCH_BIN:-$BENCH_ROOT/target/release/shale-bench}"
LIMITS_BIN="${LIMITS_BIN:-$BENCH_ROOT/target/release/shale-limits}"
S3S_FS_BIN="${S3S_FS_BIN:-$BENCH_ROOT/.tools/bin/s3s-fs}"
TANSU_BIN="${TANSU_BIN:-$BENCH_ROOT/bench/.peer/bin/tansu}"
PEER="${PEER:-shale}"
BROKER_LABEL="${BROKER_LABEL:-$PEER}"
if (($(nproc) >= 2)); then
    BROKER_CPUS="${BROKER_CPUS-0}"
    DRIVER_CPUS="${DRIVER_CPUS-1}"
fi
BROKER_PIN=()
DRIVER_PIN=()
[[ -n "${BROKER_CPUS:-}" ]] && BROKER_PIN=(taskset -c "$BROKER_CPUS")
[[ -n "${DRIVER_CPUS:-}" ]] && DRIVER_PIN=(taskset -c "$DRIVER_CPUS")
OUT="${OUT:-/dev/null}"
DURATION="${DURATION:-10}"
CLK_TCK="$(getconf CLK_TCK)"
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/shale-bench.XXXXXX")}"
BROKER_PID=""
S3_PID=""

cleanup() {
    broker_stop || true
    s3_stop || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now_us() { date +%s%6N; }

# Installs Tansu 0.6.0 into bench/.peer (about 17 minutes; never in CI).
ensure_tansu() {
    if [[ ! -x "$TANSU_BIN" ]]; then
        cargo install tansu --version 0.6.0 --locked --no-default-features \
            --features dynostore,libsql --root "$BENCH_ROOT/bench/.peer"
    fi
}

# broker_start DATA_DIR [key=value ...]: starts the broker named by $PEER; sets BROKER (host:port),
# METRICS (host:port, Shale only), BROKER_PID and BROKER_START_US (just before exec).
broker_start() {
    local data="$1"; shift
    local port metrics
    port="$(free_port)"; metrics="$(free_port)"
    mkdir -p "$data"
    BROKER="127.0.0.1:$port"
    METRICS="127.0.0.1:$metrics"
    if [[ "$PEER" == "tansu" ]]; then
        ensure_tansu
        BROKER_START_US="$(now_us)"
        "${BROKER_PIN[@]}" "$TANSU_BIN" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
            --storage-engine "${TANSU_ENGINE:-memory://tansu/}" >"$data/broker.log" 2>&1 &
    else
        local args=(--override "listeners=PLAINTEXT://$BROKER" --override "log.dirs=$data/logs"
            --override "shale.metrics.address=$METRICS")
        local kv
        for kv in "$@"; do args+=(--override "$kv"); done
        BROKER_START_US="$(now_us)"
        NO_COLOR=1 "${BROKER_PIN[@]}" "$SHALE_BIN" "${args[@]}" >>"$data/broker.log" 2>&1 &
    fi
    BROKER_PID=$!
}

# Prints "startup_ms" = broker exec → first acknowledged produce (the probe creates its topic).
broker_probe() {
    local line ack
    line="$("$BENCH_BIN" --probe --bootstrap "$BROKER" --topic bench-probe --label probe)"
    ack="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ack_unix_us"])' "$line")"
    python3 -c "print(round(($ack - $BROKER_START_US) / 1000, 2))"
}

# Prints a JSON object with the broker's VmHWM/VmRSS (KiB) and utime+stime (s).
broker_sample() {
    local hwm rss cpu
    hwm="$(awk '/^VmHWM:/ {print $2}' "/proc/$BROKER_PID/status")"
    rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$BROKER_PID/status")"
    cpu="$(sed 's/.*) //' "/proc/$BROKER_PID/stat" | awk -v t="$CLK_TCK" '{printf "%.2f", ($12 + $13) / t}')"
    printf '{"vm_hwm_kib": %s, "vm_rss_kib": %s, "cpu_s": %s}' "$hwm" "$rss" "$cpu"
}

broker_stop() {
    [[ -n "$BROKER_PID" ]] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 200); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}

# s3_start ROOT: starts s3s-fs on ROOT with bucket "bench"; sets S3_ENDPOINT and S3_PID.
s3_start() {
    local root="$1" port
    port="$(free_port)"
    mkdir -p "$root/bench"
    "$S3S_FS_BIN" --host 127.0.0.1 --port "$port" --access-key AKIDEXAMPLE \
        --secret-key SECRETEXAMPLE "$root" >"$root.log" 2>&1 &
    S3_PID=$!
    S3_ENDPOINT="http://127.0.0.1:$port"
    local i
    for i in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "s3s-fs did not start" >&2; return 1
}

s3_stop() {
    [[ -n "$S3_PID" ]] || return 0
    kill -TERM "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=""
}

# Sum of a Prometheus counter (all label sets matching the grep pattern) from the broker's /metrics.
metric_sum() {
    curl -fsS "http://$METRICS/metrics" | grep -E "^$1" | awk '{s += $NF} END {printf "%.0f", s}'
}

# emit JSON_LINE EXTRA_JSON...: merges the objects (later keys win), prints and appends to $OUT.
emit() {
    local merged
    merged="$(python3 -c '
import json, sys
d = {}
for a in sys.argv[1:]:
    d.update(json.loads(a))
print(json.dumps(d, sort_keys=True))' "$@")"
    echo "$merged"
    echo "$merged" >>"$OUT"
}

# Runs the driver and fails loudly if it printed no JSON line.
driver() {
    "${DRIVER_PIN[@]}" "$BENCH_BIN" --bootstrap "$BROKER" "$@"
}
