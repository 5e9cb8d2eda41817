"""Client quotas against the real `shale` process.

* AlterClientQuotas / DescribeClientQuotas on the wire (neither confluent-kafka nor kafka-python
  has these admin calls): quotas for a user, a client id, defaults and user+client-id, Kafka's
  filters (exact, default, specified; strict), INVALID_REQUEST for a bad key or entity, removal,
  and the quotas surviving a restart (ClientQuotaRecords in the metadata log).
* A confluent-kafka producer over its `producer_byte_rate` is throttled to within 10% of the
  quota (measured from its delivery reports) while a second producer on the same broker, with
  no quota, runs far faster; a consumer over its `consumer_byte_rate` likewise.
* With ACLs on, Alter needs ALTER_CONFIGS and Describe DESCRIBE_CONFIGS on the cluster.
* `controller_mutation_rate`: kafka-python (CreateTopics v7, DeleteTopics v6) gets
  THROTTLING_QUOTA_EXCEEDED once its bucket is empty; librdkafka (CreateTopics v4) is served and
  its connection rests for the throttle time.
* `connection_creation_rate`: connections from an address over its quota are closed unserved;
  another address is unaffected.
"""

from __future__ import annotations

import struct
import threading
import time

from confluent_kafka import TopicPartition

import kafka_helpers as kh

API_ALTER, API_DESCRIBE = 49, 48
INVALID_REQUEST, CLUSTER_AUTHORIZATION_FAILED = 42, 31
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2


def f64(v: float) -> bytes:
    return struct.pack(">d", v)


def entity(parts: dict) -> bytes:
    return kh.array([kh.string(t) + kh.string(n) for t, n in parts.items()])


def alter(conn: kh.RawConnection, entries: list, validate_only: bool = False) -> list:
    """entries: [(entity dict, {key: value or None})] -> [(error code, message)]."""
    body = kh.array([
        entity(e) + kh.array([kh.string(k) + f64(v or 0.0) + kh.boolean(v is None)
                              for k, v in ops.items()])
        for e, ops in entries]) + kh.boolean(validate_only)
    r = conn.recv_response(conn.send_request(API_ALTER, 0, body))
    r.i32()
    out = r.array(lambda x: (x.i16(), x.string(), x.array(lambda y: (y.string(), y.string()))))
    return [(code, message) for code, message, _ in out]


def describe(conn: kh.RawConnection, components: list, strict: bool = False):
    """components: [(type, match type, name)] -> (error code, {entity tuple: {key: value}})."""
    body = kh.array([kh.string(t) + kh.i8(m) + kh.string(n) for t, m, n in components]) + \
        kh.boolean(strict)
    r = conn.recv_response(conn.send_request(API_DESCRIBE, 0, body))
    r.i32()
    code, _ = r.i16(), r.string()
    entries = r.array(lambda x: (
        tuple(x.array(lambda y: (y.string(), y.string()))),
        dict(x.array(lambda y: (y.string(), struct.unpack(">d", y.take(8))[0])))))
    return code, dict(entries or [])


def set_quota(b, parts: dict, key: str, value):
    with kh.RawConnection("127.0.0.1", b.port) as c:
        assert alter(c, [(parts, {key: value})]) == [(0, None)]


# ------------------------------------------------------------------------------------------
def test_quotas_are_altered_described_and_kept(broker_factory):
    b = broker_factory()
    with kh.RawConnection("127.0.0.1", b.port) as c:
        results = alter(c, [
            ({"user": "alice"}, {"producer_byte_rate": 1048576.0, "request_percentage": 50.0}),
            ({"user": None}, {"consumer_byte_rate": 2048.0}),
            ({"user": "alice", "client-id": "app"}, {"producer_byte_rate": 4096.0}),
            ({"client-id": "app"}, {"bogus_rate": 1.0}),
            ({"ip": "10.0.0.1", "user": "x"}, {"connection_creation_rate": 5.0}),
            ({"client-id": "app"}, {"producer_byte_rate": 10.5}),
        ])
        assert [code for code, _ in results] == [0, 0, 0] + [INVALID_REQUEST] * 3
        assert "bogus_rate" in results[3][1]
        code, all_users = describe(c, [("user", MATCH_SPECIFIED, None)])
        assert code == 0 and set(all_users) == {
            (("user", "alice"),), (("client-id", "app"), ("user", "alice"))}
        _, exact = describe(c, [("user", MATCH_EXACT, "alice")], strict=True)
        assert exact == {(("user", "alice"),): {"producer_byte_rate": 1048576.0,
                                                "request_percentage": 50.0}}
        _, default = describe(c, [("user", MATCH_DEFAULT, None)])
        assert default == {(("user", None),): {"consumer_byte_rate": 2048.0}}
        # Removing a key, then a validate-only change that writes nothing.
        assert alter(c, [({"user": "alice"}, {"request_percentage": None})]) == [(0, None)]
        assert alter(c, [({"user": "bob"}, {"producer_byte_rate": 5.0})], True) == [(0, None)]
    b.restart()
    with kh.RawConnection("127.0.0.1", b.port) as c:
        _, users = describe(c, [("user", MATCH_SPECIFIED, None)], strict=True)
        assert users == {(("user", "alice"),): {"producer_byte_rate": 1048576.0}}


def acked_rate(b, client_id: str, seconds: float, warmup: float, size: int = 16384,
               pace: float | None = None) -> float:
    """Bytes per second a producer gets acknowledged between `warmup` and `seconds`.

    With `pace` (bytes per second) the producer offers no more than that, so a test's disk use
    stays small (a flat-out producer writes gigabytes in ten seconds)."""
    # One request in flight: each one queued behind a throttle would be throttled in turn
    # (five in flight made the final flush take 20 s).
    p = kh.ck_producer(b.bootstrap, **{"client.id": client_id, "linger.ms": 1,
                                       "acks": 1, "batch.size": 65536,
                                       "max.in.flight.requests.per.connection": 1})
    acked = []
    value = b"q" * size
    start = time.monotonic()

    def done(err, _msg):
        if err is None:
            acked.append(time.monotonic() - start)
    offered = 0
    while (elapsed := time.monotonic() - start) < seconds:
        if pace is not None and offered > pace * elapsed:
            p.poll(0.001)
            continue
        try:
            p.produce("quota", value, callback=done)
            offered += size
        except BufferError:
            p.poll(0.01)
        p.poll(0)
    p.purge(in_flight=False)  # what is still queued would take a throttled producer long to send
    p.flush(30)
    in_window = [t for t in acked if warmup <= t < seconds]
    return len(in_window) * size / (seconds - warmup)


def test_a_producer_over_its_quota_is_throttled_and_others_are_not(broker_factory):
    # Three 1-second windows: the rate settles within seconds (Kafka's default is eleven).
    b = broker_factory({"quota.window.num": "3"})
    kh.ck_create_topic(b.bootstrap, "quota", 1)
    quota = 512 * 1024
    set_quota(b, {"client-id": "slow"}, "producer_byte_rate", float(quota))
    other, pace = {}, 16.0 * quota
    t = threading.Thread(target=lambda: other.setdefault(
        "rate", acked_rate(b, "free", 10.0, 3.0, pace=pace)))
    t.start()
    slow = acked_rate(b, "slow", 10.0, 3.0)
    print(f"producer: throttled {slow:.0f} B/s (quota {quota}), free {other['rate']:.0f} B/s")
    t.join()
    assert abs(slow - quota) <= 0.1 * quota, f"throttled producer at {slow:.0f} B/s, quota {quota}"
    # The other client gets all it offers: 16 times the quota.
    assert other["rate"] >= 0.9 * pace, f"the unthrottled producer ran at {other['rate']:.0f} B/s"


def test_a_consumer_over_its_quota_is_throttled(broker_factory):
    b = broker_factory({"quota.window.num": "3"})
    kh.ck_create_topic(b.bootstrap, "quota", 1)
    p = kh.ck_producer(b.bootstrap)
    for _ in range(3000):  # 48 MiB
        p.produce("quota", b"c" * 16384)
        p.poll(0)
    p.flush(60)
    quota = 1024 * 1024
    set_quota(b, {"client-id": "reader"}, "consumer_byte_rate", float(quota))

    def read(client_id: str, seconds: float, warmup: float) -> float:
        c = kh.ck_consumer(b.bootstrap, **{"client.id": client_id,
                                           "max.partition.fetch.bytes": 65536})
        c.assign([TopicPartition("quota", 0, 0)])
        start, got = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            m = c.poll(0.2)
            if m is not None and not m.error() and time.monotonic() - start >= warmup:
                got += len(m.value())
        c.close()
        return got / (seconds - warmup)
    slow = read("reader", 10.0, 3.0)
    print(f"consumer: throttled {slow:.0f} B/s (quota {quota})")
    assert abs(slow - quota) <= 0.1 * quota, f"throttled consumer at {slow:.0f} B/s, quota {quota}"
    assert read("free-reader", 2.0, 0.0) > 4 * quota


def test_request_time_quota_throttles_a_busy_client(broker_factory):
    """`request_percentage`: the broker's own time on a client's requests (not their waits)."""
    b = broker_factory({"quota.window.num": "3"})
    kh.ck_create_topic(b.bootstrap, "quota", 1)
    # 0.2% of one thread: 2 ms of handling per second.
    set_quota(b, {"client-id": "busy"}, "request_percentage", 0.2)

    def metadata_per_second(client_id: str, seconds: float, warmup: float) -> float:
        done = 0
        with kh.RawConnection("127.0.0.1", b.port) as c:
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                corr = c.next_correlation_id()
                c.send_raw(kh.frame(kh.request_header(kh.API_METADATA, 1, corr, client_id)
                                    + kh.metadata_v1_body(None)))
                c.recv_response(corr)
                done += time.monotonic() - start >= warmup
        return done / (seconds - warmup)

    busy = metadata_per_second("busy", 6.0, 2.0)
    free = metadata_per_second("free", 3.0, 1.0)
    print(f"request quota: throttled {busy:.0f} Metadata/s, unthrottled {free:.0f}/s")
    assert busy * 4 < free, (busy, free)


def test_controller_mutation_rate_refuses_strict_clients_and_throttles_older_ones(broker_factory):
    # Rate 2 partitions/s over two 1-second windows: the bucket holds 4 partitions.
    b = broker_factory({"controller.quota.window.num": "2"})
    for client in ("strict-admin", "loose-admin"):
        set_quota(b, {"client-id": client}, "controller_mutation_rate", 2.0)
    from kafka.admin import KafkaAdminClient
    from kafka.errors import NodeNotReadyError
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="strict-admin")
    try:
        # KIP-599's strict mode (kafka-python sends CreateTopics v7): the topic that empties the
        # bucket is created, the next one in the request is refused with THROTTLING_QUOTA_EXCEEDED.
        started = time.monotonic()
        r = admin.create_topics({"m1": {"num_partitions": 6, "replication_factor": 1},
                                 "m2": {"num_partitions": 1, "replication_factor": 1}},
                                raise_errors=False)
        codes = {t["name"]: t["error_code"] for t in r["topics"]}
        assert codes == {"m1": 0, "m2": 89}, r
        # 6 taken from 4: two below zero, a second at 2/s; once refilled, m2 is created.
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "m2 never created"
            try:
                r = admin.create_topics({"m2": {"num_partitions": 1, "replication_factor": 1}},
                                        raise_errors=False)
            except NodeNotReadyError:  # kafka-python waits out the throttle time itself
                time.sleep(0.05)
                continue
            if r["topics"][0]["error_code"] == 0:
                break
            assert r["topics"][0]["error_code"] == 89, r
        assert time.monotonic() - started >= 0.9, "m2 was created before the bucket refilled"
        # Deleting is charged too: once m1 is deleted, its 6 partitions empty the bucket again.
        def delete(name: str) -> int:
            while True:
                assert time.monotonic() < deadline, f"{name} never deleted"
                try:
                    r = admin.delete_topics([name], raise_errors=False)
                    return r["topics"][0]["error_code"]
                except NodeNotReadyError:
                    time.sleep(0.05)
        while (code := delete("m1")) != 0:
            assert code == 89, code
        assert delete("m2") == 89
    finally:
        admin.close()

    # An older CreateTopics (librdkafka sends v4) is served whole and then throttled: the
    # response's throttle_time_ms and the connection rests that long before its next request.
    from confluent_kafka.admin import NewTopic
    loose = kh.ck_admin(b.bootstrap, **{"client.id": "loose-admin"})
    fs = loose.create_topics([NewTopic("l1", 12, 1), NewTopic("l2", 2, 1)], request_timeout=30)
    for f in fs.values():
        f.result(30)
    started = time.monotonic()
    loose.create_topics([NewTopic("l3", 1, 1)], request_timeout=30)["l3"].result(30)
    waited = time.monotonic() - started
    print(f"mutation quota: librdkafka's next CreateTopics waited {waited:.1f} s")
    # 14 taken from 4: 10 below zero, 5 s at 2/s.
    assert waited >= 3.0, f"the next request came after {waited:.1f} s"


def test_connection_creation_rate_closes_connections_over_an_address_quota(broker_factory):
    b = broker_factory({"quota.window.num": "2"})
    set_quota(b, {"ip": "127.0.0.1"}, "connection_creation_rate", 3.0)
    # Ten connections at once from 127.0.0.1: about three a second are served, the others are
    # held unanswered for the throttle time and closed.
    conns = [kh.RawConnection("127.0.0.1", b.port) for _ in range(10)]
    pending = [(c, c.send_request(18, 0, b"")) for c in conns]
    served = 0
    for c, correlation in pending:
        try:
            c.recv_response(correlation)
            served += 1
        except kh.ConnectionClosed:
            pass
        c.close()
    print(f"connection quota: {served} of 10 connections served")
    assert 2 <= served <= 5, f"{served} of 10 served at 3 connections/s"
    # Another address has no quota: all of its connections are served.
    for _ in range(10):
        with kh.RawConnection("127.0.0.1", b.port, source="127.0.0.2") as c:
            c.recv_response(c.send_request(18, 0, b""))
