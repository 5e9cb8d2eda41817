"""Crash endurance: SIGKILL and restart the broker again and again under an idempotent acks=all
producer while a consumer reads concurrently.

Every acknowledged record must be in the log exactly once, at the offset it was acknowledged
with; no record may appear twice (idempotence across restarts: producer state is rebuilt from the
log and its snapshots); and no offset may ever be reused for another record (what the concurrent
consumer saw at an offset before a crash is what the log holds there at the end).

CI runs KILL_CYCLES=10 (the default); the 100-cycle figure in docs/benchmarks.md comes from
`KILL_CYCLES=100 scripts/test.sh --no-build -- -k kill_cycles`.
"""

from __future__ import annotations

import os
import threading
import time

import kafka_helpers as kh

CYCLES = int(os.environ.get("KILL_CYCLES", "10"))
PARTITIONS = 2
ACKS_PER_CYCLE = 1500
SEGMENT_BYTES = 256 * 1024  # rolls (and producer snapshots) inside the cycles


def key_of(i: int) -> bytes:
    return f"key-{i}".encode()


def value_of(i: int) -> bytes:
    return (f"value-{i}-" + "x" * (50 + i % 200)).encode()


class Producing(threading.Thread):
    """Idempotent acks=all producer; records what was acknowledged (i -> (partition, offset))."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.lock = threading.Lock()
        self.acked: dict = {}
        self.failed: list = []
        self.stop = threading.Event()
        self.error: list = []

    def run(self):
        try:
            p = kh.ck_producer(self.bootstrap, acks="all", **{
                "enable.idempotence": True, "message.timeout.ms": 120000, "linger.ms": 2,
                "reconnect.backoff.max.ms": 500, "queue.buffering.max.messages": 20000,
                "batch.size": 64 * 1024})
            i = 0
            while not self.stop.is_set():
                def cb(err, msg, i=i):
                    with self.lock:
                        if err is None:
                            self.acked[i] = (msg.partition(), msg.offset())
                        else:
                            self.failed.append((i, str(err)))
                try:
                    p.produce(self.topic, partition=i % PARTITIONS, key=key_of(i), value=value_of(i),
                              on_delivery=cb)
                    i += 1
                except BufferError:
                    p.poll(0.05)
                p.poll(0)
            remaining = p.flush(120)
            if remaining:
                self.error.append(f"{remaining} records still unacknowledged after flush")
        except Exception as exc:  # noqa: BLE001 - surfaced by the main thread
            self.error.append(exc)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


class Consuming(threading.Thread):
    """Reads both partitions from the beginning through every crash; remembers (p, offset) -> key
    and flags any offset that ever shows a different record."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.seen: dict = {}
        self.reused: list = []
        self.stop = threading.Event()
        self.error: list = []

    def run(self):
        from confluent_kafka import TopicPartition
        try:
            c = kh.ck_consumer(self.bootstrap, **{"reconnect.backoff.max.ms": 500})
            c.assign([TopicPartition(self.topic, p, 0) for p in range(PARTITIONS)])
            while not self.stop.is_set():
                m = c.poll(0.2)
                if m is None or m.error() is not None:
                    continue
                pos = (m.partition(), m.offset())
                before = self.seen.setdefault(pos, m.key())
                if before != m.key():
                    self.reused.append((pos, before, m.key()))
        except Exception as exc:  # noqa: BLE001 - surfaced by the main thread
            self.error.append(exc)


def test_kill_restart_cycles_lose_and_duplicate_nothing(broker_factory):
    b = broker_factory({"log.segment.bytes": str(SEGMENT_BYTES)})
    topic = "cycles"
    kh.ck_create_topic(b.bootstrap, topic, PARTITIONS)
    producer, consumer = Producing(b.bootstrap, topic), Consuming(b.bootstrap, topic)
    producer.start()
    consumer.start()
    started = time.monotonic()
    try:
        for cycle in range(CYCLES):
            target = producer.count() + ACKS_PER_CYCLE
            kh.wait_until(lambda: producer.count() >= target or producer.error or producer.failed,
                          timeout=120,
                          what=f"{ACKS_PER_CYCLE} more acknowledged records in cycle {cycle}")
            assert not producer.error, producer.error
            assert not producer.failed, producer.failed[:3]
            b.kill()
            b.start()
        target = producer.count() + ACKS_PER_CYCLE
        kh.wait_until(lambda: producer.count() >= target or producer.error or producer.failed,
                      timeout=120, what="records acknowledged after the last restart")
    finally:
        producer.stop.set()
        producer.join(180)
        if producer.is_alive() or producer.error or producer.failed:
            consumer.stop.set()  # the clients are closed at teardown: stop polling first
            consumer.join(30)
    assert not producer.is_alive(), "producer did not finish"
    assert not producer.error, producer.error
    assert not producer.failed, f"{len(producer.failed)} deliveries failed, e.g. {producer.failed[:3]}"
    elapsed = time.monotonic() - started

    with producer.lock:
        acked = dict(producer.acked)
    wm = kh.ck_watermarks(b.bootstrap, topic, range(PARTITIONS))
    msgs = kh.ck_consume(b.bootstrap, topic, range(PARTITIONS))
    consumer.stop.set()
    consumer.join(30)
    assert not consumer.error, consumer.error
    kh.assert_offsets_contiguous(msgs, what=f"after {CYCLES} kill cycles")
    for p in range(PARTITIONS):
        assert wm[p][1] == len([m for m in msgs if m.partition == p])

    by_pos = {(m.partition, m.offset): m for m in msgs}
    keys = [m.key for m in msgs]
    duplicated = len(keys) - len(set(keys))
    assert duplicated == 0, f"{duplicated} records appear more than once"
    lost = [(i, pos) for i, pos in acked.items() if pos not in by_pos]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    for i, pos in acked.items():
        m = by_pos[pos]
        assert (m.key, m.value) == (key_of(i), value_of(i)), f"record {i} is not at its offset {pos}"
    assert not consumer.reused, f"offsets reused: {consumer.reused[:5]}"
    changed = [pos for pos, k in consumer.seen.items() if pos in by_pos and by_pos[pos].key != k]
    vanished = [pos for pos in consumer.seen if pos not in by_pos]
    assert not changed and not vanished, f"consumed then rewritten: {changed[:5]} vanished: {vanished[:5]}"
    assert len(consumer.seen) > 0
    print(f"{CYCLES} kill cycles in {elapsed:.1f}s: {len(acked)} acknowledged, {len(msgs)} in the log, "
          f"{len(consumer.seen)} consumed concurrently, 0 lost, 0 duplicated, 0 offsets reused")
