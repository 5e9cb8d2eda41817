"""Transactions across crashes, with real clients.

* The coordinator's process aborts (`shale.debug.crash.file`, a real crash at an exact step)
  after a commit is decided and replicated but before any marker, between the markers of two
  partitions, and after every marker but before the Complete record, on a single node and on a
  three-node cluster; on the cluster also a partition leader right after it appended a marker
  another broker's coordinator sent. Each time the transaction ends committed everywhere, each
  record exactly once, and the producer carries on.
* A consume-transform-produce service (read topic A, write topic B and its offsets in one
  transaction, confluent-kafka) is SIGKILLed and restarted again and again: topic B holds every
  input exactly once, in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import kafka_helpers as kh
from test_transactions import read_all, txn_producer

CTP_KILLS = int(os.environ.get("SHALE_TXN_KILLS", "20"))
POINTS = ["txn.prepared", "txn.between-markers", "txn.markers-written"]


def commit_in_background(p):
    """Runs commit_transaction in a thread; returns (thread, errors)."""
    errors: list = []

    def run():
        try:
            p.commit_transaction(60)
        except Exception as e:  # noqa: BLE001 - judged by the caller after the restart
            errors.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def finish_commit(p, thread, errors):
    """Waits for the background commit; a retriable failure (the coordinator died under it) is
    retried, as an application would."""
    thread.join(90)
    assert not thread.is_alive(), "commit_transaction never returned"
    if errors:
        err = errors[0].args[0]
        assert err.retriable() and not err.fatal(), err
        p.commit_transaction(60)


def arm(crash_file, point: str):
    """The next process to reach `point` aborts (`shale.debug.crash.file`)."""
    crash_file.write_text(point)


@pytest.mark.parametrize("point", POINTS)
def test_single_node_coordinator_crash_mid_commit(broker_factory, tmp_path, point):
    crash_file = tmp_path / "crash-point"
    b = broker_factory(overrides={"shale.debug.crash.file": str(crash_file)})
    kh.ck_create_topic(b.bootstrap, "crash", partitions=3)
    p = txn_producer(b.bootstrap, f"tx-{point}", **{"transaction.timeout.ms": 120000})
    p.begin_transaction()
    for i in range(9):
        p.produce("crash", value=f"first-{i}".encode(), partition=i % 3)
    assert p.flush(30) == 0
    arm(crash_file, point)
    thread, errors = commit_in_background(p)
    b.proc.wait(timeout=30)
    assert b.proc.returncode == -signal.SIGABRT, f"expected the crash point, got {b.proc.returncode}"
    assert not crash_file.exists()
    b.expected_dead = True
    b.start()
    finish_commit(p, thread, errors)
    p.begin_transaction()
    for i in range(3):
        p.produce("crash", value=f"second-{i}".encode(), partition=i)
    p.commit_transaction(60)
    got = read_all(b.bootstrap, "crash", 3, "read_committed", 12)
    values = sorted(v for _, _, v in got)
    assert values == sorted([f"first-{i}" for i in range(9)] + [f"second-{i}" for i in range(3)])


CTP_APP = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer, Producer, TopicPartition
    bootstrap = sys.argv[1]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "ctp", "enable.auto.commit": False,
                  "group.instance.id": "ctp-1",
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                  "broker.address.family": "v4", "session.timeout.ms": 6000})
    c.subscribe(["in"])
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "ctp-app",
                  "broker.address.family": "v4", "linger.ms": 5})
    p.init_transactions(60)
    print("ready", flush=True)
    while True:
        msgs = [m for m in c.consume(50, 0.5) if m.error() is None]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce("out", value=b"out-" + m.value(), partition=0)
        offsets = [TopicPartition("in", 0, msgs[-1].offset() + 1)]
        p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 60)
        p.commit_transaction(60)
""")


def test_consume_transform_produce_survives_being_killed(broker_factory, tmp_path):
    """The service is SIGKILLed at random points of its loop (mid-transaction, mid-commit) and
    restarted; its new instance fences the old one and resumes from the committed offsets."""
    import random
    b = broker_factory(overrides={"group.initial.rebalance.delay.ms": "0"})
    kh.ck_create_topic(b.bootstrap, "in", partitions=1)
    kh.ck_create_topic(b.bootstrap, "out", partitions=1)
    total = 3000
    src = kh.ck_producer(b.bootstrap)
    for i in range(total):
        src.produce("in", value=str(i).encode(), partition=0)
    assert src.flush(30) == 0
    app = tmp_path / "ctp_app.py"
    app.write_text(CTP_APP)
    rng = random.Random(12)
    log = (tmp_path / "ctp.log").open("w")

    def launch():
        proc = subprocess.Popen([sys.executable, str(app), b.bootstrap], stdout=subprocess.PIPE,
                                stderr=log, text=True)
        assert proc.stdout.readline().strip() == "ready", "the service did not start"
        return proc

    def committed_out() -> int:
        return len(read_all(b.bootstrap, "out", 1, "read_committed", 0, timeout=5))

    for _ in range(CTP_KILLS):
        proc = launch()
        time.sleep(rng.uniform(0.2, 1.2))
        proc.kill()
        proc.wait(10)
    proc = launch()
    kh.wait_until(lambda: committed_out() >= total, 120, what="every input transformed")
    proc.kill()
    proc.wait(10)
    out = [v for _, _, v in read_all(b.bootstrap, "out", 1, "read_committed", total)]
    assert out == [f"out-{i}" for i in range(total)], (
        f"{len(out)} outputs, {len(set(out))} distinct")


CLUSTER_POINTS = ["txn.prepared", "txn.between-markers", "txn.markers-written",
                  "txn.marker-received"]


def test_cluster_crashes_mid_commit(shale_bin, tmp_path):
    """Three nodes share one crash file: for each point, the one process that reaches it first
    (the coordinator, or for `txn.marker-received` a partition leader) aborts; the other two
    complete the commit; the crashed node comes back before the next round."""
    from test_cluster import live_brokers, stop_all
    from test_replication import EXTRA, create, start_cluster
    crash_file = tmp_path / "crash-point"
    extra = EXTRA + f"shale.debug.crash.file={crash_file}\n"
    nodes = start_cluster(shale_bin, tmp_path, extra)
    try:
        create(nodes[0], "ct", 3)
        everyone = ",".join(n.bootstrap for n in nodes)
        p = txn_producer(everyone, "tx-cluster", **{"transaction.timeout.ms": 120000})
        expected = []
        for point in CLUSTER_POINTS:
            p.begin_transaction()
            values = [f"{point}-{i}" for i in range(9)]
            for i, v in enumerate(values):
                p.produce("ct", value=v.encode(), partition=i % 3)
            assert p.flush(30) == 0
            arm(crash_file, point)
            thread, errors = commit_in_background(p)
            kh.wait_until(lambda: any(not n.alive() for n in nodes), 30,
                          what=f"a node crashing at {point}")
            dead = next(n for n in nodes if not n.alive())
            assert dead.proc.returncode == -signal.SIGABRT, dead.proc.returncode
            finish_commit(p, thread, errors)
            expected += values
            dead.start()
            alive = next(n for n in nodes if n is not dead)
            kh.wait_until(lambda: live_brokers(alive) == {1, 2, 3}, 60,
                          what=f"node {dead.node_id} back")
        got = read_all(everyone, "ct", 3, "read_committed", len(expected), timeout=60)
        assert sorted(v for _, _, v in got) == sorted(expected)
    finally:
        kh.close_all_clients()
        stop_all(nodes)
