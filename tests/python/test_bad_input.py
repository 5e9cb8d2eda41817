"""Hostile and malformed input over raw sockets. Each test then checks that the
broker is still alive and that a normal client (confluent-kafka) still works.

Requests are built by hand with kafka_helpers (struct-level encoding)."""

from __future__ import annotations

import random
import socket

import pytest

import kafka_helpers as kh
from kafka_helpers import Rec


def assert_healthy(broker, topic="health"):
    """The process is alive, raw ApiVersions works and confluent-kafka can
    create (if needed), produce to and read from a topic."""
    broker.assert_running()
    with kh.RawConnection(broker.host, broker.port) as c:
        assert kh.api_versions(c, 0).error_code == 0
    md = kh.raw_metadata(broker.host, broker.port, [])
    assert [b["port"] for b in md["brokers"]] == [broker.port], md
    if kh.topic_partitions(broker.host, broker.port, topic) is None:
        kh.ck_create_topic(broker.bootstrap, topic, 1)
    before = kh.ck_watermarks(broker.bootstrap, topic, [0])[0][1]
    res = kh.ck_produce(kh.ck_producer(broker.bootstrap), topic, [kh.make_record(1)],
                        partition_of=lambda i: 0, flush_timeout=30)
    assert not res.errors and res.offsets[1] == (0, before), res
    msgs = kh.ck_consume(broker.bootstrap, topic, [0], start={0: before}, timeout=30)
    assert [m.content() for m in msgs] == [kh.make_record(1).content()]


def connect(broker) -> kh.RawConnection:
    return kh.RawConnection(broker.host, broker.port, timeout=10)


# ---------------------------------------------------------------------------
# offline self-check of the hand-built batches (no broker)
# ---------------------------------------------------------------------------
def test_helper_batch_decodes_with_kafka_python():
    from kafka.record.default_records import DefaultRecordBatch
    recs = [Rec(b"k", b"v", [("a", b"1"), ("a", None)], 3), Rec(None, None, [], 9)]
    batch = DefaultRecordBatch(bytearray(kh.record_batch(recs, base_timestamp=1000)))
    assert batch.validate_crc()
    got = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    assert got == [(0, 1003, b"k", b"v", [("a", b"1"), ("a", None)]), (1, 1009, None, None, [])]
    bad = DefaultRecordBatch(bytearray(kh.record_batch(recs, corrupt_crc=True)))
    assert not bad.validate_crc()


# ---------------------------------------------------------------------------
# ApiVersions
# ---------------------------------------------------------------------------
def test_api_versions_v0_and_v3(broker):
    with connect(broker) as c:
        v0 = kh.api_versions(c, 0)
        assert v0.error_code == 0 and v0.trailing_bytes == 0
        v3 = kh.api_versions(c, 3)
        assert v3.error_code == 0 and v3.trailing_bytes == 0
    assert v0.api_keys == v3.api_keys
    keys = v3.api_keys
    for api in (kh.API_PRODUCE, kh.API_FETCH, kh.API_LIST_OFFSETS, kh.API_METADATA,
                kh.API_API_VERSIONS, kh.API_CREATE_TOPICS):
        assert api in keys, f"API {api} not advertised: {sorted(keys)}"
    assert keys[kh.API_API_VERSIONS][1] >= 3
    # librdkafka only compresses if Produce is advertised from version 0 (KAFKA-18659),
    # and only uses LZ4 if FindCoordinator v0 is advertised (its LZ4 feature check).
    assert keys[kh.API_PRODUCE][0] == 0, f"Produce range {keys[kh.API_PRODUCE]}"
    assert keys.get(kh.API_FIND_COORDINATOR, (99, -1))[0] == 0, \
        f"FindCoordinator v0 not advertised ({keys.get(kh.API_FIND_COORDINATOR)}): librdkafka sends lz4 uncompressed"


def test_api_versions_unsupported_version(broker):
    with connect(broker) as c:
        corr = c.send_request(kh.API_API_VERSIONS, 99, kh.api_versions_v3_body(), flexible_header=True)
        r = c.recv_response(corr)
        raw = r.data
        try:
            resp = kh.parse_api_versions_v0(r)
        except ValueError as exc:
            raise AssertionError(f"ApiVersions v99 answer is not v0-shaped ({exc}): {raw[:64].hex()}")
        assert resp.error_code == kh.UNSUPPORTED_VERSION
        assert kh.API_API_VERSIONS in resp.api_keys and kh.API_PRODUCE in resp.api_keys
        assert resp.trailing_bytes == 0, f"v0-shaped response expected, {resp.trailing_bytes} extra bytes"
        # The client downgrades on the same connection.
        again = kh.api_versions(c, 3)
        assert again.error_code == 0
    assert_healthy(broker)


# ---------------------------------------------------------------------------
# framing abuse
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello
    b"\x80\x00\x00\x00" + b"x" * 64,  # 2 GiB size prefix (negative as int32)
    b"\x7f\xff\xff\xff" + b"x" * 64,  # 2 GiB - 1
    b"\xff\xff\xff\xff",  # -1
], ids=["http", "tls", "2GiB", "2GiB-1", "minus1"])
def test_bad_frames_close_connection(broker, payload):
    with connect(broker) as c:
        c.send_raw(payload)
        assert c.wait_closed(10), "broker kept the connection open after a bad frame"
    assert_healthy(broker)


def test_random_garbage(broker):
    rng = random.Random(1234)
    for _ in range(20):
        body = rng.randbytes(rng.randrange(1, 300))
        with connect(broker) as c:
            try:
                c.send_raw(kh.frame(body))
            except OSError:
                continue
            outcome = c.closed_or_response(10)
            assert outcome != "hang", f"no answer and no close for garbage {body[:16].hex()}"
    assert_healthy(broker)


def test_zero_length_frame(broker):
    with connect(broker) as c:
        c.send_raw(kh.i32(0))
        assert c.closed_or_response(10) != "hang"
    assert_healthy(broker)


def test_unknown_api_key(broker):
    with connect(broker) as c:
        c.send_raw(kh.frame(kh.request_header(9999, 0, 7) + b"\x00" * 8))
        assert c.closed_or_response(10) != "hang", "unknown API key: neither closed nor answered"
    with connect(broker) as c:  # a known API at an unsupported version
        c.send_raw(kh.frame(kh.request_header(kh.API_METADATA, 999, 8) + b"\x00" * 8))
        assert c.closed_or_response(10) != "hang"
    assert_healthy(broker)


def test_truncated_requests(broker):
    # The frame promises more bytes than are sent, then the client half-closes.
    with connect(broker) as c:
        c.send_raw(kh.i32(100) + kh.request_header(kh.API_METADATA, 1, 1)[:10])
        c.sock.shutdown(socket.SHUT_WR)
        assert c.wait_closed(10)
    # Full frame, but the body ends early (3 topics announced, one present).
    with connect(broker) as c:
        body = kh.i32(3) + kh.string("a")
        c.send_raw(kh.frame(kh.request_header(kh.API_METADATA, 1, 2) + body))
        assert c.closed_or_response(10) != "hang"
    # A header cut inside the client id.
    with connect(broker) as c:
        c.send_raw(kh.frame(kh.i16(kh.API_METADATA) + kh.i16(1) + kh.i32(3) + kh.i16(50) + b"abc"))
        assert c.closed_or_response(10) != "hang"
    # Produce whose records length runs past the frame.
    with connect(broker) as c:
        bad = (kh.string(None) + kh.i16(-1) + kh.i32(1000) + kh.i32(1) + kh.string("t")
               + kh.i32(1) + kh.i32(0) + kh.i32(5000) + b"\x00" * 20)
        c.send_raw(kh.frame(kh.request_header(kh.API_PRODUCE, 3, 4) + bad))
        assert c.closed_or_response(10) != "hang"
    # A connection dropped mid-request.
    c = connect(broker)
    c.send_raw(kh.i32(50) + b"\x00\x03")
    c.close()
    assert_healthy(broker)


# ---------------------------------------------------------------------------
# Produce errors
# ---------------------------------------------------------------------------
def test_produce_valid_batch_then_bad_crc(broker):
    kh.ck_create_topic(broker.bootstrap, "crc", 1)
    recs = [Rec(b"k1", b"v1", [("h", b"1"), ("h", b"2")]), Rec(b"k2", b"v2", [], 1)]
    with connect(broker) as c:
        ok = kh.produce(c, "crc", 0, kh.record_batch(recs))
        assert ok["error_code"] == 0 and ok["base_offset"] == 0, ok
        bad = kh.produce(c, "crc", 0, kh.record_batch(recs, corrupt_crc=True))
        assert bad["error_code"] == kh.CORRUPT_MESSAGE, bad
        # Flipped payload byte with the old CRC.
        batch = bytearray(kh.record_batch(recs))
        batch[-1] ^= 0xFF
        bad = kh.produce(c, "crc", 0, bytes(batch))
        assert bad["error_code"] == kh.CORRUPT_MESSAGE, bad
        # Same connection still usable; the log did not move.
        ok = kh.produce(c, "crc", 0, kh.record_batch(recs))
        assert ok["error_code"] == 0 and ok["base_offset"] == 2, ok
    msgs = kh.ck_consume(broker.bootstrap, "crc", [0])
    assert [(m.offset, m.key, m.headers) for m in msgs] == [
        (0, b"k1", (("h", b"1"), ("h", b"2"))), (1, b"k2", ()),
        (2, b"k1", (("h", b"1"), ("h", b"2"))), (3, b"k2", ())]
    assert_healthy(broker)


def test_produce_malformed_batches(broker):
    kh.ck_create_topic(broker.bootstrap, "malformed", 1)
    good = kh.record_batch([Rec(b"k", b"v")])
    cases = {
        "short": good[:30],
        "bad magic": good[:16] + b"\x07" + good[17:],
        "length too big": good[:8] + kh.i32(len(good) * 4) + good[12:],
        "record count lies": _with_count(good, 50),
    }
    wrong = []
    c = connect(broker)
    try:
        for name, batch in cases.items():
            try:
                resp = kh.produce(c, "malformed", 0, batch)
            except kh.ConnectionClosed:
                c.close()
                c = connect(broker)
                continue
            # Kafka: INVALID_RECORD for "no complete batch" / wrong count, CORRUPT_MESSAGE for bad magic.
            if resp["error_code"] not in (kh.INVALID_RECORD, kh.CORRUPT_MESSAGE):
                wrong.append(f"{name}: {resp}")
    finally:
        c.close()
    assert not wrong, "malformed batches not refused with INVALID_RECORD/CORRUPT_MESSAGE:\n" + "\n".join(wrong)
    assert kh.ck_watermarks(broker.bootstrap, "malformed", [0]) == {0: (0, 0)}
    assert_healthy(broker)


def _with_count(batch: bytes, count: int) -> bytes:
    """Rewrites the record count of a batch and fixes the CRC, so only the count lies."""
    b = bytearray(batch)
    b[57:61] = kh.i32(count)
    b[kh.CRC_OFFSET:kh.CRC_OFFSET + 4] = kh.u32(kh.crc32c(bytes(b[21:])))
    return bytes(b)


def test_produce_message_too_large(broker):
    kh.ck_create_topic(broker.bootstrap, "small-max", 1, {"max.message.bytes": "1024"})
    with connect(broker) as c:
        resp = kh.produce(c, "small-max", 0, kh.record_batch([Rec(b"k", bytes(4096))]))
        assert resp["error_code"] == kh.MESSAGE_TOO_LARGE, resp
        resp = kh.produce(c, "small-max", 0, kh.record_batch([Rec(b"k", bytes(100))]))
        assert resp["error_code"] == 0, resp
    assert_healthy(broker)


def test_invalid_topic_names_raw(broker):
    with connect(broker) as c:
        md = kh.metadata_v1(c, ["bad name!"])
        assert md["topics"]["bad name!"]["error_code"] == kh.INVALID_TOPIC_EXCEPTION, md
        res = kh.create_topics_v2(c, [("bad/name", 1, 1, {}), ("ok-name", 1, 1, {}),
                                      ("x" * 300, 1, 1, {})])
        assert res["bad/name"][0] == kh.INVALID_TOPIC_EXCEPTION, res
        assert res["x" * 300][0] == kh.INVALID_TOPIC_EXCEPTION, res
        assert res["ok-name"][0] == 0, res
        resp = kh.produce(c, "bad name!", 0, kh.record_batch([Rec(b"k", b"v")]))
        assert resp["error_code"] in (kh.INVALID_TOPIC_EXCEPTION, kh.UNKNOWN_TOPIC_OR_PARTITION), resp
    assert_healthy(broker)


def test_produce_to_missing_topic_without_auto_create(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "false"})
    with connect(b) as c:
        resp = kh.produce(c, "missing", 0, kh.record_batch([Rec(b"k", b"v")]))
        assert resp["error_code"] == kh.UNKNOWN_TOPIC_OR_PARTITION, resp
    kh.ck_create_topic(b.bootstrap, "one-part", 1)
    with connect(b) as c:
        resp = kh.produce(c, "one-part", 7, kh.record_batch([Rec(b"k", b"v")]))
        assert resp["error_code"] == kh.UNKNOWN_TOPIC_OR_PARTITION, resp
    assert kh.topic_partitions(b.host, b.port, "missing") is None
    # acks=0 has no response to carry the error: the connection is closed (Kafka's rule), and
    # an acks=0 request that succeeds leaves it open.
    batch = kh.record_batch([Rec(b"k", b"v")])
    with connect(b) as c:
        c.send_request(kh.API_PRODUCE, 3, kh.produce_body("one-part", 0, batch, acks=0))
        c.recv_response(c.send_request(18, 0, b""))
        c.send_request(kh.API_PRODUCE, 3, kh.produce_body("missing", 0, batch, acks=0))
        with pytest.raises(kh.ConnectionClosed):
            c.recv_response(c.send_request(18, 0, b""))
    assert "an acks=0 produce request failed (missing-0: error 3)" in b.log_text()
    assert_healthy(b, topic="one-part")


def test_many_connections_opened_and_dropped(broker):
    socks = [connect(broker) for _ in range(200)]
    for i, c in enumerate(socks):
        if i % 2:
            c.send_raw(kh.i32(40) + b"\x00")  # half a request, then gone
        c.close()
    assert_healthy(broker)
