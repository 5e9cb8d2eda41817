"""Produce and fetch with real clients: confluent-kafka (librdkafka 2.16) and
kafka-python (its own protocol code). Records carry keys, null keys/values,
binary values, duplicate header keys and null header values; everything read
back is compared field by field, including offsets and timestamps."""

from __future__ import annotations

import pytest

import kafka_helpers as kh
from kafka_helpers import make_record

COMPRESSIONS = ["none", "gzip", "snappy", "lz4", "zstd"]


def produce_generated(bootstrap, topic, n, partitions, start=0, **producer_conf):
    gens = [make_record(i) for i in range(start, start + n)]
    p = kh.ck_producer(bootstrap, **producer_conf)
    res = kh.ck_produce(p, topic, gens, partition_of=lambda i: i % partitions)
    assert not res.errors, f"delivery errors (first 5): {res.errors[:5]}"
    by_part: dict = {}
    for g in gens:
        by_part.setdefault(g.i % partitions, []).append(g)
    return gens, by_part, res.offsets


def test_100k_records_both_consumers(broker):
    topic = "big"
    parts = 3
    kh.ck_create_topic(broker.bootstrap, topic, parts)
    _, by_part, offsets = produce_generated(broker.bootstrap, topic, 100_000, parts, acks="all",
                                            **{"compression.type": "lz4"})
    # Delivery offsets are dense per partition, starting at 0.
    for p, lst in by_part.items():
        assert sorted(offsets[g.i][1] for g in lst) == list(range(len(lst)))
    wm = kh.ck_watermarks(broker.bootstrap, topic, range(parts))
    assert wm == {p: (0, len(by_part[p])) for p in range(parts)}

    ck = kh.ck_consume(broker.bootstrap, topic, range(parts))
    kh.assert_offsets_contiguous(ck, what="confluent-kafka")
    kh.assert_matches(ck, by_part, offsets, what="confluent-kafka")

    kp = kh.kp_consume(broker.bootstrap, topic, range(parts))
    kh.assert_offsets_contiguous(kp, what="kafka-python")
    kh.assert_matches(kp, by_part, offsets, what="kafka-python")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_compression_roundtrip(broker, compression):
    topic = f"c-{compression}"
    kh.ck_create_topic(broker.bootstrap, topic, 2)
    _, by_part, offsets = produce_generated(broker.bootstrap, topic, 6000, 2,
                                            **{"compression.type": compression, "linger.ms": 20})
    ck = kh.ck_consume(broker.bootstrap, topic, range(2))
    kh.assert_matches(ck, by_part, offsets, what=f"confluent-kafka/{compression}")
    kp = kh.kp_consume(broker.bootstrap, topic, range(2))
    kh.assert_matches(kp, by_part, offsets, what=f"kafka-python/{compression}")
    # The batches really are compressed on disk (librdkafka silently sends uncompressed
    # batches to a broker that does not advertise Produce from version 0).
    # A batch that would not shrink may legitimately go uncompressed.
    broker.stop()
    codecs = broker.segment_codecs(topic, 0)
    assert compression in codecs and codecs <= {compression, "none"}, codecs


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks(broker, acks):
    topic = f"acks-{acks}"
    kh.ck_create_topic(broker.bootstrap, topic, 2)
    n = 5000
    gens = [make_record(i) for i in range(n)]
    p = kh.ck_producer(broker.bootstrap, acks=acks)
    res = kh.ck_produce(p, topic, gens, partition_of=lambda i: i % 2)
    assert not res.errors, res.errors[:5]
    by_part = {q: [g for g in gens if g.i % 2 == q] for q in range(2)}
    if acks == "0":
        # No offsets come back with acks=0; wait for the broker to have everything.
        kh.wait_until(lambda: kh.ck_watermarks(broker.bootstrap, topic, range(2))
                      == {q: (0, len(by_part[q])) for q in range(2)},
                      what="high watermarks after acks=0 produce")
        offsets = None
    else:
        offsets = res.offsets
    ck = kh.ck_consume(broker.bootstrap, topic, range(2))
    kh.assert_offsets_contiguous(ck)
    kh.assert_matches(ck, by_part, offsets, what=f"acks={acks}")


def test_idempotent_producer(broker):
    topic = "idem"
    kh.ck_create_topic(broker.bootstrap, topic, 3)
    _, by_part, offsets = produce_generated(broker.bootstrap, topic, 20_000, 3,
                                            **{"enable.idempotence": True, "compression.type": "zstd"})
    ck = kh.ck_consume(broker.bootstrap, topic, range(3))
    kh.assert_offsets_contiguous(ck)
    kh.assert_matches(ck, by_part, offsets, what="idempotent")


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_consume_from_middle_offset(broker, compression):
    topic = f"mid-{compression}"
    kh.ck_create_topic(broker.bootstrap, topic, 1)
    _, by_part, offsets = produce_generated(broker.bootstrap, topic, 3000, 1,
                                            **{"compression.type": compression, "linger.ms": 50})
    mid = 1234  # almost certainly inside a multi-record batch
    expected = {0: by_part[0][mid:]}
    ck = kh.ck_consume(broker.bootstrap, topic, [0], start={0: mid})
    assert ck and ck[0].offset == mid, f"first offset {ck[0].offset if ck else None}, expected {mid}"
    kh.assert_matches(ck, expected, offsets, what="confluent-kafka from middle")
    kp = kh.kp_consume(broker.bootstrap, topic, [0], start={0: mid})
    assert kp and kp[0].offset == mid
    kh.assert_matches(kp, expected, offsets, what="kafka-python from middle")


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_offsets_for_times(broker, compression):
    from confluent_kafka import TopicPartition as CkTP
    from kafka import TopicPartition as KpTP

    topic = f"times-{compression}"
    kh.ck_create_topic(broker.bootstrap, topic, 1)
    n = 2000
    gens = [make_record(i, ts_step=10) for i in range(n)]  # timestamps BASE + 10*i
    p = kh.ck_producer(broker.bootstrap, **{"compression.type": compression, "linger.ms": 50})
    res = kh.ck_produce(p, topic, gens, partition_of=lambda i: 0)
    assert not res.errors
    base = kh.BASE_TS
    cases = {  # query timestamp -> expected offset
        base - 1000: 0,
        base: 0,
        base + 5: 1,
        base + 10 * 777: 777,
        base + 10 * 777 + 1: 778,
        base + 10 * (n - 1): n - 1,
    }
    beyond = base + 10 * n + 1

    c = kh.ck_consumer(broker.bootstrap)
    try:
        for ts, want in cases.items():
            got = c.offsets_for_times([CkTP(topic, 0, ts)], timeout=10)[0]
            assert got.error is None and got.offset == want, f"confluent ts={ts}: {got}, want {want}"
        got = c.offsets_for_times([CkTP(topic, 0, beyond)], timeout=10)[0]
        assert got.offset == -1, f"confluent ts beyond the end: {got}, want offset -1 (OFFSET_END)"
    finally:
        c.close()

    kc = kh.kp_consumer(broker.bootstrap)
    try:
        tp = KpTP(topic, 0)
        for ts, want in cases.items():
            got = kc.offsets_for_times({tp: ts})[tp]
            assert got is not None and got.offset == want, f"kafka-python ts={ts}: {got}, want {want}"
            assert got.timestamp == base + 10 * want, f"kafka-python ts={ts}: timestamp {got.timestamp}"
        assert kc.offsets_for_times({tp: beyond})[tp] is None
        assert kc.beginning_offsets([tp])[tp] == 0
        assert kc.end_offsets([tp])[tp] == n
    finally:
        kc.close()


def test_tiny_fetch_sizes_still_progress(broker):
    topic = "tiny-fetch"
    kh.ck_create_topic(broker.bootstrap, topic, 1)
    n = 300
    gens = [make_record(i, value_size=1000) for i in range(n)]
    p = kh.ck_producer(broker.bootstrap, **{"linger.ms": 50, "batch.size": 20000})
    res = kh.ck_produce(p, topic, gens, partition_of=lambda i: 0)
    assert not res.errors
    expected = {0: gens}
    kp = kh.kp_consume(broker.bootstrap, topic, [0], timeout=120,
                       max_partition_fetch_bytes=1, fetch_max_bytes=1)
    kh.assert_matches(kp, expected, res.offsets, what="kafka-python tiny fetch")
    ck = kh.ck_consume(broker.bootstrap, topic, [0], timeout=120,
                       **{"fetch.max.bytes": 1000, "message.max.bytes": 1000,
                          "max.partition.fetch.bytes": 1, "fetch.min.bytes": 1})
    kh.assert_matches(ck, expected, res.offsets, what="confluent-kafka tiny fetch")


@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_producer_codecs(broker, compression):
    topic = f"kp-{compression or 'none'}"
    kh.ck_create_topic(broker.bootstrap, topic, 2)
    n = 3000
    gens = [make_record(i, null_header_values=False, all_null=False) for i in range(n)]
    prod = kh.kp_producer(broker.bootstrap, compression_type=compression, acks="all",
                          enable_idempotence=False)
    try:
        futs = [(g, prod.send(topic, key=g.key, value=g.value, partition=g.i % 2,
                              timestamp_ms=g.timestamp, headers=list(g.headers)))
                for g in gens]
        prod.flush(timeout=60)
        offsets = {}
        for g, f in futs:
            md = f.get(timeout=30)
            offsets[g.i] = (md.partition, md.offset)
    finally:
        prod.close(timeout=10)
    by_part = {q: [g for g in gens if g.i % 2 == q] for q in range(2)}
    ck = kh.ck_consume(broker.bootstrap, topic, range(2))
    kh.assert_matches(ck, by_part, offsets, what=f"kafka-python producer {compression}")
    kp = kh.kp_consume(broker.bootstrap, topic, range(2))
    kh.assert_matches(kp, by_part, offsets, what=f"kafka-python roundtrip {compression}")
    broker.stop()
    codecs = broker.segment_codecs(topic, 1)
    # kafka-python sends a batch uncompressed when compressing would not make it smaller
    # (DefaultRecordBatchBuilder._maybe_compress), so a small trailing batch may say "none".
    # The broker must keep each batch's codec as sent: the producer's codec must be there.
    assert (compression or "none") in codecs and codecs <= {compression or "none", "none"}, codecs


def test_kafka_python_idempotent_producer(broker):
    topic = "kp-idem"
    kh.ck_create_topic(broker.bootstrap, topic, 1)
    gens = [make_record(i, null_header_values=False, all_null=False) for i in range(2000)]
    prod = kh.kp_producer(broker.bootstrap, enable_idempotence=True, compression_type="lz4")
    try:
        futs = [(g, prod.send(topic, key=g.key, value=g.value, partition=0,
                              timestamp_ms=g.timestamp, headers=list(g.headers))) for g in gens]
        prod.flush(timeout=60)
        offsets = {g.i: (f.get(timeout=30).partition, f.get(timeout=30).offset) for g, f in futs}
    finally:
        prod.close(timeout=10)
    ck = kh.ck_consume(broker.bootstrap, topic, [0])
    kh.assert_matches(ck, {0: gens}, offsets, what="kafka-python idempotent")
