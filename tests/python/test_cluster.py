"""Three combined `shale` nodes (`process.roles=broker,controller`, Kafka's keys, `shale format`
per node) form one cluster on loopback, driven by real clients.

* confluent-kafka, kafka-python and kcat see all three brokers; topics created through any
  broker (forwarded to the active controller) get leaders spread over the brokers; producers and
  a consumer group route to the leaders; a replication factor above the number of brokers is
  refused with INVALID_REPLICATION_FACTOR. Every broker hands out producer ids (from blocks the
  active controller allocates) and an idempotent producer works.
* A broker killed with -9 is fenced once its session expires (its partitions lose their leader
  rather than pointing at a dead broker) and leads them again after it restarts, data intact;
  the groups it coordinates are loaded again with their committed offsets.
* SIGTERM runs a controlled shutdown: leadership moves before the process exits.
* kill -9 of the active controller while topics are being created: a new controller within a few
  seconds and no acknowledged topic lost.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import kafka_helpers as kh
from conftest import free_port
from test_quorum import describe_cluster, describe_quorum

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qg"
INVALID_REPLICATION_FACTOR = 38
PREFERRED_LEADER_NOT_AVAILABLE = 80
ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
ELECTION_NOT_NEEDED = 84
MISMATCHED_ENDPOINT_TYPE = 114
UNSUPPORTED_ENDPOINT_TYPE = 115
SESSION_TIMEOUT_MS = 3000


def voters_of(controller_ports: list, hosts=None) -> str:
    """`controller.quorum.voters` for nodes 1..n on these ports (loopback unless `hosts`)."""
    hosts = hosts or ["127.0.0.1"] * len(controller_ports)
    return ",".join(f"{i + 1}@{h}:{p}" for i, (h, p) in enumerate(zip(hosts, controller_ports)))


class Node:
    """One node of the cluster: combined (a broker port and a controller port), controller-only
    (a controller port) or broker-only (a broker port)."""

    def __init__(self, binary: Path, root: Path, node_id: int, port, controller_port,
                 voters: str, extra: str = ""):
        self.binary, self.node_id = binary, node_id
        self.port, self.controller_port = port, controller_port
        self.dir = root / f"node{node_id}"
        self.log = root / f"node{node_id}.log"
        listeners = ([f"PLAINTEXT://127.0.0.1:{port}"] if port else []) + \
            ([f"CONTROLLER://127.0.0.1:{controller_port}"] if controller_port else [])
        roles = ",".join((["broker"] if port else []) + (["controller"] if controller_port else []))
        advertised = f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n" if port else ""
        self.config = root / f"node{node_id}.properties"
        self.config.write_text(
            f"process.roles={roles}\n"
            f"node.id={node_id}\n"
            f"controller.quorum.voters={voters}\n"
            f"listeners={','.join(listeners)}\n"
            f"{advertised}"
            "controller.listener.names=CONTROLLER\n"
            f"broker.rack=rack-{node_id}\n"
            f"broker.session.timeout.ms={SESSION_TIMEOUT_MS}\n"
            "broker.heartbeat.interval.ms=500\n"
            "shale.metrics.address=\n"
            f"log.dirs={self.dir}\n"
            f"{extra}")
        subprocess.run([str(binary), "format", "--cluster-id", CLUSTER_ID, "--config",
                        str(self.config)], check=True, capture_output=True)
        self.proc = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self):
        # A group of its own lets a test drop everything this node sends (iptables' owner match).
        gid = getattr(self, "gid", None)
        self.proc = subprocess.Popen([str(self.binary), "--config", str(self.config)],
                                     preexec_fn=(lambda: os.setgid(gid)) if gid else None,
                                     stdout=self.log.open("a"), stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.alive():
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def quorum(self):
        if self.controller_port is None:
            return None
        try:
            return describe_quorum(self.controller_port)
        except (OSError, kh.ConnectionClosed):
            return None


@pytest.fixture
def cluster(shale_bin, tmp_path):
    controller_ports = [free_port() for _ in range(3)]
    voters = voters_of(controller_ports)
    nodes = [Node(shale_bin, tmp_path, i + 1, free_port(), controller_ports[i], voters)
             for i in range(3)]
    yield from run_cluster(nodes, brokers=nodes)


@pytest.fixture
def split_cluster(shale_bin, tmp_path):
    """Three controller-only nodes (1-3) and two broker-only nodes (4, 5); with two brokers,
    `__consumer_offsets` gets two replicas (Kafka, too, waits for three brokers otherwise)."""
    controller_ports = [free_port() for _ in range(3)]
    voters = voters_of(controller_ports)
    controllers = [Node(shale_bin, tmp_path, i + 1, None, controller_ports[i], voters)
                   for i in range(3)]
    two = "offsets.topic.replication.factor=2\n"
    brokers = [Node(shale_bin, tmp_path, i, free_port(), None, voters, two) for i in (4, 5)]
    yield from run_cluster(controllers + brokers, brokers=brokers)


def run_cluster(nodes: list, brokers: list):
    for n in nodes:
        n.start()
    ids = {b.node_id for b in brokers}
    kh.wait_until(lambda: live_brokers(brokers[0]) == ids, 30, what="unfenced brokers")
    yield nodes
    kh.close_all_clients()
    stop_all(nodes)
    for n in nodes:
        print(f"--- node {n.node_id} log tail ---\n" + "\n".join(n.log.read_text().splitlines()[-40:]))


def stop_all(nodes: list):
    """SIGTERM to the broker-only nodes (their controlled shutdown is confirmed by a controller
    still running), then to every other node at once: stopped one by one, the last ones would
    wait out their controlled shutdown with no quorum left to confirm it."""
    broker_only = [n for n in nodes if getattr(n, "roles", None) == "broker"
                   or getattr(n, "controller_port", 0) is None]
    for group in (broker_only, [n for n in nodes if n not in broker_only]):
        for n in group:
            if n.alive():
                n.proc.terminate()
        for n in group:
            if n.proc is not None:
                n.proc.wait(timeout=30)


def live_brokers(node: Node) -> set:
    try:
        md = kh.raw_metadata("127.0.0.1", node.port)
    except (OSError, kh.ConnectionClosed):
        return set()
    return {b["node_id"] for b in md["brokers"]}


def active_controller(nodes):
    answers = [n.quorum() for n in nodes if n.alive()]
    leaders = {a[0] for a in answers if a is not None}
    return leaders.pop() if len(leaders) == 1 else None


def leaders(node: Node, topic: str) -> dict:
    md = kh.ck_admin(node.bootstrap).list_topics(topic=topic, timeout=10)
    return {p: m.leader for p, m in md.topics[topic].partitions.items()}


def create(node: Node, name: str, partitions: int):
    from confluent_kafka.admin import NewTopic
    fs = kh.ck_admin(node.bootstrap).create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)], request_timeout=20)
    fs[name].result(timeout=30)


def try_create(node: Node, name: str, partitions: int) -> bool:
    """Creates the topic; False on a retriable failure (no active controller yet)."""
    try:
        create(node, name, partitions)
    except Exception as e:  # noqa: BLE001 - NOT_CONTROLLER and timeouts while one is elected
        if "already exists" not in str(e):
            print(f"create {name}: {e}")
            return False
    return True


def consume_all(bootstrap: str, topic: str, expected: int, group: str) -> list:
    consumer = kh.ck_consumer(bootstrap, **{"group.id": group, "enable.partition.eof": False})
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + 60
    while len(values) < expected and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            values.append(m.value())
    consumer.close()
    return values


def group_partition(group: str, partitions: int) -> int:
    """Kafka's __consumer_offsets partition of a group: Java's String.hashCode, sign bit
    cleared, modulo the partition count."""
    h = 0
    for ch in group:  # ASCII names: one UTF-16 unit per character
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % partitions


def commit(bootstrap: str, group: str, topic: str, offsets: dict):
    from confluent_kafka import TopicPartition
    consumer = kh.ck_consumer(bootstrap, **{"group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                    asynchronous=False)
    consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict:
    from confluent_kafka import TopicPartition
    consumer = kh.ck_consumer(bootstrap, **{"group.id": group, "enable.auto.commit": False})
    got = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    consumer.close()
    return {tp.partition: tp.offset for tp in got}


def elect(node: Node, kind: str, topic: str, partitions) -> dict:
    """ElectLeaders through `node` (kafka-leader-election.sh's request): partition -> error
    code (0 when elected)."""
    from confluent_kafka import ElectionType, TopicPartition
    tps = [TopicPartition(topic, p) for p in partitions]
    result = kh.ck_admin(node.bootstrap).elect_leaders(ElectionType[kind], tps).result(timeout=30)
    return {tp.partition: (e.code() if e is not None else 0) for tp, e in result.items()}


def idempotent_round_trip(brokers: list, into: Node, out_of: Node, topic: str, partitions: int):
    """Raw InitProducerIds to every broker get distinct ids (blocks from the active controller),
    then an idempotent confluent-kafka producer through `into` and a group through `out_of`."""
    ids = [init_producer_id(b) for b in brokers for _ in range(2)]
    assert len(set(ids)) == len(ids), ids
    p = kh.ck_producer(into.bootstrap, **{"enable.idempotence": True})
    for i in range(10 * partitions):
        p.produce(topic, value=b"idem-%d" % i, partition=i % partitions)
    assert p.flush(30) == 0
    got = consume_all(out_of.bootstrap, topic, 10 * partitions, f"g-idem-{topic}")
    assert sorted(got) == sorted(b"idem-%d" % i for i in range(10 * partitions))


def init_producer_id(node: Node) -> int:
    """A raw InitProducerId v0 (idempotent, no transactional id) to one broker: the id."""
    with kh.RawConnection("127.0.0.1", node.port) as conn:
        corr = conn.send_request(22, 0, kh.string(None) + kh.i32(60000))
        r = conn.recv_response(corr)
        r.i32()  # throttle
        assert r.i16() == 0
        producer_id, epoch = r.i64(), r.i16()
    assert producer_id >= 0 and epoch == 0
    return producer_id


def test_clients_see_the_cluster_and_admin_requests_work_on_any_broker(cluster, kcat_bin):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic as KpNewTopic
    from kafka.errors import InvalidReplicationFactorError

    # kcat: all brokers, whichever one it asks.
    for n in cluster:
        out = subprocess.run([kcat_bin, "-b", n.bootstrap, "-L"], check=True,
                             capture_output=True, text=True, timeout=30).stdout
        assert " 3 brokers:" in out, out
        for other in cluster:
            assert f"broker {other.node_id} at {other.bootstrap}" in out, out

    # CreateTopics sent to each broker: two of them forward to the active controller.
    controller = kh.wait_until(lambda: active_controller(cluster), 10, what="a controller")
    for n in cluster:
        create(n, f"via-{n.node_id}", 6)
    for n in cluster:
        spread = leaders(n, "via-1")
        assert set(spread.values()) == {1, 2, 3}, spread
    print(f"\nactive controller: node {controller}; topics created through every broker")

    # ElectLeaders on any broker, relayed to the active controller: every partition already has
    # its preferred leader (its only replica).
    assert elect(cluster[1], "PREFERRED", "via-1", range(6)) == {p: ELECTION_NOT_NEEDED for p in range(6)}

    # DescribeQuorum (kafka-metadata-quorum.sh --bootstrap-server) on any broker: relayed to
    # the active controller, which answers for the three voters.
    for n in cluster:
        leader, _, hw, voters = describe_quorum(n.port)
        assert leader == controller and set(voters) == {1, 2, 3} and hw > 0, (leader, voters)

    # kafka-python: admin through a broker, racks in its metadata, produce across leaders.
    admin = kh._track(KafkaAdminClient(bootstrap_servers=cluster[1].bootstrap))
    admin.create_topics([KpNewTopic("kp", num_partitions=6, replication_factor=1)])
    with pytest.raises(InvalidReplicationFactorError):
        admin.create_topics([KpNewTopic("rf4", num_partitions=1, replication_factor=4)])
    racks = {b["node_id"]: b["rack"] for b in kh.raw_metadata("127.0.0.1", cluster[1].port)["brokers"]}
    assert racks == {1: "rack-1", 2: "rack-2", 3: "rack-3"}, racks
    producer = kh._track(KafkaProducer(bootstrap_servers=cluster[2].bootstrap))
    kh.wait_until(lambda: len(producer.partitions_for("kp") or ()) == 6, 30, what="kp metadata")
    for i in range(120):
        producer.send("kp", value=b"kp-%d" % i, partition=i % 6)
    producer.flush(30)

    # confluent-kafka producer through broker 1, a consumer group through broker 3.
    p = kh.ck_producer(cluster[0].bootstrap)
    for i in range(120):
        p.produce("via-2", value=b"ck-%d" % i, partition=i % 6)
    assert p.flush(30) == 0
    got = consume_all(cluster[2].bootstrap, "via-2", 120, "g-ck")
    assert sorted(got) == sorted(b"ck-%d" % i for i in range(120))

    # Producer ids: every broker hands them out from blocks the active controller allocates
    # (AllocateProducerIds over the controller channel on the others); no id twice.
    idempotent_round_trip(cluster, cluster[1], cluster[0], "via-3", 6)

    consumer = kh._track(KafkaConsumer("kp", bootstrap_servers=cluster[0].bootstrap,
                                       group_id="g-kp", auto_offset_reset="earliest",
                                       consumer_timeout_ms=20000))
    values = []
    for m in consumer:
        values.append(m.value)
        if len(values) == 120:
            break
    assert sorted(values) == sorted(b"kp-%d" % i for i in range(120))


def test_a_killed_broker_is_fenced_and_leads_again_after_restart(cluster):
    create(cluster[0], "fence", 6)
    p = kh.ck_producer(cluster[0].bootstrap)
    for i in range(60):
        p.produce("fence", value=b"v%d" % i, partition=i % 6)
    assert p.flush(30) == 0
    controller = kh.wait_until(lambda: active_controller(cluster), 10, what="a controller")
    victim = next(n for n in cluster if n.node_id != controller)
    survivor = next(n for n in cluster if n.node_id not in (victim.node_id,))
    owned = [part for part, leader in leaders(survivor, "fence").items() if leader == victim.node_id]
    assert owned

    # Committed offsets of a group coordinated by the victim (its __consumer_offsets partition
    # is led there) must be served again once it leads that partition again.
    commit(cluster[0].bootstrap, "g-warmup", "fence", {0: 1})
    offsets_leaders = leaders(survivor, "__consumer_offsets")
    group = next(g for g in (f"g-fence-{i}" for i in range(10_000))
                 if offsets_leaders[group_partition(g, len(offsets_leaders))] == victim.node_id)
    commit(survivor.bootstrap, group, "fence", {p: 5 for p in range(6)})

    victim.kill()
    killed = time.monotonic()
    kh.wait_until(lambda: all(leaders(survivor, "fence")[part] == -1 for part in owned), 30,
                  what="the dead broker's partitions without a leader")
    fenced_after = time.monotonic() - killed
    assert victim.node_id not in live_brokers(survivor)
    # Its partitions' only replica is fenced: no election can give them a leader.
    assert elect(survivor, "PREFERRED", "fence", owned) == \
        {p: PREFERRED_LEADER_NOT_AVAILABLE for p in owned}
    assert elect(survivor, "UNCLEAN", "fence", owned) == \
        {p: ELIGIBLE_LEADERS_NOT_AVAILABLE for p in owned}
    print(f"\nkilled broker fenced after {fenced_after:.2f} s (session {SESSION_TIMEOUT_MS} ms)")
    assert fenced_after >= SESSION_TIMEOUT_MS / 1000 - 0.5

    victim.start()
    restarted = time.monotonic()
    kh.wait_until(lambda: all(leaders(survivor, "fence")[part] == victim.node_id for part in owned),
                  30, what="leadership back on the restarted broker")
    print(f"restarted broker leading again after {time.monotonic() - restarted:.2f} s")
    got = consume_all(survivor.bootstrap, "fence", 60, "g-fence")
    assert sorted(got) == sorted(b"v%d" % i for i in range(60))
    assert committed(survivor.bootstrap, group, "fence", 6) == {p: 5 for p in range(6)}


def test_sigterm_moves_leadership_before_exit(cluster):
    create(cluster[0], "leave", 6)
    controller = kh.wait_until(lambda: active_controller(cluster), 10, what="a controller")
    leaving = next(n for n in cluster if n.node_id != controller)
    other = next(n for n in cluster if n.node_id != leaving.node_id)
    owned = [part for part, leader in leaders(other, "leave").items() if leader == leaving.node_id]
    started = time.monotonic()
    leaving.proc.send_signal(signal.SIGTERM)
    assert leaving.proc.wait(timeout=20) == 0
    took = time.monotonic() - started
    print(f"\ncontrolled shutdown and exit in {took:.2f} s")
    # Moved by the controlled shutdown, not by a session timeout later.
    assert all(leaders(other, "leave")[part] == -1 for part in owned)
    assert took < SESSION_TIMEOUT_MS / 1000


def test_controller_failover_under_topic_creation_loses_no_topic(cluster):
    controller = kh.wait_until(lambda: active_controller(cluster), 10, what="a controller")
    entry = next(n for n in cluster if n.node_id != controller)
    victim = next(n for n in cluster if n.node_id == controller)
    created, killed_at, first_after = [], None, None
    from confluent_kafka.admin import NewTopic
    admin = kh.ck_admin(entry.bootstrap)
    deadline = time.monotonic() + 60
    i, created_by_first_after = 0, 0
    # Until five more topics are acknowledged after the first one the new controller created.
    while time.monotonic() < deadline and (first_after is None
                                           or len(created) < created_by_first_after + 5):
        name = f"loop-{i}"
        try:
            admin.create_topics([NewTopic(name, 1, 1)], request_timeout=10)[name].result(timeout=15)
            created.append(name)
            if killed_at is not None and first_after is None:
                first_after = time.monotonic() - killed_at
                created_by_first_after = len(created)
        except Exception as e:  # noqa: BLE001 - retriable while there is no controller
            if "already exists" in str(e):
                created.append(name)
            else:
                continue
        i += 1
        if i == 10 and killed_at is None:
            victim.kill()
            killed_at = time.monotonic()
    assert killed_at is not None and first_after is not None, (len(created), first_after)
    new = kh.wait_until(lambda: active_controller(cluster), 30, what="a new controller")
    assert new != victim.node_id
    print(f"\ncontroller {victim.node_id} killed; first topic created {first_after:.2f} s later "
          f"(new controller: node {new}); {len(created)} topics acknowledged")
    for n in cluster:
        if n.alive():
            md = kh.ck_admin(n.bootstrap).list_topics(timeout=10)
            missing = [t for t in created if t not in md.topics]
            assert not missing, f"node {n.node_id} lost {missing}"


def test_controller_only_quorum_with_broker_only_nodes(split_cluster, kcat_bin):
    """Kafka's production shape: controllers and brokers in separate processes. Brokers observe
    the metadata log, register with the active controller and forward admin requests, producer-id
    blocks and DescribeQuorum to it; the controllers are never given to clients."""
    controllers, brokers = split_cluster[:3], split_cluster[3:]
    for b in brokers:
        out = subprocess.run([kcat_bin, "-b", b.bootstrap, "-L"], check=True,
                             capture_output=True, text=True, timeout=30).stdout
        assert " 2 brokers:" in out, out
    controller = kh.wait_until(lambda: active_controller(controllers), 10, what="a controller")
    leader, _, _, voters = describe_quorum(brokers[1].port)
    assert leader == controller and set(voters) == {1, 2, 3}
    # KIP-919, as kafka-metadata-quorum.sh --bootstrap-controller asks: any controller lists
    # the controllers and names the active one; each listener refuses the other endpoint type.
    for c in controllers:
        error, active, nodes = describe_cluster(c.controller_port, 2)
        assert (error, active) == (0, controller)
        assert nodes == {n.node_id: ("127.0.0.1", n.controller_port) for n in controllers}
        assert describe_cluster(c.controller_port, 1)[0] == MISMATCHED_ENDPOINT_TYPE
    assert describe_cluster(brokers[0].port, 2)[0] == MISMATCHED_ENDPOINT_TYPE
    assert describe_cluster(brokers[0].port, 7)[0] == UNSUPPORTED_ENDPOINT_TYPE
    assert set(describe_cluster(brokers[0].port, 1)[2]) == {4, 5}

    create(brokers[0], "split", 4)
    assert set(leaders(brokers[1], "split").values()) == {4, 5}
    idempotent_round_trip(brokers, brokers[1], brokers[0], "split", 4)

    victim = next(c for c in controllers if c.node_id == controller)
    victim.kill()
    killed = time.monotonic()
    kh.wait_until(lambda: try_create(brokers[1], "after-failover", 2), 30,
                  what="a topic created after the controller's kill")
    print(f"\ncontroller {controller} killed; a topic created through a broker "
          f"{time.monotonic() - killed:.2f} s later")
    new = kh.wait_until(lambda: active_controller(controllers), 30, what="a new controller")
    assert new != controller
    assert set(leaders(brokers[0], "after-failover").values()) <= {4, 5}
