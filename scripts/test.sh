#!/usr/bin/env bash
# The project's test command. Run from anywhere: ./scripts/test.sh
#
#   1. kcat (Debian, librdkafka 2.0.2), iptables (the leader-partition test),
#      keytool (Java's, for the PKCS12/JKS store test)                         apt-get, if missing
#   2. Python venv .venv with pinned clients     pip, only when requirements change
#   3. .rdk/librdkafka.so.1 -> the wheel's librdkafka (kcat on librdkafka 2.16)
#   3b. s3s-fs 0.14.1 in .tools (S3-compatible test server)   cargo install, only if missing
#   4. cargo fmt --check, clippy -D warnings, cargo test --workspace
#   5. cargo build --release -p shale-broker
#   5b. bench smoke run of shale-bench (3 s); the criterion benches are type-checked by clippy
#   6. pytest tests/python against target/release/shale
#
# Options:
#   --python-only   skip step 4 (formatting, lints, Rust tests)
#   --no-build      skip step 5 too; use $SHALE_BIN or the existing target/release/shale
#   --              everything after it goes to pytest (e.g. -- -k kcat -x)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON_ONLY=0
BUILD=1
PYTEST_ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --python-only) PYTHON_ONLY=1 ;;
        --no-build) PYTHON_ONLY=1; BUILD=0 ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "scripts/test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

START=$SECONDS
CURRENT_STEP="setup"
step() {
    CURRENT_STEP="$1"
    printf '\n==== [%s +%ss] %s ====\n' "$(date -u +%H:%M:%S)" "$((SECONDS - START))" "$1"
}
trap 'rc=$?; if [[ $rc -ne 0 ]]; then printf "\n==== FAILED (exit %s) in step: %s ====\n" "$rc" "$CURRENT_STEP" >&2; fi' EXIT

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then SUDO=(sudo); fi
APT_UPDATED=0
apt_install() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        "${SUDO[@]}" apt-get update -q
        APT_UPDATED=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# ---------------------------------------------------------------------------
step "1/6 kcat, iptables, keytool"
if ! command -v kcat >/dev/null 2>&1; then
    apt_install kcat
fi
kcat -V 2>&1 | grep -i 'version' | head -n 1
# test_tls.py has Java's keytool write the PKCS12 and JKS stores a Kafka operator has.
if ! command -v keytool >/dev/null 2>&1; then
    apt_install openjdk-17-jre-headless
fi
# test_replication.py cuts a broker off inside a network namespace of its own with iptables.
if ! PATH="$PATH:/usr/sbin:/sbin" command -v iptables >/dev/null 2>&1; then
    apt_install iptables iproute2
fi

# ---------------------------------------------------------------------------
step "2/6 python venv (.venv)"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || { echo "$PY not found" >&2; exit 1; }
"$PY" --version
if [[ -e .venv && ! -x .venv/bin/python ]] || { [[ -x .venv/bin/python ]] && ! .venv/bin/python -c 'import sys' 2>/dev/null; }; then
    echo "removing broken .venv"
    rm -rf .venv
fi
if [[ ! -x .venv/bin/python ]]; then
    if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian's own python3 needs the venv package for ensurepip.
        apt_install python3-venv
    fi
    "$PY" -m venv .venv
fi
REQ=tests/python/requirements.txt
STAMP=.venv/.shale-requirements.sha256
WANT="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
    .venv/bin/python -m pip install --disable-pip-version-check -q -r "$REQ"
    echo "$WANT" > "$STAMP"
else
    echo "requirements unchanged; skipping pip"
fi
.venv/bin/python -c 'import confluent_kafka, kafka; print("confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion()[0], "| kafka-python", kafka.__version__)'

# ---------------------------------------------------------------------------
step "3/6 .rdk/librdkafka.so.1 (kcat on the wheel's librdkafka)"
shopt -s nullglob
LIBS=(.venv/lib/python3*/site-packages/confluent_kafka.libs/librdkafka-*.so.1)
shopt -u nullglob
if [[ ${#LIBS[@]} -ne 1 ]]; then
    echo "expected exactly one librdkafka in the confluent-kafka wheel, found: ${LIBS[*]:-none}" >&2
    exit 1
fi
mkdir -p .rdk
ln -sfn "$ROOT/${LIBS[0]}" .rdk/librdkafka.so.1
LD_LIBRARY_PATH="$ROOT/.rdk" kcat -V 2>&1 | grep -i 'version' | head -n 1
LD_LIBRARY_PATH="$ROOT/.rdk" kcat -V 2>&1 | grep -q 'librdkafka 2\.16' \
    || { echo "kcat did not pick up the wheel's librdkafka via .rdk" >&2; exit 1; }

# ---------------------------------------------------------------------------
# A real S3-compatible server for the remote-storage tests: s3s-fs checks SigV4 and keeps its
# objects on disk across restarts (outage tests). 0.14.1 is the last release for rustc < 1.96.
step "3b/6 s3s-fs (S3 test server) in .tools"
if [[ ! -x "$ROOT/.tools/bin/s3s-fs" ]]; then
    cargo install s3s-fs@0.14.1 --features binary --locked --root "$ROOT/.tools"
fi
export S3S_FS_BIN="$ROOT/.tools/bin/s3s-fs"
"$S3S_FS_BIN" --help >/dev/null

# ---------------------------------------------------------------------------
if [[ $PYTHON_ONLY -eq 0 ]]; then
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        step "4/6 rustup component add rustfmt clippy"
        rustup component add rustfmt clippy
    fi
    step "4/6 cargo fmt --check"
    cargo fmt --all -- --check
    step "4/6 cargo clippy -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
    step "4/6 cargo test --workspace"
    cargo test --workspace
else
    step "4/6 Rust checks skipped (--python-only)"
fi

# ---------------------------------------------------------------------------
if [[ $BUILD -eq 1 ]]; then
    step "5/6 cargo build --release -p shale-broker"
    cargo build --release -p shale-broker
    SHALE_BIN="$ROOT/target/release/shale"
else
    step "5/6 build skipped (--no-build)"
    SHALE_BIN="${SHALE_BIN:-$ROOT/target/release/shale}"
fi
[[ -x "$SHALE_BIN" ]] || { echo "shale binary missing: $SHALE_BIN" >&2; exit 1; }
export SHALE_BIN
echo "SHALE_BIN=$SHALE_BIN"

# ---------------------------------------------------------------------------
# Benchmark harness must not rot: a ~3 s driver smoke run (zero errors, nonzero throughput) against
# a fresh release broker, and the criterion micro-benchmarks compiled (not timed). See docs/benchmarks.md.
step "5b/6 bench smoke run"
cargo build -p shale-bench --bins
BENCH_BIN="$ROOT/target/debug/shale-bench" bench/scripts/smoke.sh

# ---------------------------------------------------------------------------
step "6/6 pytest tests/python"
.venv/bin/pytest -v tests/python ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}

printf '\n==== all steps passed in %ss ====\n' "$((SECONDS - START))"
