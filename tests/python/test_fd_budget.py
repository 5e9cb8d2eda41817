"""File descriptors are bounded (`shale.log.open.files.max`, by default 75% of the soft
RLIMIT_NOFILE). Under a lowered `ulimit -n` the broker takes partitions until its budget is
full, then refuses CreateTopics / CreatePartitions with POLICY_VIOLATION instead of
half-creating logs; every partition takes produce with several segments each (more segment
files than descriptors), reads back, and comes back after a clean restart and after a crash,
without ever running out of descriptors."""

from __future__ import annotations

import os
import re
import resource
import urllib.request

import pytest

import kafka_helpers as kh
from kafka_helpers import make_record

NOFILE = 512
BUDGET = NOFILE * 75 // 100          # the default: 75% of the soft limit
CAPACITY = BUDGET - max(1, min(BUDGET // 16, 1024))   # minus the headroom for old segments
ROUNDS = 4                           # one batch per partition per round
SEGMENT_BYTES = 1024                 # one ~700-byte batch per segment: ROUNDS segments each
POLICY_VIOLATION = 44


def lowered_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def metric(b, name: str) -> float:
    with urllib.request.urlopen(b.metrics_url, timeout=10) as resp:
        body = resp.read().decode()
    m = re.search(rf"^{name} (\S+)$", body, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def fds(b) -> int:
    return len(os.listdir(f"/proc/{b.pid}/fd"))


def create(bootstrap: str, name: str, partitions: int):
    """CreateTopics for one topic; returns None or the KafkaError."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic
    admin = kh.ck_admin(bootstrap)
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                             request_timeout=60)
    try:
        fs[name].result(timeout=60)
        return None
    except KafkaException as exc:
        return exc.args[0]


def add_partitions(bootstrap: str, name: str, total: int):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewPartitions
    admin = kh.ck_admin(bootstrap)
    fs = admin.create_partitions([NewPartitions(name, total)], request_timeout=60)
    try:
        fs[name].result(timeout=60)
        return None
    except KafkaException as exc:
        return exc.args[0]


def assert_refused(err, what: str):
    assert err is not None, f"{what} was accepted beyond the open-files budget"
    assert err.code() == POLICY_VIOLATION, f"{what}: {err}"
    assert "shale.log.open.files.max" in err.str(), f"{what}: {err.str()}"


def topic_partitions(b, name: str):
    return kh.topic_partitions(b.host, b.port, name)


def read_all(b, topics: dict) -> dict:
    """{topic: {partition: [values]}} read from the beginning of every partition."""
    out = {}
    for t, n in topics.items():
        msgs = kh.ck_consume(b.bootstrap, t, range(n), timeout=180)
        per = {p: [] for p in range(n)}
        for m in sorted(msgs, key=lambda m: (m.partition, m.offset)):
            per[m.partition].append((m.offset, m.value))
        out[t] = per
    return out


def expected(topics: dict) -> dict:
    return {t: {p: [(r, value(t, p, r)) for r in range(ROUNDS)] for p in range(n)}
            for t, n in topics.items()}


def value(topic: str, p: int, r: int) -> bytes:
    return f"{topic}/{p}/{r}/".encode().ljust(600, b"x")


def check_bounded(b):
    assert metric(b, "shale_log_open_files_budget") == BUDGET
    open_files = metric(b, "shale_log_open_files")
    assert open_files <= BUDGET, f"{open_files} log files open, budget {BUDGET}"
    # Sockets, the metadata log and the runtime need a few dozen more.
    assert fds(b) <= BUDGET + 64, f"{fds(b)} descriptors with a log budget of {BUDGET}"


@pytest.mark.timeout(900)
def test_partitions_up_to_the_budget_then_refusal_produce_restart_read_back(broker_factory):
    b = broker_factory({"log.segment.bytes": str(SEGMENT_BYTES)}, start=False)
    b.preexec_fn = lowered_nofile
    b.start()
    assert metric(b, "shale_log_open_files_budget") == BUDGET
    free = CAPACITY - int(metric(b, "shale_log_pinned_files"))
    assert free > 300, f"only {free} partitions free of a capacity of {CAPACITY}"

    # Fill the budget with topics of 100 partitions, then exactly what is left.
    topics = {}
    i = 0
    while free - sum(topics.values()) >= 100:
        assert create(b.bootstrap, f"fd-{i}", 100) is None
        topics[f"fd-{i}"] = 100
        i += 1
    left = free - sum(topics.values())
    assert_refused(create(b.bootstrap, "too-big", left + 1), "a topic one partition too big")
    assert topic_partitions(b, "too-big") is None, "a refused topic reached the metadata"
    if left:
        assert create(b.bootstrap, "the-rest", left) is None
        topics["the-rest"] = left
    assert metric(b, "shale_log_pinned_files") == CAPACITY
    assert_refused(create(b.bootstrap, "one-more", 1), "a topic beyond the budget")
    assert_refused(add_partitions(b.bootstrap, "fd-0", 101), "CreatePartitions beyond the budget")
    assert topic_partitions(b, "fd-0") == 100
    assert topic_partitions(b, "one-more") is None
    dirs = [d.name for d in b.data_dir.iterdir() if d.is_dir()]
    assert sum(1 for d in dirs if not d.startswith("__")) == free, "a refused partition left a log dir"
    check_bounded(b)

    # ROUNDS segments per partition: far more segment files than descriptors.
    producer = kh.ck_producer(b.bootstrap, acks="all", **{"linger.ms": 0})
    for r in range(ROUNDS):
        for t, n in topics.items():
            for p in range(n):
                producer.produce(t, partition=p, value=value(t, p, r))
            producer.poll(0)
        assert producer.flush(120) == 0
    segments = sum(1 for _ in b.data_dir.glob("*/*.log"))
    assert segments >= free * ROUNDS, f"{segments} segments"
    assert segments > 2 * NOFILE
    check_bounded(b)
    want = expected(topics)
    assert read_all(b, topics) == want
    check_bounded(b)

    b.stop()
    b.start()
    check_bounded(b)
    assert read_all(b, topics) == want
    assert_refused(create(b.bootstrap, "after-restart", 1), "a topic beyond the budget after restart")

    # A crash: recovery re-reads every segment above the recovery point within the budget.
    b.kill()
    b.start()
    check_bounded(b)
    assert read_all(b, topics) == want
    text = b.log_text()
    assert "Too many open files" not in text and "out of file descriptors" not in text
    assert "failed to fill whole buffer" not in text
