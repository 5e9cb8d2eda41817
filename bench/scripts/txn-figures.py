#!/usr/bin/env python3
"""Transaction figures of one `shale` node on loopback, with confluent-kafka (the tests' venv).

    .venv/bin/python bench/scripts/txn-figures.py [SHALE_BIN] [OUT.jsonl]

SHALE_BIN defaults to target/release/shale; OUT to bench/results/<UTC time>-transactions.jsonl.
Starts one broker (free loopback port, data in a temp dir, metrics endpoint off) and measures,
with 100-byte values on one-partition topics (a fresh topic per produce run), about 50 s in all:

1. produce, three interleaved rounds: an idempotent producer (enable.idempotence, acks=all,
   linger.ms=5; 200,000 records, timed from the first produce() to the end of flush()) and
   transactional producers (the same plus a transactional.id) committing transactions of
   10,000 and 100 records (200,000 records) and of 1 record (2,000 transactions, at most 60 s),
   timed from the first begin_transaction() to the return of the last commit_transaction().
   Each producer sends one untimed warm-up record (transaction) first; the high watermark
   afterwards must be the records plus one COMMIT marker per transaction;
2. consume, three interleaved rounds: 2,000 transactions of 100 records, one in ten aborted
   (flushed before the abort, so the aborted records are in the log), read from offset 0 with
   assign() (no group commits) by a read_uncommitted and a read_committed consumer, timed from
   assign() to the last expected record; each consumer then reads on to partition EOF and its
   records must be exactly the expected ones (read_committed: the committed ones, in order);
3. latency: a read_committed consumer polls the partition in a thread; the producer sends one
   record per transaction and commits, then waits until the consumer has it; end-to-end is from
   just before produce() to the consumer's receipt (time.monotonic(), same process), 20 warm-up
   transactions then 500 measured;
4. round trips: 300 one-record transactions with librdkafka's protocol debug log on, for the
   round trip of each request (AddPartitionsToTxn, Produce, EndTxn) as the client saw it.

Every result is one JSON line (written to OUT and to stderr); a markdown summary goes to stdout.
Broker and client CPU seconds (from /proc and os.times) are recorded per measurement.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))

import kafka_helpers as kh  # noqa: E402
from conftest import Broker  # noqa: E402

VALUE_SIZE = 100
TOTAL = 200_000
TXN_TIMEOUT_MS = 60_000
SINGLE_TXNS, SINGLE_CAP_S = 2_000, 60.0
LAT_WARMUP, LAT_TXNS = 20, 500
ROUNDS = 3
EOF = -191  # KafkaError._PARTITION_EOF

OUT = None


def emit(line: dict) -> None:
    text = json.dumps(line)
    print(text, file=sys.stderr, flush=True)
    OUT.write(text + "\n")
    OUT.flush()


def pct(sorted_vals: list, p: float) -> float:
    return sorted_vals[min(len(sorted_vals) - 1, int(round(p / 100 * (len(sorted_vals) - 1))))]


class Cpu:
    """Broker (utime+stime of its /proc/<pid>/stat) and this process's CPU seconds."""

    def __init__(self, pid: int):
        self.pid, self.tick = pid, os.sysconf("SC_CLK_TCK")

    def now(self) -> tuple:
        fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        t = os.times()
        return (int(fields[11]) + int(fields[12])) / self.tick, t.user + t.system

    @staticmethod
    def since(start: tuple, end: tuple) -> dict:
        return {"broker_cpu_s": round(end[0] - start[0], 3), "client_cpu_s": round(end[1] - start[1], 3)}


def producer(bootstrap: str, txn_id: str | None):
    conf = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}
    if txn_id:
        conf.update({"transactional.id": txn_id, "transaction.timeout.ms": TXN_TIMEOUT_MS})
    p = kh.ck_producer(bootstrap, **conf)
    if txn_id:
        p.init_transactions(30)
    return p


def send(p, topic: str, value: bytes) -> None:
    while True:
        try:
            p.produce(topic, value=value, partition=0)
            return
        except BufferError:  # local queue full: serve delivery reports and retry
            p.poll(0.005)


def high_watermark(bootstrap: str, topic: str) -> int:
    return kh.ck_watermarks(bootstrap, topic, [0])[0][1]


def produce_run(b: Broker, cpu: Cpu, name: str, txn_size: int | None, rnd: int) -> dict:
    """txn_size None: the idempotent producer; else transactions of txn_size records."""
    topic = f"p-{name}-r{rnd}"
    kh.ck_create_topic(b.bootstrap, topic)
    p = producer(b.bootstrap, f"bench-{name}-r{rnd}" if txn_size else None)
    value = b"v" * VALUE_SIZE
    # Warm-up, untimed: connection, topic metadata, producer id (the idempotent producer gets
    # it on its first send), the first AddPartitionsToTxn of the transactional id.
    if txn_size:
        p.begin_transaction()
    send(p, topic, value)
    if txn_size:
        p.commit_transaction(60)
    assert p.flush(30) == 0
    txns = 0
    c0, t0 = cpu.now(), time.monotonic()
    if txn_size is None:
        for i in range(TOTAL):
            send(p, topic, value)
            if i % 1000 == 0:
                p.poll(0)
        left = p.flush(120)
        assert left == 0, f"{left} records not delivered"
        records = TOTAL
    else:
        limit = SINGLE_TXNS if txn_size == 1 else TOTAL // txn_size
        while txns < limit and (txn_size > 1 or time.monotonic() - t0 < SINGLE_CAP_S):
            p.begin_transaction()
            for i in range(txn_size):
                send(p, topic, value)
                if i % 1000 == 999:
                    p.poll(0)
            p.commit_transaction(60)
            txns += 1
        records = txns * txn_size
    secs = time.monotonic() - t0
    c1 = cpu.now()
    p.flush(10)
    # Every record is in the log, plus one COMMIT marker per transaction.
    hw = high_watermark(b.bootstrap, topic)
    warm = 2 if txn_size else 1
    assert hw == records + txns + warm, f"{name}: high watermark {hw}, expected {records} + {txns} markers + warm-up"
    line = {"scenario": "txn-produce", "label": name, "round": rnd, "txn_size": txn_size, "records": records,
            "transactions": txns, "value_size": VALUE_SIZE, "secs": round(secs, 3),
            "records_per_s": round(records / secs, 1), "mb_per_s": round(records * VALUE_SIZE / secs / 1e6, 2),
            "txns_per_s": round(txns / secs, 1) if txn_size else None, "high_watermark": hw,
            **Cpu.since(c0, c1)}
    emit(line)
    return line


def load_mixed(b: Broker, cpu: Cpu, topic: str) -> tuple:
    """2,000 transactions of 100 records, every tenth aborted after a flush. Returns
    (committed values in order, aborted values)."""
    kh.ck_create_topic(b.bootstrap, topic)
    p = producer(b.bootstrap, "bench-mixed")
    committed, aborted = [], []
    c0, t0 = cpu.now(), time.monotonic()
    txns = TOTAL // 100
    for t in range(txns):
        p.begin_transaction()
        values = [f"{t:06d}-{i:03d}".encode().ljust(VALUE_SIZE, b".") for i in range(100)]
        for v in values:
            send(p, topic, v)
        if t % 10 == 9:
            assert p.flush(60) == 0
            p.abort_transaction(60)
            aborted += values
        else:
            p.commit_transaction(60)
            committed += values
    secs = time.monotonic() - t0
    hw = high_watermark(b.bootstrap, topic)
    assert hw == TOTAL + txns, f"mixed load: high watermark {hw}, expected {TOTAL} + {txns} markers"
    emit({"scenario": "txn-load-mixed", "label": "100/txn, 1 in 10 aborted", "transactions": txns,
          "aborted_transactions": txns // 10, "records": TOTAL, "value_size": VALUE_SIZE,
          "secs": round(secs, 3), "records_per_s": round(TOTAL / secs, 1), "high_watermark": hw,
          **Cpu.since(c0, cpu.now())})
    return committed, aborted


def consume_run(b: Broker, cpu: Cpu, topic: str, isolation: str, expected: list, rnd: int) -> dict:
    from confluent_kafka import TopicPartition
    # Room for the whole partition in librdkafka's local queue: with the defaults (100,000
    # messages) the fetcher pauses at that threshold for fetch.queue.backoff.ms (1 s); a first
    # version of this script with the defaults took ~0.9 s longer per read.
    c = kh.ck_consumer(b.bootstrap, **{"isolation.level": isolation, "queued.min.messages": 1_000_000,
                                       "queued.max.messages.kbytes": 1_048_576})
    # Untimed: the topic's metadata and leader (otherwise assign() waits for librdkafka's next
    # metadata refresh, 0.1-0.7 s here).
    c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    values = []
    c0, t0 = cpu.now(), time.monotonic()
    c.assign([TopicPartition(topic, 0, 0)])
    first = last = None
    done = False
    while not done:
        assert time.monotonic() - t0 < 120, f"{isolation}: no partition EOF after 120 s ({len(values)} records)"
        for m in c.consume(10_000, 0.5):
            if m.error():
                if m.error().code() == EOF:
                    done = True
                    continue
                raise AssertionError(f"{isolation}: {m.error()}")
            values.append(m.value())
        if values and first is None:
            first = time.monotonic()
        if last is None and len(values) >= len(expected):
            # Timed up to the last expected record: partition EOF comes only after one more
            # Fetch that the broker holds for fetch.wait.max.ms (500 ms) with nothing to send.
            last, c1 = time.monotonic(), cpu.now()
    c.close()
    if last is None:
        last, c1 = time.monotonic(), cpu.now()
    secs = last - t0
    ok = values == expected
    line = {"scenario": "txn-consume", "label": isolation, "round": rnd, "records": len(values),
            "expected": len(expected), "content_ok": ok, "value_size": VALUE_SIZE,
            "secs": round(secs, 3), "first_batch_ms": round((first - t0) * 1000, 1),
            "records_per_s": round(len(values) / secs, 1),
            "mb_per_s": round(len(values) * VALUE_SIZE / secs / 1e6, 2), **Cpu.since(c0, c1)}
    emit(line)
    assert ok, f"{isolation}: read {len(values)} records, expected {len(expected)} (or other content)"
    return line


def rtt_run(b: Broker) -> dict:
    """Where a one-record transaction's time goes: the round trip of each request as
    librdkafka's protocol debug log reports it, over 300 transactions (debug logging on, so
    untimed by the produce figures)."""
    import logging
    import re
    import statistics
    rtts: dict = {}

    class Collect(logging.Handler):
        def emit(self, rec):
            m = re.search(r"Received (\w+)Response \(.*rtt ([0-9.]+)ms", rec.getMessage())
            if m:
                rtts.setdefault(m.group(1), []).append(float(m.group(2)))
            if "CONCURRENT_TRANSACTIONS" in rec.getMessage():
                rtts.setdefault("CONCURRENT_TRANSACTIONS", []).append(0.0)

    log = logging.getLogger("txn-figures.rdkafka")
    log.addHandler(Collect())
    log.setLevel(logging.DEBUG)
    topic, n = "rtt", 300
    kh.ck_create_topic(b.bootstrap, topic)
    p = kh.ck_producer(b.bootstrap, **{"transactional.id": "bench-rtt", "transaction.timeout.ms": TXN_TIMEOUT_MS,
                                       "acks": "all", "linger.ms": 5, "debug": "protocol,eos", "logger": log})
    p.init_transactions(30)
    rtts.clear()
    t0 = time.monotonic()
    for _ in range(n):
        p.begin_transaction()
        p.produce(topic, value=b"v" * VALUE_SIZE, partition=0)
        p.commit_transaction(30)
    per_txn = (time.monotonic() - t0) / n * 1000
    reqs = {k: {"count": len(v), "p50_ms": round(statistics.median(v), 3),
                "p90_ms": round(sorted(v)[int(0.9 * (len(v) - 1))], 3)}
            for k, v in sorted(rtts.items()) if k != "CONCURRENT_TRANSACTIONS"}
    line = {"scenario": "txn-rtt", "label": "1 record per transaction, librdkafka debug=protocol,eos",
            "transactions": n, "ms_per_txn": round(per_txn, 3), "requests": reqs,
            "concurrent_transactions_errors": len(rtts.get("CONCURRENT_TRANSACTIONS", []))}
    emit(line)
    return line


def latency_run(b: Broker, cpu: Cpu) -> dict:
    from confluent_kafka import TopicPartition
    topic = "lat"
    kh.ck_create_topic(b.bootstrap, topic)
    c = kh.ck_consumer(b.bootstrap, **{"isolation.level": "read_committed"})
    c.assign([TopicPartition(topic, 0, 0)])
    received: dict = {}
    polling, stop, errors = threading.Event(), threading.Event(), []

    def consume():
        while not stop.is_set():
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                if m.error().code() == EOF:
                    polling.set()
                else:
                    errors.append(str(m.error()))
                continue
            received[int(m.value()[:8])] = time.monotonic()

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    assert polling.wait(30), "the read_committed consumer never reached the end of the empty partition"
    p = producer(b.bootstrap, "bench-latency")
    sent, committed = {}, {}
    c0 = cpu.now()
    for seq in range(LAT_WARMUP + LAT_TXNS):
        p.begin_transaction()
        value = f"{seq:08d}".encode().ljust(VALUE_SIZE, b".")
        t = time.monotonic()
        p.produce(topic, value=value, partition=0)
        p.commit_transaction(30)
        committed[seq] = time.monotonic()
        sent[seq] = t
        deadline = t + 30
        while seq not in received:
            assert time.monotonic() < deadline, f"transaction {seq} not seen by read_committed after 30 s"
            time.sleep(0.0002)
    c1 = cpu.now()
    stop.set()
    th.join(5)
    c.close()
    assert not errors, errors
    seqs = range(LAT_WARMUP, LAT_WARMUP + LAT_TXNS)
    e2e = sorted((received[s] - sent[s]) * 1000 for s in seqs)
    commit = sorted((committed[s] - sent[s]) * 1000 for s in seqs)
    after_commit = sorted((received[s] - committed[s]) * 1000 for s in seqs)

    def stats(v):
        return {"p50_ms": round(pct(v, 50), 3), "p99_ms": round(pct(v, 99), 3), "max_ms": round(v[-1], 3),
                "min_ms": round(v[0], 3)}

    line = {"scenario": "txn-latency", "label": "1 record per transaction, read_committed",
            "transactions": LAT_TXNS, "warmup": LAT_WARMUP, "value_size": VALUE_SIZE,
            "e2e": stats(e2e), "produce_to_commit_return": stats(commit),
            "commit_return_to_receipt": stats(after_commit), **Cpu.since(c0, c1)}
    emit(line)
    return line


def machine(binary: Path) -> dict:
    mem = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    return {"scenario": "machine", "nproc": os.cpu_count(), "mem_total_kib": int(mem), "cpu": cpu,
            "kernel": platform.release(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git": git, "binary": str(binary),
            "binary_mtime": datetime.fromtimestamp(binary.stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "librdkafka": __import__("confluent_kafka").libversion()[0],
            "loadavg_start": open("/proc/loadavg").read().split(" ", 3)[:3]}


def main() -> None:
    global OUT
    binary = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "target" / "release" / "shale").resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "bench" / "results" / f"{stamp}-transactions.jsonl"
    OUT = open(out, "w")
    emit(machine(binary))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        b = Broker(binary, data, Path(tmp), {"shale.metrics.address": ""}, name="txn-bench")
        b.start()
        cpu = Cpu(b.pid)
        try:
            # Three rounds, interleaved: on a shared 2-core machine run order matters, and the
            # fast runs last well under a second.
            prod = []
            for rnd in range(1, ROUNDS + 1):
                prod.append(produce_run(b, cpu, "idempotent", None, rnd))
                for size in (10_000, 100, 1):
                    prod.append(produce_run(b, cpu, f"txn{size}", size, rnd))
            committed, aborted = load_mixed(b, cpu, "mixed")
            all_values = sorted(committed + aborted)  # values sort in log order (txn, index)
            cons = []
            for rnd in range(1, ROUNDS + 1):
                cons += [consume_run(b, cpu, "mixed", "read_uncommitted", all_values, rnd),
                         consume_run(b, cpu, "mixed", "read_committed", committed, rnd)]
            lat = latency_run(b, cpu)
            rtt = rtt_run(b)
        except BaseException:
            print(b.log_tail(40), file=sys.stderr)
            raise
        finally:
            kh.close_all_clients()
            b.teardown()
    emit({"scenario": "machine-end", "loadavg_end": open("/proc/loadavg").read().split(" ", 3)[:3]})
    OUT.close()

    print("| producer | round | records | transactions | records/s | MB/s | transactions/s | broker CPU s | client CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in prod:
        what = "idempotent" if r["txn_size"] is None else f"transactional, {r['txn_size']:,}/txn"
        txps = "-" if r["txns_per_s"] is None else f"{r['txns_per_s']:,.1f}"
        txns = "-" if r["txn_size"] is None else f"{r['transactions']:,}"
        print(f"| {what} | {r['round']} | {r['records']:,} | {txns} | {r['records_per_s']:,.0f} | "
              f"{r['mb_per_s']:.1f} | {txps} | {r['broker_cpu_s']:.2f} | {r['client_cpu_s']:.2f} |")
    print()
    print("| consumer | round | records (expected) | records/s | MB/s | first batch ms | broker CPU s | client CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in cons:
        print(f"| {r['label']} | {r['round']} | {r['records']:,} ({r['expected']:,}) | {r['records_per_s']:,.0f} | "
              f"{r['mb_per_s']:.1f} | {r['first_batch_ms']:.1f} | {r['broker_cpu_s']:.2f} | {r['client_cpu_s']:.2f} |")
    print()
    print("| read_committed end-to-end, 1 record/txn | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    for key, what in (("e2e", "produce() → consumer receipt"),
                      ("produce_to_commit_return", "produce() → commit_transaction() returns"),
                      ("commit_return_to_receipt", "commit returns → consumer receipt")):
        s = lat[key]
        print(f"| {what} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['max_ms']:.2f} |")
    print()
    print(f"librdkafka round trips, 1 record/txn ({rtt['ms_per_txn']:.2f} ms per transaction with debug logging; "
          f"CONCURRENT_TRANSACTIONS: {rtt['concurrent_transactions_errors']}):")
    for k in ("AddPartitionsToTxn", "Produce", "EndTxn"):
        if k in rtt["requests"]:
            r = rtt["requests"][k]
            print(f"  {k}: {r['count']} requests, p50 {r['p50_ms']:.3f} ms, p90 {r['p90_ms']:.3f} ms")
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
