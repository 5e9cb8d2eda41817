"""Memory soak: long-polling consumers beside idle partitions must not grow the broker.

The mix that leaked before waits were scoped to their request: one confluent-kafka consumer
assigned all 50 partitions of a topic in which only partition 0 receives ~1,000 msg/s. Every fetch
names all 50 partitions; 49 of them never see an append. The broker's resident memory is sampled
from /proc after a warm-up and must stay flat (the leak grew it by ~0.75 MiB/s).
"""

from __future__ import annotations

import threading
import time

import kafka_helpers as kh

PARTITIONS = 50
RATE = 1000  # records per second to partition 0
WARMUP_S = 10
MEASURE_S = 30
ALLOWED_GROWTH_KIB = 4 * 1024  # allocator noise; the leak grew it ~21 MiB in this window


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def produce_steadily(bootstrap: str, topic: str, stop: threading.Event, sent: list):
    """~RATE records/s to partition 0, one record a millisecond (each its own produce request,
    so each wakes the consumer's fetch), until `stop`."""
    p = kh.ck_producer(bootstrap, **{"linger.ms": 0})
    per_tick, tick = 1, 1.0 / RATE
    next_tick = time.monotonic()
    while not stop.is_set():
        for _ in range(per_tick):
            p.produce(topic, value=b"x" * 100, partition=0)
        sent[0] += per_tick
        p.poll(0)
        next_tick += tick
        pause = next_tick - time.monotonic()
        if pause > 0:
            stop.wait(pause)  # pacing the load generator, not waiting for a condition
    p.flush(30)


def test_long_poll_fetch_beside_idle_partitions_keeps_memory_flat(broker):
    from confluent_kafka import TopicPartition

    topic = "soak"
    kh.ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    consumer = kh.ck_consumer(broker.bootstrap, **{"fetch.wait.max.ms": 500})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])

    stop, sent, received = threading.Event(), [0], [0]
    producer = threading.Thread(target=produce_steadily, args=(broker.bootstrap, topic, stop, sent))
    producer.start()
    samples = []
    try:
        start = time.monotonic()
        baseline = None
        while time.monotonic() - start < WARMUP_S + MEASURE_S:
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                received[0] += 1
            elapsed = time.monotonic() - start
            if elapsed >= WARMUP_S and baseline is None:
                baseline = rss_kib(broker.pid)
            if not samples or elapsed - samples[-1][0] >= 1.0:
                samples.append((elapsed, rss_kib(broker.pid)))
    finally:
        stop.set()
        producer.join(60)
    broker.assert_running()

    # The mix really ran: the consumer kept up with a steady stream on partition 0.
    assert sent[0] >= RATE * (WARMUP_S + MEASURE_S) * 0.8, f"producer sent only {sent[0]}"
    assert received[0] >= sent[0] * 0.8, f"consumer got {received[0]} of {sent[0]}"
    peak_after = max(kib for t, kib in samples if t >= WARMUP_S)
    curve = ", ".join(f"{t:.0f}s={kib // 1024}MiB" for t, kib in samples[::5])
    assert peak_after - baseline <= ALLOWED_GROWTH_KIB, (
        f"broker RSS grew {(peak_after - baseline) / 1024:.1f} MiB after warm-up "
        f"(baseline {baseline / 1024:.1f} MiB); curve: {curve}")
