"""Admin APIs through confluent-kafka's AdminClient and kafka-python's
KafkaAdminClient: CreateTopics (partitions, configs, validate_only, errors),
Metadata, DescribeQuorum, DescribeConfigs / AlterConfigs / IncrementalAlterConfigs,
CreatePartitions, DeleteTopics, DeleteRecords, DescribeLogDirs and topic auto-creation."""

from __future__ import annotations

import os

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, ResourceType)

import kafka_helpers as kh

DEFAULT_PARTITIONS = 4  # num.partitions given to the admin tests' broker


@pytest.fixture
def abroker(broker_factory):
    return broker_factory({"num.partitions": str(DEFAULT_PARTITIONS)})


def ck_error_code(fut, timeout=30):
    """None on success, else the Kafka error code the future failed with."""
    try:
        fut.result(timeout=timeout)
        return None
    except KafkaException as exc:
        return exc.args[0].code()


def topic_md(admin, name):
    return admin.list_topics(topic=name, timeout=10).topics.get(name)


# Existence checks and the node id use raw Metadata v4 with allow_auto_topic_creation=false,
# so that they neither create topics nor depend on the all-topics listing tested elsewhere.
def topic_exists(broker, name) -> bool:
    return kh.topic_partitions(broker.host, broker.port, name) is not None


def node_id(broker) -> int:
    md = kh.raw_metadata(broker.host, broker.port, [])
    assert len(md["brokers"]) == 1, md["brokers"]
    return md["brokers"][0]["node_id"]


def describe(admin, restype, name) -> dict:
    res = ConfigResource(restype, name)
    return admin.describe_configs([res], request_timeout=20)[res].result(timeout=30)


def src(entry) -> int:
    return getattr(entry.source, "value", entry.source)


# ---------------------------------------------------------------------------
# CreateTopics / Metadata
# ---------------------------------------------------------------------------
def test_create_topics_confluent(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    fs = admin.create_topics([
        NewTopic("three", num_partitions=3, replication_factor=1,
                 config={"retention.ms": "12345", "cleanup.policy": "delete"}),
        NewTopic("defaults"),  # -1/-1: broker defaults (num.partitions, rf 1)
    ], request_timeout=20)
    for name, f in fs.items():
        assert ck_error_code(f) is None, name
    nid = node_id(abroker)
    kh.wait_until(lambda: topic_md(admin, "three") and len(topic_md(admin, "three").partitions) == 3,
                  what="topic three in metadata")
    t = topic_md(admin, "three")
    for pid, p in t.partitions.items():
        assert p.leader == nid and list(p.replicas) == [nid] and list(p.isrs) == [nid], (pid, p)
    kh.wait_until(lambda: topic_md(admin, "defaults")
                  and len(topic_md(admin, "defaults").partitions) == DEFAULT_PARTITIONS,
                  what="topic with default partition count")
    cfg = describe(admin, ResourceType.TOPIC, "three")
    assert cfg["retention.ms"].value == "12345"
    assert src(cfg["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def test_create_topic_errors_confluent(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    kh.ck_create_topic(abroker.bootstrap, "exists", 1)
    fs = admin.create_topics([NewTopic("exists", 1, 1)], request_timeout=20)
    assert ck_error_code(fs["exists"]) == KafkaError.TOPIC_ALREADY_EXISTS
    fs = admin.create_topics([NewTopic("rf2", 1, 2)], request_timeout=20)
    assert ck_error_code(fs["rf2"]) == KafkaError.INVALID_REPLICATION_FACTOR
    assert not topic_exists(abroker, "rf2")


def test_create_topic_validate_only(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    fs = admin.create_topics([NewTopic("vo", 2, 1)], validate_only=True, request_timeout=20)
    assert ck_error_code(fs["vo"]) is None
    fs = admin.create_topics([NewTopic("vo-bad", 1, 3)], validate_only=True, request_timeout=20)
    assert ck_error_code(fs["vo-bad"]) == KafkaError.INVALID_REPLICATION_FACTOR
    kp = kh.kp_admin(abroker.bootstrap)
    try:
        res = kp.create_topics({"vo2": {"num_partitions": 2, "replication_factor": 1}},
                               validate_only=True, raise_errors=False)
        assert [t["error_code"] for t in res["topics"]] == [0], res
    finally:
        kp.close()
    assert not topic_exists(abroker, "vo")
    assert not topic_exists(abroker, "vo2")


INVALID_NAMES = ["has space", "slash/name", "..", ".", "x" * 250, "caf\u00e9", "star*"]


@pytest.mark.parametrize("name", INVALID_NAMES, ids=lambda n: repr(n[:12]))
def test_create_invalid_topic_name(abroker, name):
    # kafka-python sends the name as is; the broker must answer INVALID_TOPIC_EXCEPTION.
    kp = kh.kp_admin(abroker.bootstrap)
    try:
        res = kp.create_topics({name: {"num_partitions": 1, "replication_factor": 1}}, raise_errors=False)
        codes = [t["error_code"] for t in res["topics"]]
        assert codes == [kh.INVALID_TOPIC_EXCEPTION], res
    finally:
        kp.close()
    # confluent-kafka: broker error 17 too, unless librdkafka refuses the name locally.
    admin = kh.ck_admin(abroker.bootstrap)
    try:
        fs = admin.create_topics([NewTopic(name, 1, 1)], request_timeout=20)
    except (ValueError, KafkaException):
        pass
    else:
        assert ck_error_code(fs[name]) == KafkaError.TOPIC_EXCEPTION
    assert not topic_exists(abroker, name)


def test_create_and_describe_topics_kafka_python(abroker):
    kp = kh.kp_admin(abroker.bootstrap)
    try:
        res = kp.create_topics({"kp-topic": {"num_partitions": 5, "replication_factor": 1,
                                             "configs": {"retention.ms": "4242"}}},
                               raise_errors=False)
        assert [t["error_code"] for t in res["topics"]] == [0], res
        res = kp.create_topics({"kp-topic": {"num_partitions": 1, "replication_factor": 1}},
                               raise_errors=False)
        assert [t["error_code"] for t in res["topics"]] == [kh.TOPIC_ALREADY_EXISTS], res
        res = kp.create_topics({"kp-rf": {"num_partitions": 1, "replication_factor": 2}},
                               raise_errors=False)
        assert [t["error_code"] for t in res["topics"]] == [kh.INVALID_REPLICATION_FACTOR], res
        kh.wait_until(lambda: "kp-topic" in kp.list_topics(), what="kp-topic listed")
        (desc,) = kp.describe_topics(["kp-topic"])
        assert desc["error_code"] == 0 and len(desc["partitions"]) == 5, desc
        cfg = kp.describe_configs([_kp_res("TOPIC", "kp-topic")], config_filter="all")
        assert cfg["topic"]["kp-topic"]["retention.ms"]["value"] == "4242", cfg
    finally:
        kp.close()


def test_metadata(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    kh.ck_create_topic(abroker.bootstrap, "md-a", 2)
    kh.ck_create_topic(abroker.bootstrap, "md-b", 1)
    md = admin.list_topics(timeout=10)
    assert md.cluster_id, "cluster id must be set"
    (nid, b), = md.brokers.items()
    assert (b.host, b.port) == ("127.0.0.1", abroker.port)
    assert md.controller_id == nid
    assert {"md-a", "md-b"} <= set(md.topics)
    assert sorted(md.topics["md-a"].partitions) == [0, 1]
    with kh.RawConnection(abroker.host, abroker.port) as c:
        raw = kh.metadata_v1(c, None)
        assert raw["trailing_bytes"] == 0
        assert {"md-a", "md-b"} <= set(raw["topics"])
        assert raw["brokers"][0]["port"] == abroker.port
        raw = kh.metadata_v1(c, ["md-b"])
        assert list(raw["topics"]) == ["md-b"]
        assert raw["topics"]["md-b"]["partitions"][0]["leader"] == nid


def test_describe_quorum_on_the_client_listener(abroker):
    """`kafka-metadata-quorum.sh --bootstrap-server` asks a broker: the single node answers for
    its quorum of one (it leads; its log end is the high watermark)."""
    from test_quorum import describe_quorum
    kh.ck_create_topic(abroker.bootstrap, "dq", 1)
    leader, epoch, hw, voters = describe_quorum(abroker.port)
    nid = next(iter(kh.raw_metadata(abroker.host, abroker.port)["brokers"]))["node_id"]
    assert leader == nid and epoch >= 0 and hw > 0, (leader, epoch, hw)
    assert voters == {nid: hw}


def test_elect_leaders_on_a_single_node(abroker):
    """kafka-leader-election.sh's ElectLeaders: the one broker already leads every partition."""
    from confluent_kafka import ElectionType
    kh.ck_create_topic(abroker.bootstrap, "el", 2)
    admin = kh.ck_admin(abroker.bootstrap)
    tps = [TopicPartition("el", p) for p in (0, 1)] + [TopicPartition("el", 7)]
    got = admin.elect_leaders(ElectionType.PREFERRED, tps).result(timeout=30)
    codes = {tp.partition: e.code() for tp, e in got.items()}
    assert codes == {0: KafkaError.ELECTION_NOT_NEEDED, 1: KafkaError.ELECTION_NOT_NEEDED,
                     7: KafkaError.UNKNOWN_TOPIC_OR_PART}, codes
    # Every partition: none needed an election, so none is listed.
    assert admin.elect_leaders(ElectionType.UNCLEAN, None).result(timeout=30) == {}


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------
def _kp_res(kind, name, configs=None):
    from kafka.admin import ConfigResource as KpConfigResource
    return KpConfigResource(kind, name, configs)


def test_describe_configs_topic_and_broker(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    kh.ck_create_topic(abroker.bootstrap, "cfg", 1, {"retention.ms": "12345"})
    cfg = describe(admin, ResourceType.TOPIC, "cfg")
    assert cfg["retention.ms"].value == "12345"
    assert cfg["cleanup.policy"].value == "delete"
    assert src(cfg["cleanup.policy"]) != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert "max.message.bytes" in cfg and "segment.bytes" in cfg
    bcfg = describe(admin, ResourceType.BROKER, str(node_id(abroker)))
    assert bcfg["num.partitions"].value == str(DEFAULT_PARTITIONS), bcfg.get("num.partitions")
    # Missing topic: UNKNOWN_TOPIC_OR_PARTITION.
    res = ConfigResource(ResourceType.TOPIC, "no-such-topic")
    assert ck_error_code(admin.describe_configs([res], request_timeout=20)[res]) == \
        KafkaError.UNKNOWN_TOPIC_OR_PART

    kp = kh.kp_admin(abroker.bootstrap)
    try:
        out = kp.describe_configs([_kp_res("TOPIC", "cfg")], config_filter="all")
        assert out["topic"]["cfg"]["retention.ms"]["value"] == "12345"
        out = kp.describe_configs([_kp_res("BROKER", str(node_id(abroker)))], config_filter="all")
        (bconf,) = out["broker"].values()
        assert bconf["num.partitions"]["value"] == str(DEFAULT_PARTITIONS)
    finally:
        kp.close()


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_alter_configs_confluent(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    kh.ck_create_topic(abroker.bootstrap, "alter", 1, {"retention.ms": "12345", "segment.ms": "600000"})
    # Legacy AlterConfigs replaces the whole set: segment.ms falls back to its default.
    res = ConfigResource(ResourceType.TOPIC, "alter", set_config={"retention.ms": "99999"})
    admin.alter_configs([res], request_timeout=20)[res].result(timeout=30)
    cfg = describe(admin, ResourceType.TOPIC, "alter")
    assert cfg["retention.ms"].value == "99999"
    assert cfg["segment.ms"].value != "600000"
    assert src(cfg["segment.ms"]) != ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    # Incremental: SET one, DELETE another, leave the rest.
    res = ConfigResource(ResourceType.TOPIC, "alter", incremental_configs=[
        ConfigEntry("segment.ms", "700000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=30)
    cfg = describe(admin, ResourceType.TOPIC, "alter")
    assert cfg["segment.ms"].value == "700000" and cfg["retention.ms"].value == "99999"
    res = ConfigResource(ResourceType.TOPIC, "alter", incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("max.message.bytes", "2048", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=30)
    cfg = describe(admin, ResourceType.TOPIC, "alter")
    assert cfg["retention.ms"].value != "99999"
    assert src(cfg["retention.ms"]) != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["max.message.bytes"].value == "2048"
    assert cfg["segment.ms"].value == "700000"

    # validate_only changes nothing; an unknown key or a bad value is rejected.
    res = ConfigResource(ResourceType.TOPIC, "alter", incremental_configs=[
        ConfigEntry("segment.ms", "800000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res], validate_only=True, request_timeout=20)[res].result(timeout=30)
    assert describe(admin, ResourceType.TOPIC, "alter")["segment.ms"].value == "700000"
    for key, value in [("no.such.config", "1"), ("retention.ms", "not-a-number")]:
        res = ConfigResource(ResourceType.TOPIC, "alter", incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
        code = ck_error_code(admin.incremental_alter_configs([res], request_timeout=20)[res])
        assert code == KafkaError.INVALID_CONFIG, (key, value, code)


def test_alter_configs_kafka_python(abroker):
    kh.ck_create_topic(abroker.bootstrap, "kp-alter", 1)
    kp = kh.kp_admin(abroker.bootstrap)
    try:
        for incremental, value in [(True, "77777"), (False, "88888")]:
            out = kp.alter_configs([_kp_res("TOPIC", "kp-alter", {"retention.ms": value})],
                                   incremental=incremental)
            assert out == {"topic": {"kp-alter": "OK"}}, out
            cfg = kp.describe_configs([_kp_res("TOPIC", "kp-alter")], config_filter="all")
            assert cfg["topic"]["kp-alter"]["retention.ms"]["value"] == value
    finally:
        kp.close()


# ---------------------------------------------------------------------------
# CreatePartitions / DeleteTopics / DeleteRecords
# ---------------------------------------------------------------------------
def test_create_partitions(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    kh.ck_create_topic(abroker.bootstrap, "grow", 2)
    fs = admin.create_partitions([NewPartitions("grow", 4)], request_timeout=20)
    assert ck_error_code(fs["grow"]) is None
    kh.wait_until(lambda: len(topic_md(admin, "grow").partitions) == 4, what="4 partitions")
    # The new partition takes writes.
    p = kh.ck_producer(abroker.bootstrap)
    res = kh.ck_produce(p, "grow", [kh.make_record(0)], partition_of=lambda i: 3)
    assert not res.errors and res.offsets[0] == (3, 0)
    # Shrinking is refused.
    fs = admin.create_partitions([NewPartitions("grow", 3)], request_timeout=20)
    assert ck_error_code(fs["grow"]) == KafkaError.INVALID_PARTITIONS
    fs = admin.create_partitions([NewPartitions("no-such", 3)], request_timeout=20)
    assert ck_error_code(fs["no-such"]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    kp = kh.kp_admin(abroker.bootstrap)
    try:
        kp.create_partitions({"grow": 6})
    finally:
        kp.close()
    kh.wait_until(lambda: len(topic_md(admin, "grow").partitions) == 6, what="6 partitions")


def test_delete_topics(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    kh.ck_create_topic(abroker.bootstrap, "doomed", 2)
    p = kh.ck_producer(abroker.bootstrap)
    assert not kh.ck_produce(p, "doomed", [kh.make_record(i) for i in range(50)],
                             partition_of=lambda i: i % 2).errors
    fs = admin.delete_topics(["doomed"], request_timeout=20)
    assert ck_error_code(fs["doomed"]) is None
    kh.wait_until(lambda: not topic_exists(abroker, "doomed"), what="doomed gone from metadata")
    fs = admin.delete_topics(["doomed"], request_timeout=20)
    assert ck_error_code(fs["doomed"]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # Re-creating the name gives an empty topic.
    kh.ck_create_topic(abroker.bootstrap, "doomed", 2)
    assert kh.ck_watermarks(abroker.bootstrap, "doomed", range(2)) == {0: (0, 0), 1: (0, 0)}

    kh.ck_create_topic(abroker.bootstrap, "kp-doomed", 1)
    kp = kh.kp_admin(abroker.bootstrap)
    try:
        res = kp.delete_topics(["kp-doomed"], raise_errors=False)
        assert [t["error_code"] for t in res["topics"]] == [0], res
    finally:
        kp.close()
    kh.wait_until(lambda: not topic_exists(abroker, "kp-doomed"), what="kp-doomed gone")


def test_describe_log_dirs_reports_space_kafka_python(abroker):
    kh.ck_create_topic(abroker.bootstrap, "spacey", 2)
    kp = kh.kp_admin(abroker.bootstrap)
    try:
        res = kp.describe_log_dirs()
    finally:
        kp.close()
    assert len(res) == 1, res
    dirs = res[0]["log_dirs"]
    assert [d["log_dir"] for d in dirs] == [str(abroker.data_dir)], dirs
    d = dirs[0]
    assert d["error_code"] == 0, d
    # The file system's capacity does not move while the test runs; usable space may.
    st = os.statvfs(abroker.data_dir)
    assert d["total_bytes"] == st.f_blocks * st.f_frsize, d
    assert 0 < d["usable_bytes"] <= d["total_bytes"], d
    parts = {(t["name"], p["partition_index"]) for t in d["topics"] for p in t["partitions"]}
    assert {("spacey", 0), ("spacey", 1)} <= parts, d


def test_delete_records(abroker):
    from kafka import TopicPartition as KpTP

    admin = kh.ck_admin(abroker.bootstrap)
    kh.ck_create_topic(abroker.bootstrap, "trim", 1)
    gens = [kh.make_record(i) for i in range(100)]
    p = kh.ck_producer(abroker.bootstrap, **{"linger.ms": 20})
    res = kh.ck_produce(p, "trim", gens, partition_of=lambda i: 0)
    assert not res.errors
    fs = admin.delete_records([TopicPartition("trim", 0, 40)], request_timeout=20)
    (fut,) = fs.values()
    assert fut.result(timeout=30).low_watermark == 40
    assert kh.ck_watermarks(abroker.bootstrap, "trim", [0]) == {0: (40, 100)}
    msgs = kh.ck_consume(abroker.bootstrap, "trim", [0])
    assert msgs[0].offset == 40
    kh.assert_matches(msgs, {0: gens[40:]}, res.offsets, what="after delete_records")
    # Beyond the high watermark: OFFSET_OUT_OF_RANGE.
    fs = admin.delete_records([TopicPartition("trim", 0, 1000)], request_timeout=20)
    (fut,) = fs.values()
    assert ck_error_code(fut) == KafkaError.OFFSET_OUT_OF_RANGE

    kp = kh.kp_admin(abroker.bootstrap)
    try:
        kp.delete_records({KpTP("trim", 0): 60})
    finally:
        kp.close()
    assert kh.ck_watermarks(abroker.bootstrap, "trim", [0]) == {0: (60, 100)}
    kc = kh.kp_consumer(abroker.bootstrap)
    try:
        assert kc.beginning_offsets([KpTP("trim", 0)]) == {KpTP("trim", 0): 60}
    finally:
        kc.close()


# ---------------------------------------------------------------------------
# Auto-creation
# ---------------------------------------------------------------------------
def test_auto_create_on_produce_and_metadata(abroker):
    admin = kh.ck_admin(abroker.bootstrap)
    p = kh.ck_producer(abroker.bootstrap)
    delivered = []
    p.produce("auto-produced", value=b"hello", on_delivery=lambda err, m: delivered.append(err))
    assert p.flush(30) == 0 and delivered == [None], delivered
    assert len(topic_md(admin, "auto-produced").partitions) == DEFAULT_PARTITIONS

    with kh.RawConnection(abroker.host, abroker.port) as c:
        md = kh.metadata_v1(c, ["auto-md"])
        assert md["topics"]["auto-md"]["error_code"] in (kh.NONE, kh.LEADER_NOT_AVAILABLE), md

        def ready():
            t = kh.metadata_v1(c, ["auto-md"])["topics"]["auto-md"]
            return t["error_code"] == 0 and len(t["partitions"]) == DEFAULT_PARTITIONS \
                and all(pp["leader"] >= 0 for pp in t["partitions"])
        kh.wait_until(ready, what="auto-created topic ready")


def test_no_auto_create_when_disabled(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "false"})
    with kh.RawConnection(b.host, b.port) as c:
        md = kh.metadata_v1(c, ["not-there"])
        assert md["topics"]["not-there"]["error_code"] == kh.UNKNOWN_TOPIC_OR_PARTITION
    p = kh.ck_producer(b.bootstrap, **{"message.timeout.ms": 3000})
    errs = []
    p.produce("not-there", value=b"x", on_delivery=lambda err, m: errs.append(err))
    p.flush(15)
    assert len(errs) == 1 and errs[0] is not None, errs
    assert not topic_exists(b, "not-there")
