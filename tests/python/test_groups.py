"""Consumer groups (classic protocol) with real clients: confluent-kafka (librdkafka 2.16)
groups rebalancing under range, roundrobin and cooperative-sticky assignment, committed offsets
across a broker restart, kafka-python's group consumer, kcat -G, AdminClient group
administration, and malformed or conflicting group requests on a raw connection."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

import kafka_helpers as kh

FAST = {"group.initial.rebalance.delay.ms": "0"}


def consumer_conf(group: str, **extra) -> dict:
    conf = {"group.id": group, "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False}
    conf.update(extra)
    return conf


def produce(bootstrap: str, topic: str, start: int, count: int, partitions: int):
    p = kh.ck_producer(bootstrap)
    for i in range(start, start + count):
        p.produce(topic, key=str(i).encode(), value=str(i).encode(), partition=i % partitions)
    assert p.flush(30) == 0


class GroupMember:
    """A confluent-kafka consumer in its own thread: consumes, records values, and commits
    synchronously after each batch (so a rebalance never hands out uncommitted work)."""

    def __init__(self, bootstrap: str, topic: str, group: str, strategy: str, seen: list,
                 lock: threading.Lock):
        conf = consumer_conf(group, **{"partition.assignment.strategy": strategy})
        self.c = kh.ck_consumer(bootstrap, **conf)
        self.c.subscribe([topic])
        self.topic = topic
        self.seen, self.lock = seen, lock
        self.stop = threading.Event()
        self.errors: list = []
        self.log: list = []
        self.assignment: list = []
        self.history: list = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        from confluent_kafka import KafkaException, TopicPartition
        while not self.stop.is_set():
            msgs = self.c.consume(num_messages=500, timeout=0.2)
            assignment = sorted(tp.partition for tp in self.c.assignment())
            if assignment != self.assignment:
                self.history.append((round(time.monotonic() % 1000, 2), assignment))
            self.assignment = assignment
            last = {}
            for m in msgs:
                if m.error():
                    self.errors.append(str(m.error()))
                    continue
                with self.lock:
                    self.seen.append(int(m.value()))
                    self.log.append((round(time.monotonic() % 1000, 2), m.partition(), m.offset()))
                last[m.partition()] = m.offset() + 1
            if last:
                try:
                    self.c.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in last.items()],
                                  asynchronous=False)
                except KafkaException as exc:
                    self.errors.append(f"commit: {exc}")

    def close(self):
        self.stop.set()
        self.thread.join(30)
        self.c.close()


def wait_consumed(seen: list, lock, n: int, what: str, timeout: float = 45):
    def ok():
        with lock:
            return len(set(seen)) >= n
    kh.wait_until(ok, timeout=timeout, interval=0.1, what=what)


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_group_of_three_rebalances_exactly_once(broker_factory, strategy):
    b = broker_factory(FAST)
    topic, group, parts = f"g6-{strategy}", f"grp-{strategy}", 6
    kh.ck_create_topic(b.bootstrap, topic, parts)
    seen, lock = [], threading.Lock()
    members = [GroupMember(b.bootstrap, topic, group, strategy, seen, lock) for _ in range(3)]
    everyone = list(members)
    # Records are produced only once a rebalance has settled, so no consumed-but-uncommitted
    # record is ever in flight while partitions move (that window is the client's business).
    try:
        kh.wait_until(lambda: sorted(p for m in members for p in m.assignment) == list(range(6))
                      and all(len(m.assignment) == 2 for m in members),
                      timeout=30, what="two partitions per member")
        produce(b.bootstrap, topic, 0, 300, parts)
        wait_consumed(seen, lock, 300, "first 300 records")
        # One member leaves: the other two take over its partitions.
        members.pop().close()
        kh.wait_until(lambda: sorted(p for m in members for p in m.assignment) == list(range(6)),
                      timeout=30, what="two members own all six partitions")
        produce(b.bootstrap, topic, 300, 300, parts)
        wait_consumed(seen, lock, 600, "records after a member left")
        # A new member joins and gets a share.
        members.append(GroupMember(b.bootstrap, topic, group, strategy, seen, lock))
        everyone.append(members[-1])
        kh.wait_until(lambda: all(len(m.assignment) == 2 for m in members)
                      and sorted(p for m in members for p in m.assignment) == list(range(6)),
                      timeout=30, what="the joining member gets partitions")
        produce(b.bootstrap, topic, 600, 300, parts)
        wait_consumed(seen, lock, 900, "records after a member joined")
        time.sleep(0.5)
        with lock:
            dups = len(seen) - len(set(seen))
            assert sorted(set(seen)) == list(range(900))
        assert dups == 0, (f"{dups} records consumed twice; errors {[m.errors for m in everyone]}; "
                           f"history {[m.history for m in everyone]}; "
                           f"logs {[(m.log[0], m.log[-1], len(m.log)) for m in everyone if m.log]}")
        assert not [e for m in members for e in m.errors], [m.errors for m in members]
    finally:
        for m in members:
            m.close()


def test_committed_offsets_survive_restart(broker_factory):
    from confluent_kafka import TopicPartition
    b = broker_factory(FAST)
    topic, group = "restart-offsets", "restart-group"
    kh.ck_create_topic(b.bootstrap, topic, 3)
    produce(b.bootstrap, topic, 0, 90, 3)
    c = kh.ck_consumer(b.bootstrap, **consumer_conf(group))
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 60 and time.monotonic() < deadline:
        for m in c.consume(num_messages=60 - len(got), timeout=0.5):
            assert not m.error(), m.error()
            got.append(m)
    assert len(got) == 60
    c.commit(asynchronous=False, offsets=[
        TopicPartition(topic, p, max(m.offset() for m in got if m.partition() == p) + 1)
        for p in {m.partition() for m in got}])
    committed = {tp.partition: tp.offset for tp in
                 c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)}
    c.close()
    b.restart()
    c2 = kh.ck_consumer(b.bootstrap, **consumer_conf(group))
    after = {tp.partition: tp.offset for tp in
             c2.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)}
    assert after == committed
    c2.subscribe([topic])
    rest = []
    deadline = time.monotonic() + 30
    while len(rest) < 30 and time.monotonic() < deadline:
        for m in c2.consume(num_messages=100, timeout=0.5):
            assert not m.error(), m.error()
            rest.append(int(m.value()))
    values = sorted([int(m.value()) for m in got] + rest)
    assert values == list(range(90)), "resumed exactly at the committed offsets"
    for m in c2.consume(num_messages=100, timeout=1.0):
        raise AssertionError(f"unexpected extra record {m.value()}")


def test_kafka_python_group_consumer(broker_factory):
    from kafka import TopicPartition
    b = broker_factory(FAST)
    topic, group = "kp-group", "kp-group-id"
    kh.ck_create_topic(b.bootstrap, topic, 2)
    produce(b.bootstrap, topic, 0, 40, 2)
    c = kh.kp_consumer(b.bootstrap, group_id=group, enable_auto_commit=False,
                       session_timeout_ms=10000, heartbeat_interval_ms=1000)
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 40
    while len(got) < 40 and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            got += [int(r.value) for r in recs]
    assert sorted(got) == list(range(40))
    c.commit()
    assert {p: c.committed(TopicPartition(topic, p)) for p in range(2)} == {0: 20, 1: 20}
    c.close()
    # The same group resumes at the end: nothing left to read.
    c2 = kh.kp_consumer(b.bootstrap, group_id=group, enable_auto_commit=False)
    assert c2.committed(TopicPartition(topic, 0)) == 20
    c2.close()


@pytest.mark.parametrize("lib", ["debian", "wheel"])
def test_kcat_balanced_consumer(broker_factory, kcat_bin, lib):
    b = broker_factory(FAST)
    topic = f"kcat-g-{lib}"
    kh.ck_create_topic(b.bootstrap, topic, 3)
    produce(b.bootstrap, topic, 0, 30, 3)
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if lib == "wheel":
        env["LD_LIBRARY_PATH"] = str(kh_rdk_dir())
    args = [kcat_bin, "-b", b.bootstrap, "-X", "broker.address.family=v4", "-G", f"kg-{lib}",
            "-o", "beginning", "-c", "30", "-f", "%s\\n", topic]
    p = subprocess.run(args, env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    values = sorted(int(x) for x in p.stdout.split())
    assert values == list(range(30)), p.stderr[-3000:]
    # kcat auto-commits; the group's offsets are visible to any client.
    from confluent_kafka import TopicPartition
    c = kh.ck_consumer(b.bootstrap, **{"group.id": f"kg-{lib}"})
    kh.wait_until(lambda: sum(tp.offset for tp in c.committed(
        [TopicPartition(topic, p) for p in range(3)], timeout=10)) == 30,
        timeout=20, what="kcat's committed offsets")


def kh_rdk_dir():
    from conftest import REPO
    return REPO / ".rdk"


def test_admin_list_describe_delete(broker_factory):
    from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
    b = broker_factory(FAST)
    topic = "admin-groups"
    kh.ck_create_topic(b.bootstrap, topic, 2)
    produce(b.bootstrap, topic, 0, 10, 2)
    admin = kh.ck_admin(b.bootstrap)
    active = kh.ck_consumer(b.bootstrap, **consumer_conf("active-group", **{"client.id": "cid"}))
    active.subscribe([topic])
    kh.wait_until(lambda: active.consume(num_messages=10, timeout=0.3) is not None
                  and len(active.assignment()) == 2, timeout=30, what="active member assigned")
    idle = kh.ck_consumer(b.bootstrap, **consumer_conf("idle-group"))
    idle.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)],
                asynchronous=False)
    idle.close()

    listed = admin.list_consumer_groups(request_timeout=10).result()
    ids = {g.group_id: g for g in listed.valid}
    assert {"active-group", "idle-group"} <= set(ids), ids
    stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE},
                                        request_timeout=10).result()
    assert [g.group_id for g in stable.valid] == ["active-group"]

    desc = admin.describe_consumer_groups(["active-group", "idle-group"], request_timeout=10)
    d = desc["active-group"].result()
    assert d.state == ConsumerGroupState.STABLE
    assert d.partition_assignor == "range"
    assert len(d.members) == 1 and d.members[0].client_id == "cid"
    # The member's host is its connection's peer address, as Kafka reports it.
    assert d.members[0].host == "/127.0.0.1", d.members[0].host
    assert sorted(tp.partition for tp in d.members[0].assignment.topic_partitions) == [0, 1]
    assert desc["idle-group"].result().state == ConsumerGroupState.EMPTY

    offs = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("idle-group")])
    got = {tp.partition: tp.offset for tp in offs["idle-group"].result().topic_partitions}
    assert got == {0: 3, 1: 4}
    # OffsetDelete, OffsetFetch for several groups and batched LeaveGroup through kafka-python's
    # admin client (confluent-kafka's Python AdminClient has no offset deletion).
    from kafka import TopicPartition as KTP
    kadmin = kh.kp_admin(b.bootstrap)
    active.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    res = kadmin.delete_group_offsets("active-group", [KTP(topic, 0)])
    assert "GroupSubscribedToTopic" in repr(res), res
    res = kadmin.delete_group_offsets("idle-group", [KTP(topic, 0)])
    assert "NoError" in repr(res), res
    both = kadmin.list_group_offsets({"idle-group": None, "active-group": None})
    assert {tp.partition: o.offset for tp, o in both["idle-group"].items()} == {1: 4}, both
    assert {tp.partition: o.offset for tp, o in both["active-group"].items()} == {0: 1}, both
    offs = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("idle-group")])
    got = {tp.partition: tp.offset for tp in offs["idle-group"].result().topic_partitions
           if tp.offset >= 0}
    assert got == {1: 4}, got

    # Only empty groups can be deleted.
    with pytest.raises(Exception):
        admin.delete_consumer_groups(["active-group"], request_timeout=10)["active-group"].result()
    admin.delete_consumer_groups(["idle-group"], request_timeout=10)["idle-group"].result()
    listed = admin.list_consumer_groups(request_timeout=10).result()
    assert "idle-group" not in {g.group_id for g in listed.valid}
    active.close()


# -- raw protocol ------------------------------------------------------------------------------
API_OFFSET_COMMIT, API_JOIN_GROUP, API_HEARTBEAT, API_SYNC_GROUP = 8, 11, 12, 14
REBALANCE_IN_PROGRESS = 27
INCONSISTENT_GROUP_PROTOCOL, ILLEGAL_GENERATION, MEMBER_ID_REQUIRED = 23, 22, 79
OFFSET_METADATA_TOO_LARGE, COORDINATOR_NOT_AVAILABLE = 12, 15


def join_v5(c, group, member, protocol_type, metadata=b"m"):
    body = (kh.string(group) + kh.i32(6000) + kh.i32(6000) + kh.string(member) + kh.string(None)
            + kh.string(protocol_type) + kh.array([kh.string("range") + kh.kbytes(metadata)]))
    r = c.recv_response(c.send_request(API_JOIN_GROUP, 5, body))
    r.i32()
    err, gen = r.i16(), r.i32()
    r.string()
    r.string()
    return err, gen, r.string()


def heartbeat_v3(c, group, gen, member):
    body = kh.string(group) + kh.i32(gen) + kh.string(member) + kh.string(None)
    r = c.recv_response(c.send_request(API_HEARTBEAT, 3, body))
    r.i32()
    return r.i16()


def commit_v7(c, group, gen, member, metadata):
    body = (kh.string(group) + kh.i32(gen) + kh.string(member) + kh.string(None)
            + kh.array([kh.string("bad-t") + kh.array(
                [kh.i32(0) + kh.i64(1) + kh.i32(-1) + kh.string(metadata)])]))
    r = c.recv_response(c.send_request(API_OFFSET_COMMIT, 7, body))
    r.i32()
    r.i32()
    r.string()
    r.i32()
    assert r.i32() == 0
    return r.i16()


def test_bad_group_requests_keep_coordinator_healthy(broker_factory):
    b = broker_factory(FAST)
    kh.ck_create_topic(b.bootstrap, "bad-t", 1)
    with kh.RawConnection(b.host, b.port) as c:
        # FindCoordinator v1 for a transactional id: this broker coordinates it.
        r = c.recv_response(c.send_request(kh.API_FIND_COORDINATOR, 1, kh.string("tx") + kh.i8(1)))
        r.i32()
        assert r.i16() == 0
        r.string()
        assert (r.i32(), r.string(), r.i32()) == (1, b.host, b.port)
        # An unknown key type is an invalid request.
        r = c.recv_response(c.send_request(kh.API_FIND_COORDINATOR, 1, kh.string("x") + kh.i8(2)))
        r.i32()
        assert r.i16() == kh.INVALID_REQUEST
        err, _, member = join_v5(c, "bad", "", "consumer")
        assert err == MEMBER_ID_REQUIRED
        err, gen, member2 = join_v5(c, "bad", member, "consumer")
        assert (err, member2) == (0, member)
        # A different protocol type for the same group.
        err, _, _ = join_v5(c, "bad", "", "connect")
        assert err == INCONSISTENT_GROUP_PROTOCOL
        # Wrong generation.
        assert heartbeat_v3(c, "bad", gen + 7, member) == ILLEGAL_GENERATION
        assert heartbeat_v3(c, "bad", gen, member) == 0
        # Huge subscription metadata (1 MiB) from another group: accepted and carried as is.
        err, _, m = join_v5(c, "huge", "", "consumer")
        err, _, _ = join_v5(c, "huge", m, "consumer", metadata=b"x" * (1 << 20))
        assert err == 0
        # Commits before SyncGroup: REBALANCE_IN_PROGRESS; after it, metadata over
        # offset.metadata.max.bytes is refused per partition.
        assert commit_v7(c, "bad", gen, member, "x") == REBALANCE_IN_PROGRESS
        body = (kh.string("bad") + kh.i32(gen) + kh.string(member) + kh.string(None)
                + kh.array([kh.string(member) + kh.kbytes(b"assignment")]))
        r = c.recv_response(c.send_request(API_SYNC_GROUP, 3, body))
        r.i32()
        assert (r.i16(), r.kbytes()) == (0, b"assignment")
        assert commit_v7(c, "bad", gen, member, "x" * 5000) == OFFSET_METADATA_TOO_LARGE
        assert commit_v7(c, "bad", gen, member, "x" * 4096) == 0
        # Truncated JoinGroup body: the connection is closed, the broker survives.
        c.send_request(API_JOIN_GROUP, 5, kh.string("bad") + b"\x00")
        assert c.wait_closed()
    with kh.RawConnection(b.host, b.port) as c:
        assert heartbeat_v3(c, "bad", gen, member) == 0
    b.assert_running()


def test_initial_rebalance_delay(broker_factory):
    """With the default 3 s delay, a lone first member waits for more members."""
    b = broker_factory({"group.initial.rebalance.delay.ms": "1500"})
    with kh.RawConnection(b.host, b.port) as c:
        err, _, member = join_v5(c, "delayed", "", "consumer")
        started = time.monotonic()
        err, gen, _ = join_v5(c, "delayed", member, "consumer")
        waited = time.monotonic() - started
    assert (err, gen) == (0, 1)
    assert 1.3 <= waited < 6, waited
