"""Transactions with real clients on a single node: confluent-kafka (librdkafka 2.16) and
kafka-python transactional producers; read_committed and read_uncommitted consumers see exactly
what Kafka shows them (committed records in order, aborted never, an open transaction blocks
read_committed at the last stable offset); zombie fencing; send_offsets_to_transaction; the
coordinator's state across a restart; kafka-python's read_committed consumer too."""

from __future__ import annotations

import time

import pytest

import kafka_helpers as kh

TXN = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"}


def txn_producer(bootstrap: str, txn_id: str, **extra):
    conf = {"transactional.id": txn_id, "transaction.timeout.ms": 60000}
    conf.update(extra)
    p = kh.ck_producer(bootstrap, **conf)
    p.init_transactions(30)
    return p


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str, expect: int,
             timeout: float = 30) -> list:
    """Every (partition, key, value) a consumer with `isolation` reads, once it has `expect`
    records and reached the end of each partition (for read_committed: the LSO)."""
    from confluent_kafka import TopicPartition
    c = kh.ck_consumer(bootstrap, **{"isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, eof = [], set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (len(out) < expect or len(eof) < partitions):
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            raise AssertionError(m.error())
        eof.discard(m.partition())
        out.append((m.partition(), (m.key() or b"").decode(), m.value().decode()))
    c.close()
    return out


def by_partition(records: list) -> dict:
    d: dict = {}
    for p, k, v in records:
        d.setdefault(p, []).append(v)
    return d


def test_commit_and_abort_visibility(broker_factory):
    b = broker_factory(overrides=TXN)
    kh.ck_create_topic(b.bootstrap, "txa", partitions=3)
    kh.ck_create_topic(b.bootstrap, "txb", partitions=1)
    p = txn_producer(b.bootstrap, "tx-vis")
    committed = []
    for round_ in range(6):
        p.begin_transaction()
        for i in range(30):
            v = f"r{round_}-{i}"
            p.produce("txa", key=v.encode(), value=v.encode(), partition=i % 3)
            p.produce("txb", key=v.encode(), value=v.encode(), partition=0)
        assert p.flush(30) == 0  # aborted records reach the log too (abort purges the queue)
        if round_ % 2 == 0:
            p.commit_transaction(30)
            committed += [f"r{round_}-{i}" for i in range(30)]
        else:
            p.abort_transaction(30)
    got = read_all(b.bootstrap, "txa", 3, "read_committed", len(committed))
    assert sorted(v for _, _, v in got) == sorted(committed)
    for part, values in by_partition(got).items():
        expected = [v for v in committed if int(v.split("-")[1]) % 3 == part]
        assert values == expected, f"partition {part} out of order"
    got_b = read_all(b.bootstrap, "txb", 1, "read_committed", len(committed))
    assert [v for _, _, v in got_b] == committed
    everything = read_all(b.bootstrap, "txb", 1, "read_uncommitted", 180)
    assert len(everything) == 180, "read_uncommitted sees aborted records too"


def test_open_transaction_blocks_read_committed_at_the_lso(broker_factory):
    from confluent_kafka import TopicPartition
    b = broker_factory(overrides=TXN)
    kh.ck_create_topic(b.bootstrap, "lso", partitions=1)
    plain = kh.ck_producer(b.bootstrap)
    for i in range(5):
        plain.produce("lso", key=b"k", value=f"before-{i}".encode(), partition=0)
    assert plain.flush(30) == 0
    p = txn_producer(b.bootstrap, "tx-lso")
    p.begin_transaction()
    for i in range(5):
        p.produce("lso", key=b"k", value=f"txn-{i}".encode(), partition=0)
    assert p.flush(30) == 0
    for i in range(5):
        plain.produce("lso", key=b"k", value=f"after-{i}".encode(), partition=0)
    assert plain.flush(30) == 0

    c = kh.ck_consumer(b.bootstrap, **{"isolation.level": "read_committed"})
    c.assign([TopicPartition("lso", 0, 0)])
    values = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            values.append(m.value().decode())
    assert values == [f"before-{i}" for i in range(5)], "read_committed stops at the LSO"
    # librdkafka asks ListOffsets with the consumer's isolation level: the LSO, not the end.
    lo, hi = c.get_watermark_offsets(TopicPartition("lso", 0), timeout=10, cached=False)
    assert (lo, hi) == (0, 5)
    p.commit_transaction(30)
    deadline = time.monotonic() + 20
    while len(values) < 15 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            values.append(m.value().decode())
    assert values == ([f"before-{i}" for i in range(5)] + [f"txn-{i}" for i in range(5)]
                      + [f"after-{i}" for i in range(5)])
    c.close()


def test_zombie_is_fenced(broker_factory):
    from confluent_kafka import KafkaException
    b = broker_factory(overrides=TXN)
    kh.ck_create_topic(b.bootstrap, "zombie", partitions=1)
    old = txn_producer(b.bootstrap, "tx-zombie")
    old.begin_transaction()
    old.produce("zombie", value=b"from-old", partition=0)
    assert old.flush(30) == 0
    new = txn_producer(b.bootstrap, "tx-zombie")  # aborts the old one's open transaction
    new.begin_transaction()
    new.produce("zombie", value=b"from-new", partition=0)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        old.produce("zombie", value=b"late", partition=0)
        old.commit_transaction(30)
    err = e.value.args[0]
    assert err.fatal() or "fenced" in err.str().lower(), err
    got = read_all(b.bootstrap, "zombie", 1, "read_committed", 1)
    assert [v for _, _, v in got] == ["from-new"]


def test_consume_transform_produce_offsets_commit_with_the_transaction(broker_factory):
    from confluent_kafka import TopicPartition
    b = broker_factory(overrides={**TXN, "group.initial.rebalance.delay.ms": "0"})
    kh.ck_create_topic(b.bootstrap, "ctp-in", partitions=1)
    kh.ck_create_topic(b.bootstrap, "ctp-out", partitions=1)
    src = kh.ck_producer(b.bootstrap)
    for i in range(20):
        src.produce("ctp-in", value=str(i).encode(), partition=0)
    assert src.flush(30) == 0
    group = "ctp-group"
    c = kh.ck_consumer(b.bootstrap, **{"group.id": group, "isolation.level": "read_committed",
                                        "enable.partition.eof": False})
    c.subscribe(["ctp-in"])
    p = txn_producer(b.bootstrap, "tx-ctp")
    done = 0
    deadline = time.monotonic() + 30
    while done < 20 and time.monotonic() < deadline:
        msgs = [m for m in c.consume(10, 0.5) if not m.error()]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce("ctp-out", value=b"out-" + m.value(), partition=0)
        pos = [TopicPartition("ctp-in", 0, msgs[-1].offset() + 1)]
        p.send_offsets_to_transaction(pos, c.consumer_group_metadata(), 30)
        # The first batch is aborted: its offsets must not stick, its output must not show.
        if done == 0:
            p.abort_transaction(30)
            c.seek(TopicPartition("ctp-in", 0, msgs[0].offset()))
            done = -1
            continue
        p.commit_transaction(30)
        done = msgs[-1].offset() + 1
    assert done == 20
    committed = c.committed([TopicPartition("ctp-in", 0)], timeout=10)
    assert committed[0].offset == 20
    c.close()
    out = read_all(b.bootstrap, "ctp-out", 1, "read_committed", 20)
    assert [v for _, _, v in out] == [f"out-{i}" for i in range(20)]


def test_coordinator_state_survives_a_restart_and_kafka_python_reads_committed(broker_factory):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    b = broker_factory(overrides=TXN)
    kh.ck_create_topic(b.bootstrap, "kp", partitions=2)
    p = txn_producer(b.bootstrap, "tx-restart")
    p.begin_transaction()
    for i in range(10):
        p.produce("kp", value=f"c{i}".encode(), partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(10):
        p.produce("kp", value=f"a{i}".encode(), partition=i % 2)
    p.abort_transaction(30)
    b.restart()
    # kafka-python's transactional producer: the id's epoch moved on across the restart.
    kp = KafkaProducer(bootstrap_servers=b.bootstrap, transactional_id="tx-kp")
    kp.init_transactions()
    kp.begin_transaction()
    for i in range(4):
        kp.send("kp", value=f"k{i}".encode(), partition=i % 2)
    kp.commit_transaction()
    kp.close()
    again = txn_producer(b.bootstrap, "tx-restart")
    again.begin_transaction()
    again.produce("kp", value=b"after-restart", partition=0)
    again.commit_transaction(30)
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, isolation_level="read_committed",
                      auto_offset_reset="earliest", consumer_timeout_ms=3000)
    c.assign([TopicPartition("kp", 0), TopicPartition("kp", 1)])
    values = sorted(m.value.decode() for m in c)
    c.close()
    expected = sorted([f"c{i}" for i in range(10)] + [f"k{i}" for i in range(4)] + ["after-restart"])
    assert values == expected


def test_read_committed_from_the_remote_tier(s3_server, broker_factory):
    """Transactions tiered to a real S3 server (s3s-fs): each remote segment carries its
    transaction index, and a read_committed consumer reading the tiered offsets gets the
    aborted transactions from it (none of the aborted records shows)."""
    from test_tiering import tier_config, tiered_broker, wait_tiered
    b = tiered_broker(s3_server, broker_factory, bucket="txn", extra=TXN)
    kh.ck_create_topic(b.bootstrap, "cold", partitions=1, config=tier_config(segment_bytes=4096))
    p = txn_producer(b.bootstrap, "tx-cold")
    committed = []
    for round_ in range(12):
        p.begin_transaction()
        values = [f"r{round_}-{i}-" + "x" * 200 for i in range(10)]
        for v in values:
            p.produce("cold", value=v.encode(), partition=0)
        assert p.flush(30) == 0
        if round_ % 3 == 1:
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
            committed += values
    o = wait_tiered(b, "cold", min_local=60)
    assert o["start"] == 0
    got = read_all(b.bootstrap, "cold", 1, "read_committed", len(committed))
    assert [v for _, _, v in got] == committed
    assert len(read_all(b.bootstrap, "cold", 1, "read_uncommitted", 120)) == 120
