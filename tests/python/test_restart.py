"""Durability across restarts: a clean SIGTERM restart must return every record
byte for byte; after SIGKILL in the middle of an acks=all produce, every
acknowledged record must be back at its acknowledged offset and the log must
hold nothing but valid records. Also `shale dump-log` on a real segment."""

from __future__ import annotations

import dataclasses
import re
import threading

import kafka_helpers as kh
from kafka_helpers import make_record

SEGMENT_BYTES = 1024 * 1024  # small segments: the restart must rebuild several per partition


def crash_record(i: int) -> kh.Gen:
    """Like make_record but always keyed, so any record in the log can be identified."""
    return dataclasses.replace(make_record(i, value_size=300 + i % 200), key=f"key-{i}".encode())


def test_clean_restart_roundtrip(broker_factory):
    b = broker_factory({"log.segment.bytes": str(SEGMENT_BYTES)})
    parts = 3
    kh.ck_create_topic(b.bootstrap, "durable", parts)
    kh.ck_create_topic(b.bootstrap, "durable-z", 1, {"compression.type": "producer"})
    gens = [make_record(i, value_size=(i * 37) % 1500) for i in range(12_000)]
    res = kh.ck_produce(kh.ck_producer(b.bootstrap, acks="all"), "durable", gens,
                        partition_of=lambda i: i % parts)
    assert not res.errors
    gz = [make_record(i) for i in range(5000)]
    resz = kh.ck_produce(kh.ck_producer(b.bootstrap, **{"compression.type": "gzip"}), "durable-z", gz,
                         partition_of=lambda i: 0)
    assert not resz.errors
    by_part = {p: [g for g in gens if g.i % parts == p] for p in range(parts)}

    before = kh.ck_consume(b.bootstrap, "durable", range(parts))
    kh.assert_matches(before, by_part, res.offsets, what="before restart")
    before_z = kh.ck_consume(b.bootstrap, "durable-z", [0])
    wm_before = kh.ck_watermarks(b.bootstrap, "durable", range(parts))

    segs = sorted(b.data_dir.glob("durable-0/*.log"))
    assert len(segs) >= 2, f"expected several segments with log.segment.bytes={SEGMENT_BYTES}: {segs}"

    b.stop()
    b.start()

    assert kh.ck_watermarks(b.bootstrap, "durable", range(parts)) == wm_before
    after = kh.ck_consume(b.bootstrap, "durable", range(parts))
    order = lambda msgs: sorted(msgs, key=lambda m: (m.partition, m.offset))  # noqa: E731
    assert order(after) == order(before), "records differ after a clean restart"
    after_z = kh.ck_consume(b.bootstrap, "durable-z", [0])
    assert after_z == before_z
    kp = kh.kp_consume(b.bootstrap, "durable", range(parts))
    kh.assert_matches(kp, by_part, res.offsets, what="kafka-python after restart")

    # Appends continue at the old log end.
    more = [make_record(i) for i in range(12_000, 12_030)]
    res2 = kh.ck_produce(kh.ck_producer(b.bootstrap), "durable", more, partition_of=lambda i: 0)
    assert not res2.errors
    assert min(off for p, off in res2.offsets.values()) == wm_before[0][1]

    # Topic configs survive too.
    from confluent_kafka.admin import ConfigResource, ResourceType
    admin = kh.ck_admin(b.bootstrap)
    r = ConfigResource(ResourceType.TOPIC, "durable-z")
    cfg = admin.describe_configs([r], request_timeout=20)[r].result(timeout=30)
    assert cfg["compression.type"].value == "producer"


def test_sigkill_mid_produce(broker_factory):
    b = broker_factory({"log.segment.bytes": str(SEGMENT_BYTES)})
    parts = 2
    topic = "crashy"
    kh.ck_create_topic(b.bootstrap, topic, parts)

    acked: dict = {}  # i -> (partition, offset)
    failed: list = []
    stop = threading.Event()
    lock = threading.Lock()
    thread_error: list = []

    def produce_loop():
        try:
            p = kh.ck_producer(b.bootstrap, acks="all", **{"message.timeout.ms": 8000,
                                                           "linger.ms": 2, "retries": 0})
            i = 0
            while not stop.is_set() and i < 1_000_000:
                g = crash_record(i)

                def cb(err, msg, i=i):
                    with lock:
                        if err is None:
                            acked[i] = (msg.partition(), msg.offset())
                        else:
                            failed.append(i)
                try:
                    p.produce(topic, partition=i % parts, key=g.key, value=g.value,
                              timestamp=g.timestamp, headers=list(g.headers), on_delivery=cb)
                    i += 1
                except BufferError:
                    p.poll(0.05)
                p.poll(0)
            p.flush(30)
        except Exception as exc:  # noqa: BLE001 - surfaced by the main thread
            thread_error.append(exc)

    t = threading.Thread(target=produce_loop, daemon=True)
    t.start()
    try:
        kh.wait_until(lambda: len(acked) >= 30_000 or thread_error, timeout=120,
                      what="30k acknowledged records before the kill")
        assert not thread_error, thread_error
        b.kill()
        killed_at = len(acked)
    finally:
        stop.set()
        t.join(timeout=60)
    assert not t.is_alive(), "producer thread did not finish"
    assert not thread_error, thread_error

    b.start()
    with lock:
        acked_now = dict(acked)
    assert len(acked_now) >= killed_at

    wm = kh.ck_watermarks(b.bootstrap, topic, range(parts))
    msgs = kh.ck_consume(b.bootstrap, topic, range(parts))
    kh.assert_offsets_contiguous(msgs, what="after SIGKILL")
    by_pos = {(m.partition, m.offset): m for m in msgs}
    for p in range(parts):
        assert wm[p][1] == len([m for m in msgs if m.partition == p])

    # Every acknowledged record is there, at its offset, intact.
    missing = [(i, pos) for i, pos in acked_now.items() if pos not in by_pos]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    for i, pos in acked_now.items():
        g = crash_record(i)
        assert by_pos[pos].content() == g.content(), f"record {i} at {pos} differs"
    # Everything else in the log is a valid record of ours (maybe written but not acked).
    for m in msgs:
        i = kh.index_of_key(m.key)
        assert i is not None, f"unidentifiable record at {m.partition}/{m.offset}: {m!r:.200}"
        g = crash_record(i)
        assert m.content() == g.content(), f"garbage at {m.partition}/{m.offset}"
        assert i % parts == m.partition


def test_dump_log(broker_factory):
    b = broker_factory()
    kh.ck_create_topic(b.bootstrap, "dumped", 1)
    # Three batches built by hand so the expected output is exact.
    batches = [
        [kh.Rec(f"key-{j}-{k}".encode(), f"payload-{j}-{k}".encode(), [("hk", b"hv")], k)
         for k in range(j + 2)]
        for j in range(3)
    ]
    with kh.RawConnection(b.host, b.port) as c:
        offset = 0
        for recs in batches:
            resp = kh.produce(c, "dumped", 0, kh.record_batch(recs))
            assert resp["error_code"] == 0 and resp["base_offset"] == offset, resp
            offset += len(recs)
    b.stop()
    (seg,) = sorted(b.data_dir.glob("dumped-0/*.log"))
    p = b.run_tool("dump-log", seg)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, f"dump-log exited {p.returncode}: {p.stderr.decode(errors='replace')}"
    base_lines = [ln for ln in out.splitlines() if re.search(r"base\s*offset", ln, re.I)]
    assert len(base_lines) == 3, f"expected 3 batch lines:\n{out}"
    assert "payload-0-0" not in out, "records printed without --print-data-log"

    p = b.run_tool("dump-log", seg, "--print-data-log")
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, p.stderr
    for recs in batches:
        for r in recs:
            assert r.key.decode() in out and r.value.decode() in out, f"{r.value!r} missing:\n{out}"

    # Other files in the partition directory (indexes) must not crash the tool.
    for f in sorted(b.data_dir.glob("dumped-0/*")):
        if f.suffix in (".index", ".timeindex"):
            q = b.run_tool("dump-log", f)
            assert q.returncode == 0, f"dump-log {f.name}: {q.stderr.decode(errors='replace')}"
    q = b.run_tool("dump-log", b.data_dir / "no-such-file.log")
    assert q.returncode != 0, "dump-log of a missing file must fail"
