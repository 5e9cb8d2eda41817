"""A dynamic quorum (KIP-853) of three `shale` processes, controller-only or combined.

Controller 1 is formatted with `--standalone`; controllers 2 and 3 with
`--no-initial-controllers`. All three name each other in `controller.quorum.bootstrap.servers`
and none sets `controller.quorum.voters`. Controllers 2 and 3 find the leader through the
bootstrap servers and follow it as observers. Then AddRaftVoter, sent raw as
`kafka-metadata-quorum.sh add-controller` sends it, makes them voters one at a time. The
three-voter quorum survives `kill -9` of its leader. RemoveRaftVoter shrinks it again, and
Kafka's refusals come back for a duplicate, an unknown voter and a non-leader. A broker-only
node finds the quorum through the same bootstrap servers, serves kcat and confluent-kafka and
follows a new leader; three combined nodes grow the same way into a three-broker cluster.
"""

import subprocess
import time

import pytest

import kafka_helpers as kh
from conftest import free_port
from test_cluster import consume_all, stop_all
from test_quorum import describe_cluster, describe_quorum, describe_quorum_partition

ADD_RAFT_VOTER, REMOVE_RAFT_VOTER = 80, 81
NOT_LEADER_OR_FOLLOWER, DUPLICATE_VOTER, VOTER_NOT_FOUND = 6, 126, 127


class Node:
    """A controller-only or broker-only node of a dynamic quorum, formatted with `flags`."""

    def __init__(self, binary, root, node_id, port, controller_ports, roles, flags=()):
        self.binary, self.node_id, self.port, self.roles = binary, node_id, port, roles
        name = f"{roles.replace(',', '-')}{node_id}"
        self.dir, self.log = root / name, root / f"{name}.log"
        self.config = root / f"{name}.properties"
        servers = ",".join(f"127.0.0.1:{p}" for p in controller_ports)
        # Combined nodes: `port` is the controller listener, the broker listener is free.
        self.broker_port = free_port() if roles == "broker,controller" else port
        listeners = {"controller": f"CONTROLLER://127.0.0.1:{port}",
                     "broker": f"PLAINTEXT://127.0.0.1:{port}",
                     "broker,controller": f"PLAINTEXT://127.0.0.1:{self.broker_port},"
                                          f"CONTROLLER://127.0.0.1:{port}"}[roles]
        # One broker may serve groups alone (Kafka's quickstart sets the offsets topic's
        # replication factor to one the same way).
        session = ("broker.heartbeat.interval.ms=500\nbroker.session.timeout.ms=3000\n"
                   "offsets.topic.replication.factor=1\n" if "broker" in roles else "")
        self.config.write_text(
            f"process.roles={roles}\nnode.id={node_id}\n"
            f"controller.quorum.bootstrap.servers={servers}\n"
            f"listeners={listeners}\ncontroller.listener.names=CONTROLLER\n"
            f"{session}log.dirs={self.dir}\nshale.metrics.address=\n")
        subprocess.run([str(binary), "format", "-t", "MkU3OEVBNTcwNTJENDM2Qg", "-c",
                        str(self.config), *flags], check=True, capture_output=True)
        meta = (self.dir / "meta.properties").read_text().splitlines()
        self.directory_id = next(line.split("=", 1)[1] for line in meta
                                 if line.startswith("directory.id="))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([str(self.binary), "-c", str(self.config)],
                                     stdout=self.log.open("a"), stderr=subprocess.STDOUT)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def quorum(self):
        try:
            return describe_quorum(self.port)
        except (OSError, kh.ConnectionClosed):
            return None


def uuid_bytes(kafka_uuid: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(kafka_uuid + "==")


def add_voter(leader_port: int, c: Node) -> int:
    listener = (kh.compact_string("CONTROLLER") + kh.compact_string("127.0.0.1")
                + c.port.to_bytes(2, "big") + kh.EMPTY_TAGS)
    body = (kh.compact_string("MkU3OEVBNTcwNTJENDM2Qg") + kh.i32(10_000) + kh.i32(c.node_id)
            + uuid_bytes(c.directory_id) + kh.compact_array([listener]) + kh.EMPTY_TAGS)
    return voter_call(leader_port, ADD_RAFT_VOTER, body)


def remove_voter(leader_port: int, node_id: int, directory_id: str) -> int:
    body = (kh.compact_string("MkU3OEVBNTcwNTJENDM2Qg") + kh.i32(node_id)
            + uuid_bytes(directory_id) + kh.EMPTY_TAGS)
    return voter_call(leader_port, REMOVE_RAFT_VOTER, body)


def voter_call(port: int, api: int, body: bytes) -> int:
    with kh.RawConnection("127.0.0.1", port, timeout=15) as conn:
        corr = conn.send_request(api, 0, body, flexible_header=True)
        r = conn.recv_response(corr, flexible_header=True)
    r.i32()  # throttle
    return r.i16()


def leader_of(controllers) -> tuple:
    """(leader id, {voter: log end}) as the live controllers agree on it, or None."""
    answers = [c.quorum() for c in controllers if c.alive()]
    views = {(a[0], tuple(sorted(a[3]))) for a in answers if a is not None}
    return views.pop() if len(views) == 1 else None


def start_quorum(shale_bin, tmp_path, roles):
    """Nodes 1–3: 1 formatted --standalone, 2 and 3 --no-initial-controllers."""
    ports = [free_port() for _ in range(3)]
    flags = {1: ["--standalone"], 2: ["--no-initial-controllers"], 3: ["--no-initial-controllers"]}
    return [Node(shale_bin, tmp_path, i, ports[i - 1], ports, roles, flags[i]) for i in (1, 2, 3)]


@pytest.fixture
def controllers(shale_bin, tmp_path):
    yield from run_nodes(start_quorum(shale_bin, tmp_path, "controller"))


@pytest.fixture
def combined(shale_bin, tmp_path):
    yield from run_nodes(start_quorum(shale_bin, tmp_path, "broker,controller"))


def run_nodes(nodes):
    for n in nodes:
        n.start()
    yield nodes
    kh.close_all_clients()
    stop_all(nodes)
    for n in nodes:
        print(f"--- {n.log.name} ---\n" + "\n".join(n.log.read_text().splitlines()[-30:]))


def grow_to_three_voters(controllers):
    c1, c2, c3 = controllers[:3]
    kh.wait_until(lambda: leader_of([c1]) == (1, (1,)), 30, what="controller 1 leading alone")
    kh.wait_until(lambda: {2, 3} <= set(describe_quorum_partition(c1.port)["observers"]), 30,
                  what="observers 2 and 3 fetching")
    for c in (c2, c3):
        kh.wait_until(lambda c=c: add_voter(c1.port, c) in (0, DUPLICATE_VOTER), 30,
                      what=f"voter {c.node_id} added")
    kh.wait_until(lambda: leader_of(controllers[:3]) == (1, (1, 2, 3)), 30, what="three voters")


def test_controllers_join_a_standalone_quorum_and_survive_its_leaders_crash(controllers):
    c1, c2, c3 = controllers
    kh.wait_until(lambda: leader_of([c1]) == (1, (1,)), 30, what="controller 1 leading alone")
    # The joiners follow it as observers once the bootstrap servers named the leader.
    kh.wait_until(lambda: {2, 3} <= set(describe_quorum_partition(c1.port)["observers"]), 30,
                  what="observers 2 and 3 fetching")
    assert add_voter(c2.port, c3) == NOT_LEADER_OR_FOLLOWER
    grow_to_three_voters(controllers)
    # KIP-919, as kafka-metadata-quorum.sh --bootstrap-controller asks: every controller
    # lists the voters in force (learned from the log) and names the leader.
    for c in controllers:
        kh.wait_until(lambda c=c: describe_cluster(c.port, 2) ==
                      (0, 1, {n.node_id: ("127.0.0.1", n.port) for n in controllers}), 10,
                      what=f"DescribeCluster from controller {c.node_id}")
    assert add_voter(c1.port, c2) == DUPLICATE_VOTER
    assert remove_voter(c1.port, 9, c1.directory_id) == VOTER_NOT_FOUND

    c1.proc.kill()
    c1.proc.wait(timeout=10)
    killed = time.monotonic()
    def new_leader():
        view = leader_of([c2, c3])
        return view if view is not None and view[0] in (2, 3) else None

    new = kh.wait_until(new_leader, 30, what="a new leader among the added voters")
    print(f"\nleader 1 killed; controller {new[0]} leads {time.monotonic() - killed:.2f} s later")
    assert new[1] == (1, 2, 3)

    # The old leader is removed while down; the two left then commit alone.
    leader_port = next(c.port for c in controllers if c.node_id == new[0])
    kh.wait_until(lambda: remove_voter(leader_port, 1, c1.directory_id) == 0, 30,
                  what="voter 1 removed")
    kh.wait_until(lambda: (leader_of([c2, c3]) or (0, ()))[1] == (2, 3), 30,
                  what="voters 2 and 3")


def test_a_broker_joins_a_dynamic_quorum_through_its_bootstrap_servers(controllers, shale_bin,
                                                                        tmp_path, kcat_bin):
    grow_to_three_voters(controllers)
    broker = Node(shale_bin, tmp_path, 4, free_port(), [c.port for c in controllers], "broker")
    broker.start()
    controllers.append(broker)
    bootstrap = f"127.0.0.1:{broker.port}"
    kh.wait_until(lambda: [b["node_id"] for b in kh.raw_metadata("127.0.0.1", broker.port)["brokers"]]
                  == [4], 30, what="broker 4 registered and unfenced")
    out = subprocess.run([kcat_bin, "-b", bootstrap, "-L"], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    assert " 1 brokers:" in out and "broker 4 at 127.0.0.1" in out, out

    from confluent_kafka.admin import NewTopic
    admin = kh.ck_admin(bootstrap)
    admin.create_topics([NewTopic("dyn", 2, 1)])["dyn"].result(timeout=30)
    p = kh.ck_producer(bootstrap)
    for i in range(20):
        p.produce("dyn", value=b"d%d" % i, partition=i % 2)
    assert p.flush(30) == 0

    # The leader dies: the broker follows the new one and its admin requests reach it.
    controllers[0].proc.kill()
    controllers[0].proc.wait(timeout=10)
    kh.wait_until(lambda: (leader_of(controllers[1:3]) or (0,))[0] in (2, 3), 30,
                  what="a new leader")

    def create_after():
        try:
            kh.ck_admin(bootstrap).create_topics([NewTopic("after", 1, 1)],
                                                 request_timeout=5)["after"].result(timeout=10)
        except Exception as e:  # noqa: BLE001 - retriable while the broker finds the leader
            if "already exists" not in str(e):
                return False
        return True

    kh.wait_until(create_after, 30, what="a topic created through the broker")
    got = consume_all(bootstrap, "dyn", 20, "g-dyn")
    assert sorted(got) == sorted(b"d%d" % i for i in range(20))


def test_combined_nodes_form_a_dynamic_cluster(combined, kcat_bin):
    grow_to_three_voters(combined)
    bootstrap = f"127.0.0.1:{combined[2].broker_port}"
    kh.wait_until(lambda: sorted(b["node_id"] for b in kh.raw_metadata(
        "127.0.0.1", combined[2].broker_port)["brokers"]) == [1, 2, 3], 30, what="three brokers")
    out = subprocess.run([kcat_bin, "-b", bootstrap, "-L"], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    assert " 3 brokers:" in out, out
    from confluent_kafka.admin import NewTopic
    kh.ck_admin(bootstrap).create_topics([NewTopic("comb", 3, 1)])["comb"].result(timeout=30)
    p = kh.ck_producer(bootstrap)
    for i in range(30):
        p.produce("comb", value=b"c%d" % i, partition=i % 3)
    assert p.flush(30) == 0
    got = consume_all(f"127.0.0.1:{combined[0].broker_port}", "comb", 30, "g-comb")
    assert sorted(got) == sorted(b"c%d" % i for i in range(30))
