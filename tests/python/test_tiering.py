"""Tiered storage (KIP-405) end to end against a real S3-compatible server (s3s-fs).

Each test starts its own s3s-fs and broker. Segments are tiny and `local.retention.bytes=1`,
so every rolled segment is copied to the bucket and then deleted locally; the tests read
the data back from offset 0 through the remote tier with real clients, decode the
`__remote_log_metadata` records the broker wrote, and inject faults (S3 outage, a missing
object). Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import base64
import re
import os
import time
import urllib.request
import uuid

import pytest

import kafka_helpers as kh

TASK_MS = "200"
META_PARTITIONS = 5
META_TOPIC = "__remote_log_metadata"


# ---------------------------------------------------------------------------
# set-up helpers
# ---------------------------------------------------------------------------
def tiered_broker(s3, broker_factory, bucket: str = "tiered", prefix=None, extra=None):
    s3.make_bucket(bucket)
    o = {
        "remote.log.manager.task.interval.ms": TASK_MS,
        "log.retention.check.interval.ms": TASK_MS,
        "rlmm.config.remote.log.metadata.topic.num.partitions": str(META_PARTITIONS),
    }
    o.update(s3.broker_overrides(bucket, prefix))
    o.update(extra or {})
    return broker_factory(overrides=o)


def tier_config(segment_bytes: int = 65536, **more) -> dict:
    c = {"remote.storage.enable": "true", "segment.bytes": str(segment_bytes),
         "local.retention.bytes": "1"}
    c.update({k.replace("_", "."): str(v) for k, v in more.items()})
    return c


def offsets(b, topic: str, partition: int = 0) -> dict:
    """-4 is read before -5, so `latest_tiered >= earliest_local - 1` must hold (local
    segments are deleted only once copied)."""
    lo = kh.list_offset(b.host, b.port, topic, partition, kh.EARLIEST_LOCAL_TIMESTAMP)
    tiered = kh.list_offset(b.host, b.port, topic, partition, kh.LATEST_TIERED_TIMESTAMP)
    start = kh.list_offset(b.host, b.port, topic, partition, kh.EARLIEST_TIMESTAMP)
    hw = kh.list_offset(b.host, b.port, topic, partition, -1)
    return {"start": start, "local": lo, "tiered": tiered, "hw": hw}


def wait_tiered(b, topic: str, min_local: int = 1, timeout: float = 60, partition: int = 0) -> dict:
    """Waits until the local log start is >= min_local, everything below it is tiered
    (latest tiered == local start - 1) and only the active segment is left on disk."""
    def ok():
        o = offsets(b, topic, partition)
        if not (o["local"] >= min_local and o["tiered"] == o["local"] - 1):
            return None
        # settled: only the active segment is left locally, so nothing more gets tiered
        segs = local_segments(b, topic, partition)
        return o if segs == [o["local"]] else None
    return kh.wait_until(ok, timeout=timeout, interval=0.1,
                         what=f"{topic}-{partition} tiered up to >= {min_local} (last: {offsets(b, topic, partition)})")


def local_segments(b, topic: str, partition: int = 0) -> list:
    """Base offsets of the partition's segment files on the broker's disk."""
    return sorted(int(p.stem) for p in (b.data_dir / f"{topic}-{partition}").glob("*.log"))


def topic_prefix(topic: str, prefix: str = "") -> str:
    return (prefix.rstrip("/") + "/" if prefix else "") + topic + "-"


def segment_objects(s3, bucket: str, topic: str) -> dict:
    """{start_offset: {"log": key, "indexes": key}} for the topic's objects, checking the layout
    `<topic>-<id>/<partition>/<20-digit start>-<segment id>.(log|indexes)`."""
    out: dict = {}
    for key in s3.objects(bucket, topic_prefix(topic)):
        m = re.fullmatch(re.escape(topic) + r"-([A-Za-z0-9_-]{22})/(\d+)/(\d{20})-([A-Za-z0-9_-]{22})\.(log|indexes)",
                         key)
        if m is None:
            assert key.endswith("/_delete-marker"), f"object key outside the layout: {key}"
            continue
        seg = out.setdefault(int(m.group(3)), {"id": m.group(4)})
        assert seg["id"] == m.group(4), f"two segments start at {m.group(3)}: {seg} and {key}"
        seg[m.group(5)] = key
    return out


def topic_id_from_objects(s3, bucket: str, topic: str) -> uuid.UUID:
    ids = {k.split("/")[0][len(topic) + 1:] for k in s3.objects(bucket, topic_prefix(topic))}
    assert len(ids) == 1, f"objects of {topic} under several topic ids: {ids}"
    return uuid.UUID(bytes=base64.urlsafe_b64decode(ids.pop() + "=="))


def gets(b) -> float:
    with urllib.request.urlopen(b.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    m = re.search(r'^shale_object_store_requests_total\{[^}]*kind="GET"[^}]*\}\s+(\S+)', text, re.M)
    assert m, "shale_object_store_requests_total{kind=\"GET\"} missing from /metrics"
    return float(m.group(1))


def topic_metric(b, meter: str, topic: str) -> float:
    """A BrokerTopicMetrics sample of one topic (`meter` as Kafka names it), 0 when absent."""
    with urllib.request.urlopen(b.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    name = f"kafka_server_brokertopicmetrics_{meter.lower()}"
    m = re.search(rf'^{name}(?:_total)?\{{topic="{re.escape(topic)}"\}}\s+(\S+)', text, re.M)
    return float(m.group(1)) if m else 0.0


def produce(bootstrap: str, topic: str, gens, **extra) -> kh.ProduceResult:
    p = kh.ck_producer(bootstrap, **{"acks": "all", "linger.ms": 20, "batch.size": 16384, **extra})
    res = kh.ck_produce(p, topic, gens, lambda i: 0)
    assert not res.errors, f"delivery errors: {res.errors[:5]}"
    return res


def raw_read(b, topic: str, start: int, end: int, timeout: float = 60) -> tuple:
    """Reads [start, end) with raw Fetch v4 requests; returns (bytes of batches, seconds)."""
    total = 0
    off = start
    t0 = time.monotonic()
    with kh.RawConnection(b.host, b.port, timeout=30) as c:
        while off < end:
            assert time.monotonic() - t0 < timeout, f"raw read of {topic} stuck at offset {off}"
            r = kh.fetch_v4(c, [(topic, 0, off)], max_wait_ms=100,
                                  partition_max_bytes=8 * 1024 * 1024)[(topic, 0)]
            assert r["error_code"] == 0, f"fetch {topic}-0 at {off}: error {r['error_code']}"
            batches = kh.batch_offsets(r["records"])
            if not batches:
                continue
            assert batches[0][0] <= off <= batches[0][1], f"fetch at {off} returned batch {batches[0]}"
            total += len(r["records"])
            off = batches[-1][1] + 1
    return total, time.monotonic() - t0


# ---------------------------------------------------------------------------
# __remote_log_metadata: partitioner (§3.2) and record decoder (§3.8)
# ---------------------------------------------------------------------------
M32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c), as an unsigned 32-bit value."""
    m, r = 0x5BD1E995, 24
    n = len(data)
    h = (0x9747B28C ^ n) & M32
    for i in range(n // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & M32
        k ^= k >> r
        k = (k * m) & M32
        h = (h * m) & M32
        h ^= k
    tail = n - n % 4
    rem = n % 4
    if rem == 3:
        h ^= data[tail + 2] << 16
    if rem >= 2:
        h ^= data[tail + 1] << 8
    if rem >= 1:
        h ^= data[tail]
        h = (h * m) & M32
    h ^= h >> 13
    h = (h * m) & M32
    h ^= h >> 15
    return h


def java_hash(topic_id: uuid.UUID, partition: int) -> int:
    """Objects.hash(lsb, msb, partition) with Long.hashCode, as a signed int32."""
    msb, lsb = topic_id.int >> 64, topic_id.int & ((1 << 64) - 1)
    h = 1
    for v in ((lsb ^ (lsb >> 32)) & M32, (msb ^ (msb >> 32)) & M32, partition & M32):
        h = (31 * h + v) & M32
    return h - (1 << 32) if h & 0x80000000 else h


def metadata_partition(topic_id: uuid.UUID, partition: int, n: int) -> int:
    h = java_hash(topic_id, partition)
    return (murmur2((h & M32).to_bytes(4, "big")) & 0x7FFFFFFF) % n


def _tags_empty(r: kh.Reader, where: str):
    tags = r.tagged_fields()
    assert tags == {}, f"unexpected tagged fields in {where}: {tags}"


def _tp(r: kh.Reader) -> dict:
    d = {"topic": r.compact_string(), "topic_id": uuid.UUID(bytes=r.take(16)), "partition": r.i32()}
    _tags_empty(r, "TopicIdPartitionEntry")
    return d


def _segment_id(r: kh.Reader) -> dict:
    d = _tp(r)
    d["segment_id"] = uuid.UUID(bytes=r.take(16))
    _tags_empty(r, "RemoteLogSegmentIdEntry")
    return d


def _nullable_bytes(r: kh.Reader):
    n = r.uvarint()
    return None if n == 0 else r.take(n - 1)


def _epoch(r: kh.Reader) -> tuple:
    e = (r.i32(), r.i64())
    _tags_empty(r, "SegmentLeaderEpochEntry")
    return e


def decode_rlmm(value: bytes) -> dict:
    """One `__remote_log_metadata` record value (frame v1, api key 0/1/2, version 0)."""
    r = kh.Reader(value)
    frame, api, version = r.uvarint(), r.uvarint(), r.uvarint()
    assert frame == 1 and version == 0, f"frame version {frame}, body version {version}: {value.hex()}"
    d: dict = {"api": api}
    if api == 0:
        d.update(_segment_id(r))
        d.update(start=r.i64(), end=r.i64(), broker=r.i32(), max_ts=r.i64(), event_ts=r.i64(),
                 epochs=r.compact_array(_epoch), size=r.i32(), custom=_nullable_bytes(r), state=r.i8())
    elif api == 1:
        d.update(_segment_id(r))
        d.update(broker=r.i32(), event_ts=r.i64(), custom=_nullable_bytes(r), state=r.i8())
    elif api == 2:
        d.update(_tp(r))
        d.update(broker=r.i32(), event_ts=r.i64(), state=r.i8())
    else:
        raise AssertionError(f"unexpected api key {api} in {value.hex()}")
    _tags_empty(r, f"api {api} record")
    assert r.remaining() == 0, f"{r.remaining()} trailing bytes after api {api} record: {value.hex()}"
    return d


def test_metadata_partitioner_and_decoder_match_the_reference_vectors():
    """The Python port used by the end-to-end check is itself checked against kip-405.md."""
    a = uuid.UUID(bytes=base64.urlsafe_b64decode("MWJ6FHTfRYy67jzwZdeqSQ=="))
    assert a.hex == "31627a1474df458cbaee3cf065d7aa49"
    one = uuid.UUID(int=1)
    for tid, part, h32, mp in [(a, 0, 1763308608, 42), (a, 1, 1763308609, 45), (a, 7, 1763308615, 26),
                               (one, 0, 30752, 35), (one, 7, 30759, 46)]:
        assert java_hash(tid, part) == h32
        assert metadata_partition(tid, part, 50) == mp
    example = bytes.fromhex(
        "010000" "04666f6f" + "00" * 15 + "01" "00000000" "00" + "00" * 15 + "02" "00"
        + "00" * 8 + "0000000000000063" "00000001" "0000018bcfe56800" "0000018bcfe5687b"
        "02" "000000000000000000000000" "00" "00100000" "00" "00" "00")
    assert len(example) == 102
    d = decode_rlmm(example)
    assert d == {"api": 0, "topic": "foo", "topic_id": one, "partition": 0, "segment_id": uuid.UUID(int=2),
                 "start": 0, "end": 99, "broker": 1, "max_ts": 1700000000000, "event_ts": 1700000000123,
                 "epochs": [(0, 0)], "size": 1048576, "custom": None, "state": 0}
    upd = bytes.fromhex("010100" "04666f6f" + "00" * 15 + "01" "0000000000" + "00" * 15 + "02"
                        "00" "00000001" "0000018bcfe569c8" "00" "01" "00")
    assert len(upd) == 60
    assert decode_rlmm(upd)["state"] == 1 and decode_rlmm(upd)["event_ts"] == 1700000000456


# ---------------------------------------------------------------------------
# 1. cold read
# ---------------------------------------------------------------------------
def test_tiered_topic_cold_read(s3_server, broker_factory):
    topic = "cold"
    n = 100_000
    seg = 262144
    b = tiered_broker(s3_server, broker_factory)
    kh.ck_create_topic(b.bootstrap, topic, config=tier_config(seg))
    gens = [kh.make_record(i) for i in range(n)]
    res = produce(b.bootstrap, topic, gens, **{"batch.size": 65536})
    assert res.offsets == {i: (0, i) for i in range(n)}

    o = wait_tiered(b, topic, min_local=n // 2)
    objs = segment_objects(s3_server, "tiered", topic)
    assert objs, "no objects in the bucket"
    assert all(set(v) == {"id", "log", "indexes"} for v in objs.values()), f"incomplete segments: {objs}"
    assert o["start"] == 0, f"log start {o}"
    assert o["local"] > 0 and o["tiered"] >= o["local"] - 1, o
    assert 0 in objs and max(objs) < o["local"], (sorted(objs)[:5], o)

    expected = {0: gens}
    ck = kh.ck_consume(b.bootstrap, topic, [0], start={0: 0})
    kh.assert_matches(ck, expected, res.offsets, what="confluent-kafka cold read")
    kp = kh.kp_consume(b.bootstrap, topic, [0], start={0: 0})
    kh.assert_matches(kp, expected, res.offsets, what="kafka-python cold read")

    # seek by timestamp into remote data
    from confluent_kafka import TopicPartition
    early = 1234
    assert early < o["local"]
    c = kh.ck_consumer(b.bootstrap)
    found = c.offsets_for_times([TopicPartition(topic, 0, gens[early].timestamp)], timeout=15)
    c.close()
    assert found[0].error is None and found[0].offset == early, f"offsets_for_times: {found[0]}"
    from kafka import TopicPartition as KTP
    kc = kh.kp_consumer(b.bootstrap)
    kfound = kc.offsets_for_times({KTP(topic, 0): gens[early + 1].timestamp})
    assert kfound[KTP(topic, 0)].offset == early + 1, kfound

    # crash (SIGKILL) and start: RLMM rebuilt (snapshot + replay), cache empty; cold read
    # through confluent-kafka
    b.kill()
    b.start()
    o2 = offsets(b, topic)
    assert o2["start"] == 0 and o2["local"] >= o["local"] and o2["hw"] == n, (o, o2)
    g0, t0 = gets(b), time.monotonic()
    ck2 = kh.ck_consume(b.bootstrap, topic, [0], start={0: 0})
    client_s = time.monotonic() - t0
    kh.assert_matches(ck2, expected, res.offsets, what="confluent-kafka cold read after restart")
    client_gets = gets(b) - g0

    # restart again: raw Fetch cold read of the remote range only, for the figures
    b.restart()
    objs = segment_objects(s3_server, "tiered", topic)
    remote_bytes = sum((s3_server.root / "tiered" / v["log"]).stat().st_size for v in objs.values())
    local_start = kh.list_offset(b.host, b.port, topic, 0, kh.EARLIEST_LOCAL_TIMESTAMP)
    g1 = gets(b)
    got_bytes, secs = raw_read(b, topic, 0, local_start)
    raw_gets = gets(b) - g1
    mib = got_bytes / 2**20
    print(f"\n[tiering figures] segment.bytes={seg}, {len(objs)} remote segments, "
          f"{len(s3_server.objects('tiered', topic_prefix(topic)))} objects -> "
          f"{len(s3_server.objects('tiered', topic_prefix(topic))) / len(objs):.2f} objects/segment")
    print(f"[tiering figures] raw Fetch cold read after restart: {mib:.2f} MiB in {secs:.2f} s = "
          f"{mib / secs:.1f} MiB/s, {raw_gets:.0f} GETs = {raw_gets / mib:.2f} GETs per cold MiB "
          f"(remote .log bytes {remote_bytes / 2**20:.2f} MiB)")
    print(f"[tiering figures] confluent-kafka cold read of all {n} records after restart: "
          f"{client_s:.2f} s, {client_gets:.0f} GETs = {client_gets / (remote_bytes / 2**20):.2f} GETs per remote MiB")
    t1 = time.monotonic()
    raw_get = s3_server.get_objects("tiered", [v["log"] for _, v in sorted(objs.items())])
    get_s = time.monotonic() - t1
    assert raw_get == remote_bytes, (raw_get, remote_bytes)
    print(f"[tiering figures] raw S3 GET of the same .log objects one by one (SigV4, one connection): "
          f"{raw_get / 2**20:.2f} MiB in {get_s:.2f} s = {raw_get / 2**20 / get_s:.1f} MiB/s")
    assert got_bytes >= remote_bytes * 0.9, (got_bytes, remote_bytes)
    assert raw_gets > 0, "a cold read after restart made no GET"


def test_timestamp_lookups_over_remote_data(s3_server, broker_factory):
    """ListOffsets by timestamp and -3 (max timestamp, searched over remote data too, beyond
    Kafka) when the answer lies in a tiered segment."""
    import dataclasses
    b = tiered_broker(s3_server, broker_factory)
    gens = [kh.make_record(i, value_size=300) for i in range(2000)]
    gens[10] = dataclasses.replace(gens[10], timestamp=gens[10].timestamp + 10_000_000)
    kh.ck_create_topic(b.bootstrap, "ts", config=tier_config(65536))
    produce(b.bootstrap, "ts", gens)
    o = wait_tiered(b, "ts", min_local=500)
    with kh.RawConnection(b.host, b.port) as c:
        mx = kh.list_offsets_v9(c, "ts", 0, -3)
        assert (mx["error_code"], mx["offset"], mx["timestamp"]) == (0, 10, gens[10].timestamp), mx
        assert kh.list_offsets_v9(c, "ts", 0, gens[0].timestamp - 5)["offset"] == 0
        assert kh.list_offsets_v9(c, "ts", 0, gens[5].timestamp)["offset"] == 5
        # the first record with timestamp >= ts of record 1500 is record 10 (remote)
        assert kh.list_offsets_v9(c, "ts", 0, gens[1500].timestamp)["offset"] == 10
        late = kh.list_offsets_v9(c, "ts", 0, gens[10].timestamp + 1)
        assert late["offset"] == -1 and late["error_code"] == 0, late
    assert o["local"] > 10


# ---------------------------------------------------------------------------
# 2. the metadata records
# ---------------------------------------------------------------------------
def read_metadata_records(b) -> list:
    """[(metadata partition, offset, decoded)] of every `__remote_log_metadata` record."""
    from confluent_kafka import TopicPartition
    c = kh.ck_consumer(b.bootstrap)
    parts = range(META_PARTITIONS)
    wm = {p: c.get_watermark_offsets(TopicPartition(META_TOPIC, p), timeout=10, cached=False) for p in parts}
    c.close()
    msgs = kh.ck_consume(b.bootstrap, META_TOPIC, parts, start={p: 0 for p in parts},
                         end={p: wm[p][1] for p in parts})
    for m in msgs:
        assert m.key is None, f"metadata record with a key at {m.partition}/{m.offset}"
        assert m.headers == (), f"metadata record with headers at {m.partition}/{m.offset}"
    return [(m.partition, m.offset, decode_rlmm(m.value)) for m in msgs]


def test_remote_log_metadata_records(s3_server, broker_factory):
    topic = "meta"
    b = tiered_broker(s3_server, broker_factory)
    kh.ck_create_topic(b.bootstrap, topic, config=tier_config(65536))
    t_begin = int(time.time() * 1000) - 1000
    gens = [kh.make_record(i, value_size=400) for i in range(3000)]
    produce(b.bootstrap, topic, gens)
    o = wait_tiered(b, topic, min_local=1000)
    t_end = int(time.time() * 1000) + 1000
    from confluent_kafka import TopicCollection
    admin = kh.ck_admin(b.bootstrap)
    md = admin.list_topics(timeout=10)
    broker_id = next(iter(md.brokers))
    assert META_TOPIC in md.topics and len(md.topics[META_TOPIC].partitions) == META_PARTITIONS, (
        f"{META_TOPIC} partitions: {md.topics.get(META_TOPIC)}")
    desc = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=10)
    tid = uuid.UUID(int=(desc.topic_id.get_most_significant_bits() % (1 << 64) << 64)
                    | (desc.topic_id.get_least_significant_bits() % (1 << 64)))
    assert tid == topic_id_from_objects(s3_server, "tiered", topic), "object keys carry another topic id"

    recs = read_metadata_records(b)
    mine = [(p, off, d) for p, off, d in recs if d.get("topic") == topic]
    assert mine, f"no metadata records for {topic}; all: {[d for _, _, d in recs][:5]}"
    want_part = metadata_partition(tid, 0, META_PARTITIONS)
    for p, off, d in mine:
        assert p == want_part, f"record at {p}/{off} for {topic}-0, Kafka's mapping says {want_part}: {d}"
        assert d["topic_id"] == tid and d["partition"] == 0, d
        assert d["broker"] == broker_id, (d, broker_id)
        assert t_begin <= d["event_ts"] <= t_end, d

    started = {d["segment_id"]: (off, d) for _, off, d in mine if d["api"] == 0}
    finished = {}
    for _, off, d in mine:
        if d["api"] == 1 and d["state"] == 1:
            assert d["segment_id"] not in finished, f"segment finished twice: {d}"
            finished[d["segment_id"]] = (off, d)
    assert all(d["api"] in (0, 1) for _, _, d in mine), [d for _, _, d in mine if d["api"] not in (0, 1)]
    objs = segment_objects(s3_server, "tiered", topic)
    assert set(finished) <= set(started), "FINISHED updates without a COPY_SEGMENT_STARTED record"
    segs = sorted((started[s][1] for s in finished), key=lambda d: d["start"])
    for d in segs:
        soff, _ = started[d["segment_id"]]
        foff, upd = finished[d["segment_id"]]
        assert d["state"] == 0, f"apiKey-0 record not in COPY_SEGMENT_STARTED: {d}"
        assert soff < foff, f"FINISHED at {foff} before STARTED at {soff}"
        assert upd["custom"] is not None and 0 < len(upd["custom"]) <= 128, upd
        assert d["start"] <= d["end"], d
        assert d["epochs"] and [e for e, _ in d["epochs"]] == sorted(e for e, _ in d["epochs"]), d
        assert d["epochs"][0][1] == d["start"], f"first leader-epoch entry should start at the segment: {d}"
        assert d["max_ts"] == gens[d["end"]].timestamp, (d, gens[d["end"]].timestamp)
        assert d["event_ts"] <= upd["event_ts"], (d, upd)
        key = objs.get(d["start"], {}).get("log")
        assert key is not None and key.endswith(
            base64.urlsafe_b64encode(d["segment_id"].bytes).rstrip(b"=").decode() + ".log"), (key, d)
        size = (s3_server.root / "tiered" / key).stat().st_size
        assert d["size"] == size, f"segment size {d['size']} != .log object size {size} ({key})"
    assert segs[0]["start"] == 0
    for a, c in zip(segs, segs[1:]):
        assert c["start"] == a["end"] + 1, f"gap or overlap between {a} and {c}"
    assert segs[-1]["end"] >= o["tiered"], (segs[-1], o)
    assert len(objs) == len(segs), f"{len(objs)} segments in the bucket, {len(segs)} finished in RLMM"


# ---------------------------------------------------------------------------
# 3. S3 outage
# ---------------------------------------------------------------------------


def test_s3_outage_during_tiering(s3_server, broker_factory):
    """S3 down for S3_OUTAGE_S seconds (30 in CI; 60 for the figure in docs/benchmarks.md) while
    a tiered topic with small segments takes acks=all produce: produce and local reads go on,
    nothing is tiered or deleted locally, and afterwards tiering catches up with no orphans."""
    topic = "outage"
    outage_s = float(os.environ.get("S3_OUTAGE_S", "30"))
    b = tiered_broker(s3_server, broker_factory)
    kh.ck_create_topic(b.bootstrap, topic, config=tier_config(65536))
    gens = [kh.make_record(i, value_size=300) for i in range(2000 + int(600 * outage_s))]
    produce(b.bootstrap, topic, gens[:2000])
    before = wait_tiered(b, topic, min_local=500)

    s3_server.stop()
    outage_start = time.monotonic()
    p = kh.ck_producer(b.bootstrap, **{"acks": "all", "linger.ms": 5, "batch.size": 16384})
    sent = 2000
    rounds = 0
    while time.monotonic() - outage_start < outage_s:
        chunk = gens[sent:sent + 200]
        assert chunk, "ran out of records during the outage"
        r = kh.ck_produce(p, topic, chunk, lambda i: 0, flush_timeout=20)
        assert not r.errors, f"produce failed during the S3 outage: {r.errors[:3]}"
        sent += len(chunk)
        rounds += 1
        o = offsets(b, topic)
        assert o["local"] == before["local"], (
            f"local log start moved from {before['local']} to {o['local']} while S3 was down "
            f"(uncopied segments deleted?)")
        assert o["hw"] == sent, o
        segs = local_segments(b, topic)
        assert segs[0] == before["local"], f"first local segment {segs[0]} != {before['local']}"
        if rounds % 5 == 1:  # local reads keep working
            lo = kh.ck_consume(b.bootstrap, topic, [0], start={0: before["local"]}, end={0: sent}, timeout=20)
            kh.assert_matches(lo, {0: gens[before["local"]:sent]}, what="local read during outage")
        time.sleep(0.5)
    during = offsets(b, topic)
    assert during["tiered"] == before["tiered"], f"something was tiered while S3 was down: {before} {during}"
    assert len(local_segments(b, topic)) > 5, f"too few local segments after the outage: {local_segments(b, topic)}"

    s3_server.start()
    restored = time.monotonic()
    after = wait_tiered(b, topic, min_local=sent - 600, timeout=60)
    print(f"outage {outage_s:.0f} s: {sent - 2000} records acked during it, "
          f"{len(local_segments(b, topic))} local segments at the end, "
          f"caught up {time.monotonic() - restored:.1f} s after S3 returned")
    assert after["local"] > before["local"] and after["start"] == 0, (before, after)
    all_msgs = kh.ck_consume(b.bootstrap, topic, [0], start={0: 0})
    kh.assert_matches(all_msgs, {0: gens[:sent]}, what="read from 0 after the outage")
    # uploads that failed during the outage are cleaned up: every segment id that was
    # started ends FINISHED (1) or DELETE_SEGMENT_FINISHED (3), and the bucket holds exactly
    # the two objects of each finished segment
    def converged():
        last = {}
        for _, _, d in read_metadata_records(b):
            if d.get("topic") == topic and d["api"] in (0, 1):
                last[d["segment_id"]] = d["state"]
        objs = segment_objects(s3_server, "tiered", topic)
        done = [sid for sid, st in last.items() if st == 1]
        ok = (all(st in (1, 3) for st in last.values()) and len(done) == len(objs)
              and all(set(v) == {"id", "log", "indexes"} for v in objs.values()))
        return ok or None
    kh.wait_until(converged, timeout=30, interval=0.5, what="failed uploads cleaned up after the outage")
    assert b.running()


# ---------------------------------------------------------------------------
# 4. missing remote object
# ---------------------------------------------------------------------------
def test_missing_remote_object_gives_an_error_and_other_partitions_still_work(s3_server, broker_factory):
    b = tiered_broker(s3_server, broker_factory)
    kh.ck_create_topic(b.bootstrap, "tiered4", config=tier_config(65536))
    kh.ck_create_topic(b.bootstrap, "local4")
    gens = [kh.make_record(i, value_size=300) for i in range(2000)]
    produce(b.bootstrap, "tiered4", gens)
    produce(b.bootstrap, "local4", gens[:100])
    wait_tiered(b, "tiered4", min_local=500)
    objs = segment_objects(s3_server, "tiered", "tiered4")
    assert len(objs) >= 3, objs
    second = sorted(objs)[1]
    (s3_server.root / "tiered" / objs[0]["log"]).unlink()

    def fetch_once():
        with kh.RawConnection(b.host, b.port) as c:
            return kh.fetch_v4(c, [("tiered4", 0, 0), ("local4", 0, 0)], max_wait_ms=200)

    def settled():
        r = fetch_once()
        t = r[("tiered4", 0)]
        return r if t["error_code"] != 0 or t["records"] else None
    r = kh.wait_until(settled, timeout=15, what="an answer for the tiered partition")
    t, loc = r[("tiered4", 0)], r[("local4", 0)]
    assert t["error_code"] == kh.KAFKA_STORAGE_ERROR, (
        f"fetch of a segment whose .log object is missing: error {t['error_code']}, "
        f"{len(t['records'])} record bytes (expected KAFKA_STORAGE_ERROR)")
    assert loc["error_code"] == 0 and kh.batch_offsets(loc["records"]), f"local partition in the same fetch: {loc}"
    kh.wait_until(lambda: "remote read failed" in b.log_text() and "tiered4-0" in b.log_text(), timeout=5,
                  what="the broker log to mention the failed remote read")
    # the other remote segments are still served
    with kh.RawConnection(b.host, b.port) as c:
        def ok():
            x = kh.fetch_v4(c, [("tiered4", 0, second)], max_wait_ms=200)[("tiered4", 0)]
            assert x["error_code"] == 0, x["error_code"]
            return kh.batch_offsets(x["records"])
        batches = kh.wait_until(ok, timeout=15, what="a read of the second remote segment")
    assert batches[0][0] == second, batches[:2]
    assert b.running()


def test_corrupt_remote_object_gives_an_error(s3_server, broker_factory):
    """Issue 3: "a missing or corrupt remote object -> the fetch gets a Kafka error code".
    The `.log` object keeps its size; bytes inside record bodies are flipped, so batch CRCs
    (and the CRC-32C of the whole object kept in the RLMM custom metadata) no longer match."""
    b = tiered_broker(s3_server, broker_factory)
    kh.ck_create_topic(b.bootstrap, "tiered4c", config=tier_config(65536))
    kh.ck_create_topic(b.bootstrap, "local4c")
    gens = [kh.make_record(i, value_size=300) for i in range(2000)]
    produce(b.bootstrap, "tiered4c", gens)
    produce(b.bootstrap, "local4c", gens[:100])
    wait_tiered(b, "tiered4c", min_local=500)
    objs = segment_objects(s3_server, "tiered", "tiered4c")
    victim = sorted(objs)[1]
    path = s3_server.root / "tiered" / objs[victim]["log"]
    data = bytearray(path.read_bytes())
    for i in range(100, len(data), 997):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))

    def settled():
        with kh.RawConnection(b.host, b.port) as c:
            r = kh.fetch_v4(c, [("tiered4c", 0, victim), ("local4c", 0, 0)], max_wait_ms=200)
        t = r[("tiered4c", 0)]
        return r if t["error_code"] != 0 or t["records"] else None
    r = kh.wait_until(settled, timeout=15, what="an answer for the tiered partition")
    t, loc = r[("tiered4c", 0)], r[("local4c", 0)]
    assert loc["error_code"] == 0 and kh.batch_offsets(loc["records"]), f"local partition in the same fetch: {loc}"
    assert t["error_code"] in (kh.KAFKA_STORAGE_ERROR, kh.CORRUPT_MESSAGE), (
        f"BROKER BUG: a corrupted remote .log object ({objs[victim]['log']}) is served as valid data: "
        f"error_code {t['error_code']}, {len(t['records'])} bytes, batches {kh.batch_offsets(t['records'])[:3]} "
        f"(issue 3 requires a Kafka error code; clients with check.crcs=false, librdkafka's default, "
        f"would deliver the corrupted records)")


# ---------------------------------------------------------------------------
# 5. total retention
# ---------------------------------------------------------------------------
def alter_topic(bootstrap: str, topic: str, configs: dict):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    admin = kh.ck_admin(bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(timeout=15)


def test_total_retention_deletes_remote_segments(s3_server, broker_factory):
    topic = "retained"
    b = tiered_broker(s3_server, broker_factory)
    kh.ck_create_topic(b.bootstrap, topic, config=tier_config(65536))
    gens = [kh.make_record(i, value_size=300) for i in range(3000)]
    produce(b.bootstrap, topic, gens)
    before = wait_tiered(b, topic, min_local=1000)
    objs_before = segment_objects(s3_server, "tiered", topic)
    assert before["start"] == 0 and 0 in objs_before

    alter_topic(b.bootstrap, topic, {"retention.bytes": "300000"})

    def sizes(objs):
        remote = [(s3_server.root / "tiered" / objs[k]["log"]).stat().st_size for k in sorted(objs)]
        local = sum(p.stat().st_size for p in (b.data_dir / f"{topic}-0").glob("*.log"))
        return remote, local

    def settled():
        # Kafka's rule: the oldest segment goes while total size minus its size stays
        # >= retention.bytes; so once settled, total - oldest remaining < retention.bytes
        o = offsets(b, topic)
        objs = segment_objects(s3_server, "tiered", topic)
        if not (o["start"] > 0 and objs and min(objs) >= o["start"]):
            return None
        remote, local = sizes(objs)
        return (o, objs) if sum(remote) + local - remote[0] < 300000 else None
    o, objs = kh.wait_until(settled, timeout=30, interval=0.1, what="remote retention to settle")
    assert len(objs) < len(objs_before), (len(objs), len(objs_before))
    assert min(objs) == o["start"], f"log start {o['start']} is not the first remaining segment {min(objs)}"
    assert all(set(v) == {"id", "log", "indexes"} for v in objs.values()), objs
    remote, local = sizes(objs)
    assert sum(remote) + local >= 300000 - 70000, (
        f"retention deleted too much: {sum(remote)} remote + {local} local bytes left")

    msgs = kh.ck_consume(b.bootstrap, topic, [0], start={0: 0}, end={0: len(gens)})
    assert msgs and msgs[0].offset == o["start"], (msgs[0].offset if msgs else None, o)
    kh.assert_matches(msgs, {0: gens[o["start"]:]}, what="read after remote retention")


# ---------------------------------------------------------------------------
# 6. topic deletion
# ---------------------------------------------------------------------------
def test_delete_topic_empties_its_bucket_prefix(s3_server, broker_factory):
    b = tiered_broker(s3_server, broker_factory)
    for t in ("doomed", "kept"):
        kh.ck_create_topic(b.bootstrap, t, config=tier_config(65536))
        produce(b.bootstrap, t, [kh.make_record(i, value_size=300) for i in range(1500)])
    for t in ("doomed", "kept"):
        wait_tiered(b, t, min_local=500)
    kept = s3_server.objects("tiered", topic_prefix("kept"))
    assert s3_server.objects("tiered", topic_prefix("doomed")) and kept

    admin = kh.ck_admin(b.bootstrap)
    admin.delete_topics(["doomed"], request_timeout=15)["doomed"].result(timeout=15)
    kh.wait_until(lambda: not s3_server.objects("tiered", topic_prefix("doomed")), timeout=30,
                  what="no object left under doomed-*")
    assert s3_server.objects("tiered", topic_prefix("kept")) == kept, "deleting one topic touched another's objects"


# ---------------------------------------------------------------------------
# 7. enabling tiering on an existing topic; compacted topics refused
# ---------------------------------------------------------------------------
def test_enable_tiering_on_existing_topic(s3_server, broker_factory):
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic
    b = tiered_broker(s3_server, broker_factory)
    kh.ck_create_topic(b.bootstrap, "late", config={"segment.bytes": "65536"})
    gens = [kh.make_record(i, value_size=300) for i in range(2000)]
    produce(b.bootstrap, "late", gens)
    assert kh.list_offset(b.host, b.port, "late", 0, kh.LATEST_TIERED_TIMESTAMP) == -1
    alter_topic(b.bootstrap, "late", {"remote.storage.enable": "true", "local.retention.bytes": "1"})
    wait_tiered(b, "late", min_local=500)
    objs = segment_objects(s3_server, "tiered", "late")
    assert objs
    # Per-topic remote metrics: everything rolled is copied, so no lag; sizes match the bucket.
    remote_bytes = sum((s3_server.root / "tiered" / v["log"]).stat().st_size for v in objs.values())
    kh.wait_until(lambda: topic_metric(b, "RemoteCopyLagSegments", "late") == 0
                  and topic_metric(b, "RemoteCopyBytesPerSec", "late") == remote_bytes, timeout=20,
                  what="copy lag 0 and copied bytes = remote .log bytes")
    assert topic_metric(b, "RemoteCopyRequestsPerSec", "late") == len(objs)
    assert topic_metric(b, "RemoteLogSizeBytes", "late") == remote_bytes
    assert topic_metric(b, "RemoteFetchBytesPerSec", "late") == 0
    kh.assert_matches(kh.ck_consume(b.bootstrap, "late", [0], start={0: 0}), {0: gens}, what="late-tiered read")
    assert topic_metric(b, "RemoteFetchRequestsPerSec", "late") >= 1
    assert topic_metric(b, "RemoteFetchBytesPerSec", "late") > 0

    msg = "Remote log storage is unsupported for the compacted topics"
    admin = kh.ck_admin(b.bootstrap)
    f = admin.create_topics([NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact",
                                                                 "remote.storage.enable": "true"})])
    with pytest.raises(KafkaException) as ei:
        f["compacted"].result(timeout=15)
    err = ei.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG and msg in err.str(), err
    kh.ck_create_topic(b.bootstrap, "compacted2", config={"cleanup.policy": "compact"})
    with pytest.raises(KafkaException) as ei:
        alter_topic(b.bootstrap, "compacted2", {"remote.storage.enable": "true"})
    err = ei.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG and msg in err.str(), err


# ---------------------------------------------------------------------------
# 8. S3 credentials from the AWS default chain (a shared credentials file)
# ---------------------------------------------------------------------------
def test_s3_credentials_from_a_profile_file(s3_server, broker_factory, tmp_path):
    """No `s3.access.key.id`: the broker signs with the keys of the profile named by AWS_PROFILE
    in AWS_SHARED_CREDENTIALS_FILE. First the `default` profile, whose keys s3s-fs refuses:
    uploads fail and say so; then the right profile: the topic tiers and reads back cold."""
    from conftest import S3_ACCESS_KEY, S3_SECRET_KEY
    topic = "profiled"
    s3_server.make_bucket("tiered")
    creds = tmp_path / "aws-credentials"
    creds.write_text("[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = WRONG\n\n"
                     f"[shale-test]\naws_access_key_id = {S3_ACCESS_KEY}\n"
                     f"aws_secret_access_key = {S3_SECRET_KEY}\n")
    o = {"remote.log.manager.task.interval.ms": TASK_MS,
         "log.retention.check.interval.ms": TASK_MS,
         "rlmm.config.remote.log.metadata.topic.num.partitions": str(META_PARTITIONS)}
    o.update({k: v for k, v in s3_server.broker_overrides("tiered").items()
              if not k.endswith((".access.key.id", ".secret.access.key"))})
    b = broker_factory(overrides=o, start=False)
    b.env = {"AWS_SHARED_CREDENTIALS_FILE": str(creds),
             "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
             "AWS_PROFILE": "default", "AWS_EC2_METADATA_DISABLED": "true",
             "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None}
    b.start()
    kh.ck_create_topic(b.bootstrap, topic, config=tier_config(65536))
    gens = [kh.make_record(i, value_size=300) for i in range(2000)]
    res = produce(b.bootstrap, topic, gens)
    kh.wait_until(lambda: "remote copy stopped" in b.log_text(), timeout=60,
                  what="a failed upload with the wrong profile's keys")
    assert not segment_objects(s3_server, "tiered", topic)
    b.stop()

    b.env["AWS_PROFILE"] = "shale-test"
    b.start()
    wait_tiered(b, topic, min_local=500)
    assert segment_objects(s3_server, "tiered", topic)
    kh.assert_matches(kh.ck_consume(b.bootstrap, topic, [0], start={0: 0}), {0: gens},
                      res.offsets, what="cold read with profile credentials")
