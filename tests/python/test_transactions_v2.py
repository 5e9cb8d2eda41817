"""Transaction version 2 (KIP-890 part 2). No client installable here drives it (librdkafka and
kafka-python stop at version 1; the Java client needs Maven Central), so the producer side is
written with kafka-python's protocol layer, which encodes every request from Kafka's own JSON
schemas: InitProducerId, Produce v12 and TxnOffsetCommit v5 (the partitions join the
transaction without AddPartitionsToTxn/AddOffsetsToTxn), EndTxn v5 (the epoch is bumped each
time and the answer names the next one). What the transactions left behind is read by the real
consumers: confluent-kafka and kafka-python at read_committed see exactly the committed records
in order, and the group's committed offset is the last committed transaction's.

On three nodes the partitions' leaders and the coordinator are different brokers, so the
leaders add the partitions with AddPartitionsToTxn v5 to the coordinator on another node; and the
coordinator crashes at each step of a commit: the next one completes it from the replicated
state (the bumped epoch and the client's transaction version are in the version-1 value) and
answers the producer's retried EndTxn as a retry, not as a zombie.

`transaction.version` itself is managed as `kafka-features.sh` does, with kafka-python's admin
client (DescribeFeatures = ApiVersions, UpdateFeatures)."""

from __future__ import annotations

import signal
import time

import pytest

import kafka_helpers as kh
from test_transactions import read_all

NOT_ENOUGH_REPLICAS = 19
COORDINATOR_LOAD_IN_PROGRESS = 14
CONCURRENT_TRANSACTIONS = 51
NOT_LEADER = 6
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
UNREACHABLE = -1  # no answer: the connection broke or the request timed out
RETRIABLE = {NOT_ENOUGH_REPLICAS, COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS,
             COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, NOT_LEADER, UNREACHABLE}


class V2Producer:
    """A transactional producer of transaction version 2, written the way KIP-890 describes the
    Java client's: kafka-python's codec and connections, the routing done here."""

    def __init__(self, bootstrap: str, txn_id: str, group: str, leaders: dict):
        from kafka.net.compat import KafkaNetClient
        self.client = KafkaNetClient(bootstrap_servers=bootstrap.split(","), client_id="tv2")
        self.client.check_version()
        self.bootstrap, self.txn_id, self.group, self.leaders = bootstrap, txn_id, group, leaders
        self.txn_node = self.coordinator(1, txn_id)
        self.group_node = self.coordinator(0, group)
        self.seq: dict = {}
        self.pid, self.epoch = self.retry(self.init_producer_id)

    def call(self, node: int, request):
        """The response, or None when the node did not answer (it may have just crashed)."""
        try:
            return self.client.send_and_receive(node, request, timeout_ms=10000)
        except Exception:  # noqa: BLE001 - a lost or timed-out request is retried by the caller
            return None

    @staticmethod
    def retry(attempt, timeout: float = 60):
        """Runs `attempt` (answering (error code, value)) until a non-retriable answer."""
        deadline = time.monotonic() + timeout
        while True:
            code, value = attempt()
            if code == 0:
                return value
            assert code in RETRIABLE and time.monotonic() < deadline, f"error {code}"
            time.sleep(0.05)

    def coordinator(self, key_type: int, key: str) -> int:
        from kafka.protocol.metadata import FindCoordinatorRequest

        def attempt():
            req = FindCoordinatorRequest(key=key, key_type=key_type, coordinator_keys=[key],
                                         min_version=4, max_version=4)
            r = self.call(self.client.least_loaded_node(), req)
            if r is None:
                return UNREACHABLE, None
            c = r.coordinators[0]
            return c.error_code, c.node_id
        return self.retry(attempt)

    def init_producer_id(self):
        from kafka.protocol.producer import InitProducerIdRequest
        req = InitProducerIdRequest(transactional_id=self.txn_id, transaction_timeout_ms=60000,
                                    producer_id=-1, producer_epoch=-1, max_version=5)
        r = self.call(self.txn_node, req)
        if r is None:
            return UNREACHABLE, None
        return r.error_code, (r.producer_id, r.producer_epoch)

    def produce(self, topic: str, partition: int, values: list) -> int:
        """One transactional batch (Produce v12, acks=all); the partition's error code."""
        from kafka.protocol.producer import ProduceRequest
        from kafka.record.default_records import DefaultRecordBatchBuilder
        seq = self.seq.get((topic, partition), 0)
        b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True,
                                      producer_id=self.pid, producer_epoch=self.epoch,
                                      base_sequence=seq, batch_size=1 << 20)
        for i, v in enumerate(values):
            b.append(i, timestamp=int(time.time() * 1000), key=None, value=v.encode(),
                     headers=[])
        records = bytes(b.build())
        Topic = ProduceRequest.TopicProduceData
        req = ProduceRequest(
            transactional_id=self.txn_id, acks=-1, timeout_ms=30000,
            topic_data=[Topic(name=topic, partition_data=[
                Topic.PartitionProduceData(index=partition, records=records)])],
            min_version=12, max_version=12)

        def attempt():
            r = self.call(self.leaders[(topic, partition)], req)
            code = UNREACHABLE if r is None else r.responses[0].partition_responses[0].error_code
            if code in (NOT_LEADER, UNREACHABLE):
                self.leaders.update(leaders_of(self.bootstrap, topic))
            return code, None
        self.retry(attempt)
        self.seq[(topic, partition)] = seq + len(values)
        return 0

    def send_offsets(self, topic: str, partition: int, offset: int):
        from kafka.protocol.producer import TxnOffsetCommitRequest
        Topic = TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
        req = TxnOffsetCommitRequest(
            transactional_id=self.txn_id, group_id=self.group, producer_id=self.pid,
            producer_epoch=self.epoch, generation_id=-1, member_id="", group_instance_id=None,
            topics=[Topic(name=topic, partitions=[Topic.TxnOffsetCommitRequestPartition(
                partition_index=partition, committed_offset=offset, committed_leader_epoch=-1,
                committed_metadata="")])],
            min_version=5, max_version=5)

        def attempt():
            r = self.call(self.group_node, req)
            code = UNREACHABLE if r is None else r.topics[0].partitions[0].error_code
            if code in (NOT_COORDINATOR, UNREACHABLE):
                self.group_node = self.coordinator(0, self.group)
            return code, None
        self.retry(attempt)

    def end(self, commit: bool):
        """EndTxn v5; continues with the producer id and epoch it answers."""
        from kafka.protocol.producer import EndTxnRequest
        req = EndTxnRequest(transactional_id=self.txn_id, producer_id=self.pid,
                            producer_epoch=self.epoch, committed=commit,
                            min_version=5, max_version=5)

        def attempt():
            r = self.call(self.txn_node, req)
            code = UNREACHABLE if r is None else r.error_code
            if code in (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, UNREACHABLE):
                self.txn_node = self.coordinator(1, self.txn_id)
            return code, None if r is None else (r.producer_id, r.producer_epoch)
        pid, epoch = self.retry(attempt)
        assert (pid, epoch) == (self.pid, self.epoch + 1), (pid, epoch, self.pid, self.epoch)
        self.pid, self.epoch = pid, epoch
        self.seq.clear()

    def close(self):
        self.client.close()


def leaders_of(bootstrap: str, topic: str) -> dict:
    md = kh.ck_admin(bootstrap).list_topics(topic, timeout=10)
    return {(topic, p): m.leader for p, m in md.topics[topic].partitions.items()}


def committed_offset(bootstrap: str, group: str, topic: str) -> int:
    from confluent_kafka import TopicPartition
    c = kh.ck_consumer(bootstrap, **{"group.id": group})
    got = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    c.close()
    return got


def run_transactions(p: V2Producer, topic: str, partitions: int, rounds: int) -> list:
    """`rounds` transactions of 3 records per partition and an offset commit; odd rounds abort.
    Returns the committed values."""
    committed = []
    for r in range(rounds):
        values = {part: [f"t{r}-p{part}-{i}" for i in range(3)] for part in range(partitions)}
        for part, vs in values.items():
            p.produce(topic, part, vs[:2])
            p.produce(topic, part, vs[2:])
        p.send_offsets(topic, 0, 100 + r)
        commit = r % 2 == 0
        p.end(commit)
        if commit:
            committed += [v for vs in values.values() for v in vs]
    return committed


def check_read_committed(bootstrap: str, topic: str, partitions: int, committed: list,
                         aborted: bool = True):
    got = read_all(bootstrap, topic, partitions, "read_committed", len(committed), timeout=60)
    assert sorted(v for _, _, v in got) == sorted(committed)
    for part in range(partitions):
        mine = [v for q, _, v in got if q == part]
        assert mine == [v for v in committed if f"-p{part}-" in v], f"partition {part} order"
    if aborted:
        everything = read_all(bootstrap, topic, partitions, "read_uncommitted",
                              2 * len(committed))
        assert len(everything) > len(committed), "aborted records are in the log"


def test_version_2_transactions_on_one_node(broker):
    kh.ck_create_topic(broker.bootstrap, "tv2", partitions=2)
    p = V2Producer(broker.bootstrap, "tv2-one", "tv2-group", leaders_of(broker.bootstrap, "tv2"))
    try:
        committed = run_transactions(p, "tv2", 2, rounds=6)
    finally:
        p.close()
    check_read_committed(broker.bootstrap, "tv2", 2, committed)
    assert committed_offset(broker.bootstrap, "tv2-group", "tv2") == 104
    # kafka-python's own read_committed consumer agrees.
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                      enable_auto_commit=False, consumer_timeout_ms=5000)
    c.assign([TopicPartition("tv2", q) for q in range(2)])
    c.seek_to_beginning()
    values = [m.value.decode() for m in c]
    c.close()
    assert sorted(values) == sorted(committed)


def finalized(bootstrap: str) -> dict:
    """{feature: (min level, max level)} of the finalized features (ApiVersions v3+)."""
    features = kh.kp_admin(bootstrap).describe_features()
    return {name: f["finalized"] for name, f in features.items() if "finalized" in f}


def test_transaction_version_is_a_feature_kafka_features_can_change(broker_factory):
    b = broker_factory()
    admin = kh.kp_admin(b.bootstrap)
    features = admin.describe_features()
    assert features["transaction.version"]["supported"] == (0, 2)
    assert features["transaction.version"]["finalized"] == (2, 2)
    from kafka.errors import InvalidUpdateVersionError
    with pytest.raises(InvalidUpdateVersionError, match="downgrade"):
        admin.update_features({"transaction.version": ("UPGRADE", 1)})
    with pytest.raises(InvalidUpdateVersionError, match="only supports versions 0-2"):
        admin.update_features({"transaction.version": ("UPGRADE", 3)})
    down = admin.update_features({"transaction.version": ("SAFE_DOWNGRADE", 0)})
    assert down == {"transaction.version": "OK"}, down
    assert "transaction.version" not in finalized(b.bootstrap)
    b.restart()
    assert "transaction.version" not in finalized(b.bootstrap), "persisted in the metadata log"
    # Version-1 clients go on as before.
    kh.ck_create_topic(b.bootstrap, "tv1", partitions=1)
    p = kh.ck_producer(b.bootstrap, **{"transactional.id": "tv1", "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("tv1", value=b"one")
    p.commit_transaction(30)
    assert [v for _, _, v in read_all(b.bootstrap, "tv1", 1, "read_committed", 1)] == ["one"]
    up = kh.kp_admin(b.bootstrap).update_features({"transaction.version": 2})
    assert up == {"transaction.version": "OK"}, up
    assert finalized(b.bootstrap)["transaction.version"] == (2, 2)
    kh.close_all_clients()


def test_version_2_transactions_across_three_nodes(shale_bin, tmp_path):
    from test_cluster import stop_all
    from test_replication import create, start_cluster
    nodes = start_cluster(shale_bin, tmp_path)
    try:
        create(nodes[0], "tv2c", 3)
        everyone = ",".join(n.bootstrap for n in nodes)
        leaders = leaders_of(everyone, "tv2c")
        p = V2Producer(everyone, "tv2-three", "tv2c-group", leaders)
        try:
            remote = {node for node in leaders.values() if node != p.txn_node}
            assert remote, "every leader is the coordinator"
            committed = run_transactions(p, "tv2c", 3, rounds=4)
        finally:
            p.close()
        check_read_committed(everyone, "tv2c", 3, committed)
        assert committed_offset(everyone, "tv2c-group", "tv2c") == 102
        # A feature change from any node reaches the active controller and every node.
        for node in nodes:
            down = kh.kp_admin(node.bootstrap).update_features(
                {"transaction.version": ("SAFE_DOWNGRADE", 1)})
            assert down == {"transaction.version": "OK"}, down
            kh.wait_until(lambda: all(finalized(n.bootstrap).get("transaction.version") == (1, 1)
                                      for n in nodes), 20, what="transaction.version 1 everywhere")
            up = kh.kp_admin(node.bootstrap).update_features({"transaction.version": 2})
            assert up == {"transaction.version": "OK"}, up
            kh.wait_until(lambda: all(finalized(n.bootstrap).get("transaction.version") == (2, 2)
                                      for n in nodes), 20, what="transaction.version 2 everywhere")
    finally:
        kh.close_all_clients()
        stop_all(nodes)


def test_version_2_commits_survive_coordinator_crashes(shale_bin, tmp_path):
    from test_cluster import live_brokers, stop_all
    from test_replication import EXTRA, create, start_cluster
    from test_transactions_crash import POINTS, arm
    crash_file = tmp_path / "crash-point"
    nodes = start_cluster(shale_bin, tmp_path, EXTRA + f"shale.debug.crash.file={crash_file}\n")
    try:
        create(nodes[0], "tv2k", 3)
        everyone = ",".join(n.bootstrap for n in nodes)
        p = V2Producer(everyone, "tv2-crash", "tv2k-group", leaders_of(everyone, "tv2k"))
        committed = []
        try:
            for point in POINTS:
                values = [f"{point}-p{part}-{i}" for part in range(3) for i in range(3)]
                for part in range(3):
                    p.produce("tv2k", part, [v for v in values if f"-p{part}-" in v])
                arm(crash_file, point)
                p.end(True)  # retried against the next coordinator when the answer is lost
                committed += values
                kh.wait_until(lambda: any(not n.alive() for n in nodes), 30,
                              what=f"the coordinator crashing at {point}")
                dead = next(n for n in nodes if not n.alive())
                assert dead.proc.returncode == -signal.SIGABRT, dead.proc.returncode
                dead.start()
                kh.wait_until(lambda: live_brokers(nodes[0] if nodes[0] is not dead
                                                   else nodes[1]) == {1, 2, 3}, 60,
                              what=f"node {dead.node_id} back")
        finally:
            p.close()
        check_read_committed(everyone, "tv2k", 3, committed, aborted=False)
    finally:
        kh.close_all_clients()
        stop_all(nodes)
