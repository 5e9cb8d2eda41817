"""ACLs (`authorizer.class.name=...StandardAuthorizer`) against the real `shale` process.

Principals log in with SASL/PLAIN: `admin` is a super user, `alice` gets ACLs, `bob` none.
* confluent-kafka's and kafka-python's admin clients create, describe and delete ACLs; a
  principal without ALTER on the cluster cannot; a broker without an authorizer answers
  SECURITY_DISABLED.
* The ACL matrix: for each API a client uses, alice (with the ACL) succeeds and bob (without)
  gets Kafka's error — TOPIC_/GROUP_/CLUSTER_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED — or does not
  see the resource (Metadata, ListGroups).
* Literal, prefixed and wildcard patterns, DENY over ALLOW, hosts, `allow.everyone.if.no.acl.found`,
  and the authorized-operations fields.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   ConfigResource, NewTopic, ResourcePatternType, ResourceType)

import kafka_helpers as kh
from conftest import free_port

PASSWORDS = {"admin": "admin-pw-1", "alice": "alice-pw-2", "bob": "bob-pw-3"}
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        + " ".join(f'user_{u}="{p}"' for u, p in PASSWORDS.items()) + ";")
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
LITERAL, PREFIXED = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED


def acl_broker(broker_factory, **extra):
    b = broker_factory(start=False)
    b.sasl_port = free_port()
    b.overrides.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{b.sasl_port}",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": AUTHORIZER,
        # The PLAINTEXT listener's clients are ANONYMOUS: the test harness creates topics there.
        "super.users": "User:admin;User:ANONYMOUS",
        **extra,
    })
    return b.start()


def as_user(user: str) -> dict:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
            "sasl.username": user, "sasl.password": PASSWORDS[user]}


def admin(b, user: str):
    return kh.ck_admin(f"127.0.0.1:{b.sasl_port}", **as_user(user))


def acl(rtype, name, principal, op, perm=ALLOW, pattern=LITERAL, host="*") -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def create_acls(b, bindings, user="admin"):
    futures = admin(b, user).create_acls(bindings, request_timeout=15)
    for f in futures.values():
        f.result(timeout=15)


def error_of(future) -> int:
    with pytest.raises(KafkaException) as e:
        future.result(timeout=15)
    return e.value.args[0].code()


def produce(b, user: str, topic: str, **conf) -> list:
    """Delivery errors of one message (empty: acknowledged)."""
    p = kh.ck_producer(f"127.0.0.1:{b.sasl_port}", **as_user(user), **conf)
    errors = []
    p.produce(topic, b"v", callback=lambda err, _m: err and errors.append(err.code()))
    p.flush(30)
    return errors


def consume(b, user: str, topic: str, group: str) -> tuple[list, list]:
    """(values read, error codes) of a group consumer reading `topic` from the start."""
    c = kh.ck_consumer(f"127.0.0.1:{b.sasl_port}", **as_user(user), **{"group.id": group})
    c.subscribe([topic])
    values, errors, last = [], [], []

    def done():
        m = c.poll(0.5)
        if m is None:
            return False
        if m.error() and m.error().code() != KafkaError._PARTITION_EOF:
            errors.append(m.error().code())
            return True
        if not m.error():
            values.append(m.value())
            last.append(m)
        return bool(values)
    kh.wait_until(done, what=f"{user} reading {topic}")
    if last:
        c.commit(message=last[-1], asynchronous=False)
    c.close()
    return values, errors


# ------------------------------------------------------------------------------------------
def test_acls_are_created_described_and_deleted_by_both_admin_clients(broker_factory):
    b = acl_broker(broker_factory)
    bindings = [acl(ResourceType.TOPIC, "orders", "User:alice", AclOperation.WRITE),
                acl(ResourceType.TOPIC, "pay-", "User:alice", AclOperation.READ, pattern=PREFIXED),
                acl(ResourceType.GROUP, "*", "User:alice", AclOperation.READ)]
    create_acls(b, bindings)
    create_acls(b, bindings[:1])  # creating it again changes nothing
    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    described = admin(b, "admin").describe_acls(every, request_timeout=15).result(timeout=15)
    assert sorted(described) == sorted(bindings)
    # MATCH: every pattern covering the name "pay-eu".
    match = AclBindingFilter(ResourceType.TOPIC, "pay-eu", ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    got = admin(b, "admin").describe_acls(match, request_timeout=15).result(timeout=15)
    assert got == [bindings[1]]

    # kafka-python sees the same bindings.
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ACLResourcePatternType, ResourceType as KpResource
    kp = kh.kp_admin(f"127.0.0.1:{b.sasl_port}", security_protocol="SASL_PLAINTEXT",
                     sasl_mechanism="PLAIN", sasl_plain_username="admin",
                     sasl_plain_password=PASSWORDS["admin"])
    kp_filter = ACLFilter(principal="User:alice", host=None, operation=ACLOperation.ANY,
                          permission_type=ACLPermissionType.ANY,
                          resource_pattern=ResourcePatternFilter(KpResource.TOPIC, None,
                                                                 ACLResourcePatternType.ANY))
    acls, error = kp.describe_acls(kp_filter)
    assert error.errno == 0 and sorted(a.resource_pattern.resource_name for a in acls) == \
        ["orders", "pay-"]

    # Changing or reading ACLs needs ALTER / DESCRIBE on the cluster.
    refused = admin(b, "alice").create_acls(bindings[:1], request_timeout=15)
    assert error_of(next(iter(refused.values()))) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # (librdkafka drops DescribeAcls' top-level error: kafka-python reports it.)
    from kafka.errors import ClusterAuthorizationFailedError
    kp_bob = kh.kp_admin(f"127.0.0.1:{b.sasl_port}", security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism="PLAIN", sasl_plain_username="bob",
                         sasl_plain_password=PASSWORDS["bob"])
    with pytest.raises(ClusterAuthorizationFailedError):
        kp_bob.describe_acls(kp_filter)
    # An invalid binding is refused alone: a CLUSTER resource is named kafka-cluster.
    bad = acl(ResourceType.BROKER, "not-the-cluster", "User:alice", AclOperation.ALTER)
    futures = admin(b, "admin").create_acls([bad], request_timeout=15)
    assert error_of(futures[bad]) == KafkaError.INVALID_REQUEST

    removed = admin(b, "admin").delete_acls([AclBindingFilter(
        ResourceType.TOPIC, None, ResourcePatternType.ANY, "User:alice", None, AclOperation.ANY,
        AclPermissionType.ANY)], request_timeout=15)
    assert sorted(next(iter(removed.values())).result(timeout=15)) == sorted(bindings[:2])
    left = admin(b, "admin").describe_acls(every, request_timeout=15).result(timeout=15)
    assert left == [bindings[2]]


def test_without_an_authorizer_acl_apis_answer_security_disabled(broker_factory):
    from kafka.admin import ACL, ACLFilter, ACLOperation, ACLPermissionType
    from kafka.admin import ACLResourcePatternType, ResourcePattern, ResourcePatternFilter
    from kafka.admin import ResourceType as KpResource
    from kafka.errors import SecurityDisabledError
    b = broker_factory()
    kp = kh.kp_admin(b.bootstrap)
    with pytest.raises(SecurityDisabledError):
        kp.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                   ResourcePatternFilter(KpResource.ANY, None,
                                                         ACLResourcePatternType.ANY)))
    binding = ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                  ResourcePattern(KpResource.TOPIC, "t", ACLResourcePatternType.LITERAL))
    result = kp.create_acls([binding])
    assert result["failed"] and not result["succeeded"], result
    assert "SecurityDisabled" in str(result["failed"]), result


def test_acl_matrix_topics(broker_factory):
    b = acl_broker(broker_factory)
    for t in ("orders", "pay-eu", "secret"):
        kh.ck_create_topic(b.bootstrap, t, 1)
    create_acls(b, [
        acl(ResourceType.TOPIC, "orders", "User:alice", AclOperation.WRITE),
        acl(ResourceType.TOPIC, "pay-", "User:alice", AclOperation.READ, pattern=PREFIXED),
        acl(ResourceType.TOPIC, "pay-", "User:alice", AclOperation.DESCRIBE_CONFIGS,
            pattern=PREFIXED),
        acl(ResourceType.TOPIC, "new-", "User:alice", AclOperation.CREATE, pattern=PREFIXED),
        acl(ResourceType.TOPIC, "new-", "User:alice", AclOperation.DELETE, pattern=PREFIXED),
        acl(ResourceType.GROUP, "g-", "User:alice", AclOperation.READ, pattern=PREFIXED),
    ])
    assert produce(b, "admin", "pay-eu") == []  # a super user

    # Produce: WRITE on the topic (bob, and alice on a topic she may only read).
    assert produce(b, "alice", "orders") == []
    assert produce(b, "bob", "orders") == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    # Metadata: a principal sees only what it may describe (WRITE and READ imply DESCRIBE).
    seen = admin(b, "alice").list_topics(timeout=15).topics
    assert sorted(seen) == ["orders", "pay-eu"]
    assert admin(b, "bob").list_topics(timeout=15).topics == {}
    named = admin(b, "bob").list_topics(topic="orders", timeout=15).topics["orders"]
    assert named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Fetch, FindCoordinator, JoinGroup, OffsetCommit: READ on the topic and the group.
    values, errors = consume(b, "alice", "pay-eu", "g-alice")
    assert values == [b"v"], (values, errors)
    _, errors = consume(b, "bob", "pay-eu", "g-bob")
    assert errors and errors[0] in (KafkaError.GROUP_AUTHORIZATION_FAILED,
                                    KafkaError.TOPIC_AUTHORIZATION_FAILED), errors
    # DescribeConfigs: DESCRIBE_CONFIGS on the topic.
    res = ConfigResource(ConfigResource.Type.TOPIC, "pay-eu")
    configs = admin(b, "alice").describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert "retention.ms" in configs
    assert error_of(admin(b, "bob").describe_configs([res], request_timeout=15)[res]) == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    # AlterConfigs: ALTER_CONFIGS, which alice lacks.
    res.set_config("retention.ms", "3600000")
    assert error_of(admin(b, "alice").alter_configs([res], request_timeout=15)[res]) == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    # CreateTopics and DeleteTopics: CREATE and DELETE on the (prefixed) topic.
    made = admin(b, "alice").create_topics([NewTopic("new-a", 1, 1)], request_timeout=15)
    made["new-a"].result(timeout=15)
    refused = admin(b, "bob").create_topics([NewTopic("new-b", 1, 1)], request_timeout=15)
    assert error_of(refused["new-b"]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert error_of(admin(b, "bob").delete_topics(["new-a"], request_timeout=15)["new-a"]) == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    admin(b, "alice").delete_topics(["new-a"], request_timeout=15)["new-a"].result(timeout=15)
    # ListOffsets: DESCRIBE on the topic.
    from confluent_kafka.admin import OffsetSpec
    latest = {TopicPartition("pay-eu", 0): OffsetSpec.latest()}
    offsets = admin(b, "alice").list_offsets(latest, request_timeout=15)
    assert offsets[TopicPartition("pay-eu", 0)].result(timeout=15).offset == 1
    # (librdkafka reports bob's refusal as an unknown topic: kafka-python names it.)
    from kafka import TopicPartition as KpPartition
    from kafka.errors import TopicAuthorizationFailedError
    kp = kh.kp_consumer(f"127.0.0.1:{b.sasl_port}", security_protocol="SASL_PLAINTEXT",
                        sasl_mechanism="PLAIN", sasl_plain_username="bob",
                        sasl_plain_password=PASSWORDS["bob"])
    with pytest.raises(TopicAuthorizationFailedError):
        kp.end_offsets([KpPartition("pay-eu", 0)])


def test_acl_matrix_groups_cluster_and_transactions(broker_factory):
    b = acl_broker(broker_factory)
    kh.ck_create_topic(b.bootstrap, "ledger", 1)
    create_acls(b, [
        acl(ResourceType.TOPIC, "ledger", "User:alice", AclOperation.ALL),
        acl(ResourceType.GROUP, "ga", "User:alice", AclOperation.ALL),
        acl(ResourceType.TRANSACTIONAL_ID, "tx-alice", "User:alice", AclOperation.WRITE),
        acl(ResourceType.TOPIC, "ledger", "User:bob", AclOperation.READ),
    ])
    # Transactions: WRITE on the transactional id (InitProducerId, AddPartitionsToTxn, EndTxn).
    p = kh.ck_producer(f"127.0.0.1:{b.sasl_port}", **as_user("alice"),
                       **{"transactional.id": "tx-alice"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("ledger", b"t1")
    p.commit_transaction(30)
    bad = kh.ck_producer(f"127.0.0.1:{b.sasl_port}", **as_user("bob"),
                         **{"transactional.id": "tx-bob"})
    with pytest.raises(KafkaException) as e:
        bad.init_transactions(30)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    # An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    fatal = []
    idem = kh.ck_producer(f"127.0.0.1:{b.sasl_port}", **as_user("bob"),
                          **{"enable.idempotence": True})
    idem.produce("ledger", b"never")

    def fatal_error():
        try:
            idem.poll(0.2)
        except KafkaException as e:  # librdkafka raises the fatal error from poll
            fatal.append(e.args[0].code())
        return fatal
    kh.wait_until(fatal_error, what="the idempotent producer's fatal error")
    assert fatal[0] == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # Groups: alice's group is listed and described for her only.
    values, _ = consume(b, "alice", "ledger", "ga")
    assert values == [b"t1"]
    listed = [g.group_id for g in admin(b, "alice").list_consumer_groups(
        request_timeout=15).result(timeout=15).valid]
    assert listed == ["ga"]
    assert admin(b, "bob").list_consumer_groups(request_timeout=15).result(timeout=15).valid == []
    described = admin(b, "bob").describe_consumer_groups(["ga"], request_timeout=15)["ga"]
    assert error_of(described) == KafkaError.GROUP_AUTHORIZATION_FAILED
    mine = admin(b, "alice").describe_consumer_groups(
        ["ga"], include_authorized_operations=True, request_timeout=15)["ga"].result(timeout=15)
    assert {o.name for o in mine.authorized_operations} >= {"READ", "DESCRIBE", "DELETE"}
    # The cluster: DescribeCluster's authorized operations; DescribeLogDirs needs DESCRIBE.
    cluster = admin(b, "admin").describe_cluster(include_authorized_operations=True,
                                                 request_timeout=15).result(timeout=15)
    assert {o.name for o in cluster.authorized_operations} >= {"ALTER", "DESCRIBE", "CREATE"}
    theirs = admin(b, "bob").describe_cluster(include_authorized_operations=True,
                                              request_timeout=15).result(timeout=15)
    assert not theirs.authorized_operations


def test_deny_prefix_wildcard_host_and_no_acl_rule(broker_factory):
    b = acl_broker(broker_factory, **{"allow.everyone.if.no.acl.found": "true"})
    for t in ("open", "eu-orders", "eu-secret", "hosted"):
        kh.ck_create_topic(b.bootstrap, t, 1)
    # No ACL mentions "open": everyone may use it.
    assert produce(b, "bob", "open") == []
    create_acls(b, [
        acl(ResourceType.TOPIC, "eu-", "User:*", AclOperation.WRITE, pattern=PREFIXED),
        acl(ResourceType.TOPIC, "eu-secret", "User:bob", AclOperation.WRITE, perm=DENY),
        acl(ResourceType.TOPIC, "hosted", "User:bob", AclOperation.WRITE, host="10.9.9.9"),
    ])
    assert produce(b, "bob", "eu-orders") == []  # the User:* prefixed ALLOW
    assert produce(b, "bob", "eu-secret") == [KafkaError.TOPIC_AUTHORIZATION_FAILED]  # DENY wins
    assert produce(b, "alice", "eu-secret") == []
    # An ACL on another host covers the topic, so the no-ACL rule no longer applies.
    assert produce(b, "bob", "hosted") == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    create_acls(b, [acl(ResourceType.TOPIC, "hosted", "User:bob", AclOperation.WRITE,
                        host="127.0.0.1")])
    assert produce(b, "bob", "hosted") == []


@pytest.fixture
def acl_cluster(shale_bin, tmp_path):
    """Three combined nodes whose clients log in on a SASL_PLAINTEXT listener; the brokers talk
    over PLAINTEXT as ANONYMOUS, a super user (Kafka's brokers, too, need CLUSTER_ACTION)."""
    from test_cluster import Node, run_cluster, voters_of
    controller_ports = [free_port() for _ in range(3)]
    voters = voters_of(controller_ports)
    extra = (f"authorizer.class.name={AUTHORIZER}\nsuper.users=User:admin;User:ANONYMOUS\n"
             "sasl.enabled.mechanisms=PLAIN\n"
             f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}\n"
             "inter.broker.listener.name=PLAINTEXT\n"
             "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,"
             "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT\n")
    nodes = []
    for i in range(3):
        n = Node(shale_bin, tmp_path, i + 1, free_port(), controller_ports[i], voters, extra)
        n.sasl_port = free_port()
        text = n.config.read_text()
        text = text.replace("listeners=PLAINTEXT://", f"listeners=SASL_PLAINTEXT://127.0.0.1:"
                            f"{n.sasl_port},PLAINTEXT://", 1)
        text = text.replace("advertised.listeners=PLAINTEXT://",
                            f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{n.sasl_port},"
                            "PLAINTEXT://", 1)
        n.config.write_text(text)
        nodes.append(n)
    yield from run_cluster(nodes, brokers=nodes)


def test_forwarded_admin_requests_are_authorized_as_the_client(acl_cluster):
    """CreateTopics, DeleteTopics, CreateAcls and DeleteAcls reach the active controller in an
    Envelope naming the client: from every broker, alice may and bob may not."""
    sasl = [f"127.0.0.1:{n.sasl_port}" for n in acl_cluster]
    grant = [acl(ResourceType.TOPIC, "a-", "User:alice", AclOperation.ALL, pattern=PREFIXED)]
    futures = kh.ck_admin(sasl[1], **as_user("admin")).create_acls(grant, request_timeout=15)
    futures[grant[0]].result(timeout=15)
    refused = kh.ck_admin(sasl[2], **as_user("alice")).create_acls(grant, request_timeout=15)
    assert error_of(refused[grant[0]]) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    for i, bootstrap in enumerate(sasl):
        alice = kh.ck_admin(bootstrap, **as_user("alice"))
        made = alice.create_topics([NewTopic(f"a-{i}", 1, 1)], request_timeout=15)
        made[f"a-{i}"].result(timeout=15)
        bob = kh.ck_admin(bootstrap, **as_user("bob"))
        refused = bob.create_topics([NewTopic(f"a-bob-{i}", 1, 1)], request_timeout=15)
        assert error_of(refused[f"a-bob-{i}"]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
        gone = bob.delete_topics([f"a-{i}"], request_timeout=15)
        assert error_of(gone[f"a-{i}"]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    kh.wait_until(lambda: produce_to(sasl[0], "a-2") == [], what="alice producing to a-2")
    assert produce_to(sasl[0], "a-2", "bob") == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def produce_to(bootstrap: str, topic: str, user: str = "alice") -> list:
    p = kh.ck_producer(bootstrap, **as_user(user))
    errors = []
    p.produce(topic, b"v", callback=lambda err, _m: err and errors.append(err.code()))
    p.flush(30)
    return errors


def test_acl_matrix_admin_apis(broker_factory):
    """The admin APIs of the matrix: alice holds the ACL each needs, bob holds none."""
    from confluent_kafka import ConsumerGroupTopicPartitions, ElectionType
    from confluent_kafka.admin import (NewPartitions, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)
    b = acl_broker(broker_factory)
    kh.ck_create_topic(b.bootstrap, "adm", 1)
    cluster = ResourceType.BROKER
    create_acls(b, [
        acl(ResourceType.TOPIC, "adm", "User:alice", AclOperation.ALTER),
        acl(ResourceType.TOPIC, "adm", "User:alice", AclOperation.DELETE),
        acl(ResourceType.TOPIC, "adm", "User:alice", AclOperation.READ),
        acl(ResourceType.TOPIC, "adm", "User:alice", AclOperation.WRITE),
        acl(ResourceType.GROUP, "adm-g", "User:alice", AclOperation.ALL),
        acl(cluster, "kafka-cluster", "User:alice", AclOperation.ALTER),
        acl(cluster, "kafka-cluster", "User:alice", AclOperation.DESCRIBE),
        # bob may see the topic (so his clients send the requests), nothing more.
        acl(ResourceType.TOPIC, "adm", "User:bob", AclOperation.DESCRIBE),
    ])
    assert produce(b, "alice", "adm") == []
    values, _ = consume(b, "alice", "adm", "adm-g")
    assert values == [b"v"]
    alice, bob = admin(b, "alice"), admin(b, "bob")
    tp = TopicPartition("adm", 0, 1)
    # CreatePartitions: ALTER on the topic.
    grown = alice.create_partitions([NewPartitions("adm", 2)], request_timeout=15)
    grown["adm"].result(timeout=15)
    refused = bob.create_partitions([NewPartitions("adm", 3)], request_timeout=15)
    assert error_of(refused["adm"]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # DeleteRecords: DELETE on the topic.
    assert alice.delete_records([tp], request_timeout=15)[tp].result(timeout=15).low_watermark == 1
    assert error_of(bob.delete_records([tp], request_timeout=15)[tp]) == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    # ElectLeaders: ALTER on the cluster (alice's election is simply not needed).
    elected = alice.elect_leaders(ElectionType.PREFERRED, [TopicPartition("adm", 0)])
    assert elected.result(timeout=15)[TopicPartition("adm", 0)].code() == \
        KafkaError.ELECTION_NOT_NEEDED
    refused = bob.elect_leaders(ElectionType.PREFERRED, [TopicPartition("adm", 0)])
    assert error_of(refused) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # OffsetFetch: DESCRIBE on the group (and the topic).
    group = [ConsumerGroupTopicPartitions("adm-g")]
    offsets = alice.list_consumer_group_offsets(group, request_timeout=15)["adm-g"]
    assert offsets.result(timeout=15).topic_partitions[0].offset == 1
    assert error_of(bob.list_consumer_group_offsets(group, request_timeout=15)["adm-g"]) == \
        KafkaError.GROUP_AUTHORIZATION_FAILED
    # SCRAM credentials: ALTER / DESCRIBE on the cluster.
    upsert = UserScramCredentialUpsertion(
        "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"carol-pw")
    alice.alter_user_scram_credentials([upsert], request_timeout=15)["carol"].result(timeout=15)
    refused = bob.alter_user_scram_credentials([upsert], request_timeout=15)["carol"]
    assert error_of(refused) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # (librdkafka 2.16 crashes on a DescribeUserScramCredentials error: asked on the wire.)
    assert scram_describe_code(b, "bob") == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert scram_describe_code(b, "alice") == 0
    # DeleteGroups: DELETE on the group.
    assert error_of(bob.delete_consumer_groups(["adm-g"], request_timeout=15)["adm-g"]) == \
        KafkaError.GROUP_AUTHORIZATION_FAILED
    alice.delete_consumer_groups(["adm-g"], request_timeout=15)["adm-g"].result(timeout=15)
    # DescribeLogDirs: DESCRIBE on the cluster (kafka-python has the call; it shows the
    # top-level CLUSTER_AUTHORIZATION_FAILED as no directories).
    def log_dirs(user):
        kp = kh.kp_admin(f"127.0.0.1:{b.sasl_port}", security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism="PLAIN", sasl_plain_username=user,
                         sasl_plain_password=PASSWORDS[user])
        return [d for broker in kp.describe_log_dirs() for d in broker["log_dirs"]]
    assert [d["error_code"] for d in log_dirs("alice")] == [0]
    assert log_dirs("bob") == []


def scram_describe_code(b, user: str) -> int:
    """DescribeUserScramCredentials v0 (every user) as `user`, logged in with PLAIN on the wire:
    the top-level error code."""
    from test_sasl import authenticate, handshake
    with kh.RawConnection("127.0.0.1", b.sasl_port) as c:
        assert handshake(c, "PLAIN")[0] == 0
        assert authenticate(c, f"\0{user}\0{PASSWORDS[user]}".encode())[0] == 0
        corr = c.send_request(50, 0, b"\x00\x00", flexible_header=True)  # users: null
        r = c.recv_response(corr, flexible_header=True)
        r.i32()
        return r.i16()
