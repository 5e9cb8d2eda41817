"""Topic `compression.type` with real clients: every producer codec (none, gzip, snappy, lz4,
zstd) from confluent-kafka and kafka-python (idempotent producers) against every topic codec
(producer, uncompressed, gzip, snappy, lz4, zstd). Records read back must match what was sent
(keys, values, headers, timestamps, offsets), and `shale dump-log` must show each stored batch in
the topic's codec (the producer's for `producer`), with a valid CRC and its producer id kept.
Also the broker default (`--override compression.type=...`)."""

from __future__ import annotations

import dataclasses
import re
import urllib.request

import kafka_helpers as kh
from kafka_helpers import make_record

PRODUCER_CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
TOPIC_CODECS = ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]
N = 150  # records per producer and topic

BATCH_LINE = re.compile(r"baseOffset: (\d+) lastOffset: (\d+) count: (\d+) .*?producerId: (-?\d+) "
                        r".*?compresscodec: (\w+) crc: \d+ isvalid: (\w+)")


def gens_for(start: int) -> list:
    """Records start..start+N with keys, headers and repetitive values, so that every batch
    shrinks when compressed (kafka-python and librdkafka send a batch uncompressed otherwise)."""
    out = []
    for i in range(start, start + N):
        g = make_record(i, null_header_values=False, all_null=False)
        value = None if g.value is None else f"v{i}:".encode() + b"compressible-" * 40
        out.append(dataclasses.replace(g, value=value))
    return out


def expected_codec(topic_codec: str, producer_codec: str) -> str:
    if topic_codec == "producer":
        return producer_codec
    return "none" if topic_codec == "uncompressed" else topic_codec


def kp_send(prod, topic: str, partition: int, gens: list) -> dict:
    futs = [(g, prod.send(topic, key=g.key, value=g.value, partition=partition,
                          timestamp_ms=g.timestamp, headers=list(g.headers))) for g in gens]
    prod.flush(timeout=60)
    offsets = {}
    for g, f in futs:
        md = f.get(timeout=30)
        offsets[g.i] = (md.partition, md.offset)
    return offsets


def stored_batches(broker, topic: str, partition: int) -> list:
    """(base offset, last offset, count, producer id, codec, crc valid) of every batch on disk,
    read with `shale dump-log` (the broker must be stopped)."""
    out = []
    for seg in sorted((broker.data_dir / f"{topic}-{partition}").glob("*.log")):
        p = broker.run_tool("dump-log", seg)
        assert p.returncode == 0, f"dump-log {seg}: {p.stderr.decode(errors='replace')}"
        for line in p.stdout.decode(errors="replace").splitlines():
            if line.startswith("baseOffset:"):
                m = BATCH_LINE.search(line)
                assert m, f"unparsed dump-log line: {line}"
                b, last, n, pid, codec, valid = m.groups()
                out.append((int(b), int(last), int(n), int(pid), codec, valid == "true"))
    return out


def metric(broker, name: str) -> float:
    with urllib.request.urlopen(broker.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def produce_both(broker, topic: str, ck, kp, start: int):
    """confluent-kafka writes partition 0, kafka-python partition 1; returns (gens, offsets)."""
    ck_gens, kp_gens = gens_for(start), gens_for(start + N)
    res = kh.ck_produce(ck, topic, ck_gens, partition_of=lambda i: 0)
    assert not res.errors, f"{topic}: delivery errors (first 5): {res.errors[:5]}"
    offsets = dict(res.offsets)
    offsets.update(kp_send(kp, topic, 1, kp_gens))
    return {0: ck_gens, 1: kp_gens}, offsets


def check_disk(broker, topic: str, want: str, records: int):
    for part in (0, 1):
        stored = stored_batches(broker, topic, part)
        assert stored, f"{topic}-{part}: no batches on disk"
        assert sum(s[2] for s in stored) == records, f"{topic}-{part}: {stored}"
        assert {s[4] for s in stored} == {want}, f"{topic}-{part}: codecs {stored}"
        assert all(s[5] for s in stored), f"{topic}-{part}: invalid CRC in {stored}"
        # Idempotent producers: the producer id survives a rebuild.
        assert all(s[3] >= 0 for s in stored), f"{topic}-{part}: producer id lost in {stored}"


def test_every_producer_codec_against_every_topic_codec(broker):
    ck = {c: kh.ck_producer(broker.bootstrap, **{"compression.type": c, "enable.idempotence": True,
                                                 "linger.ms": 20})
          for c in PRODUCER_CODECS}
    kp = {c: kh.kp_producer(broker.bootstrap, compression_type=None if c == "none" else c,
                            enable_idempotence=True, acks="all")
          for c in PRODUCER_CODECS}
    cases = []
    converted = 0
    for n, (pc, tc) in enumerate((pc, tc) for pc in PRODUCER_CODECS for tc in TOPIC_CODECS):
        topic = f"ct-{pc}-to-{tc}"
        kh.ck_create_topic(broker.bootstrap, topic, 2, config={"compression.type": tc})
        gens, offsets = produce_both(broker, topic, ck[pc], kp[pc], start=n * 2 * N)
        msgs = kh.ck_consume(broker.bootstrap, topic, range(2))
        kh.assert_matches(msgs, gens, offsets, what=f"{topic} (confluent-kafka consumer)")
        if pc == "lz4":
            # kafka-python's decoding of batches the broker rebuilt, in every codec.
            msgs = kh.kp_consume(broker.bootstrap, topic, range(2))
            kh.assert_matches(msgs, gens, offsets, what=f"{topic} (kafka-python consumer)")
        want = expected_codec(tc, pc)
        if want != pc:
            converted += 2 * N
        cases.append((topic, want))
    # Every rebuilt record is counted, nothing else.
    assert metric(broker, "shale_produce_message_conversions_total") == converted
    kh.close_all_clients()
    broker.stop()
    for topic, want in cases:
        check_disk(broker, topic, want, N)


def test_broker_default_compression_type(broker_factory):
    broker = broker_factory({"compression.type": "zstd", "compression.zstd.level": "10"})
    ck = kh.ck_producer(broker.bootstrap, **{"compression.type": "gzip", "enable.idempotence": True})
    kp = kh.kp_producer(broker.bootstrap, compression_type="snappy", enable_idempotence=True,
                        acks="all")
    cases = [("default-zstd", None, "zstd"), ("keeps-producer", "producer", None),
             ("own-lz4", "lz4", "lz4")]
    for n, (topic, config, _) in enumerate(cases):
        kh.ck_create_topic(broker.bootstrap, topic, 2,
                           config={"compression.type": config} if config else None)
        gens, offsets = produce_both(broker, topic, ck, kp, start=n * 2 * N)
        msgs = kh.ck_consume(broker.bootstrap, topic, range(2))
        kh.assert_matches(msgs, gens, offsets, what=topic)
    kh.close_all_clients()
    broker.stop()
    check_disk(broker, "default-zstd", "zstd", N)
    check_disk(broker, "own-lz4", "lz4", N)
    # `producer` on the topic overrides the broker default: each client's codec is kept.
    assert {s[4] for s in stored_batches(broker, "keeps-producer", 0)} == {"gzip"}
    assert {s[4] for s in stored_batches(broker, "keeps-producer", 1)} == {"snappy"}
