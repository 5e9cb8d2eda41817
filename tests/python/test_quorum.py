"""Three controller-only `shale` processes (`process.roles=controller`) configured with Kafka's
keys form one metadata quorum on loopback: a leader is elected, the active controller's bootstrap
records reach every voter's `__cluster_metadata-0` (read back with `shale dump-log`), `kill -9` of
the leader brings a new one in a later epoch, the killed voter rejoins and catches up, and a
leader stopped with SIGTERM resigns so a successor is elected at once. DescribeQuorum is sent raw,
as `kafka-metadata-quorum.sh --bootstrap-controller` would send it."""

import subprocess
import time
from pathlib import Path

import pytest

import kafka_helpers as kh
from conftest import free_port

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qg"
DESCRIBE_QUORUM = 55
DESCRIBE_CLUSTER = 60
NOT_LEADER_OR_FOLLOWER = 6


def describe_cluster(port: int, endpoint_type: int):
    """DescribeCluster v1 asking for `endpoint_type` (1 broker, 2 controller): (error,
    controller id, {node id: (host, port)})."""
    body = kh.boolean(False) + kh.i8(endpoint_type) + kh.EMPTY_TAGS
    with kh.RawConnection("127.0.0.1", port, timeout=5) as c:
        corr = c.send_request(DESCRIBE_CLUSTER, 1, body, flexible_header=True)
        r = c.recv_response(corr, flexible_header=True)

    def node(r):
        n = (r.i32(), r.compact_string(), r.i32(), r.compact_string())
        r.tagged_fields()
        return n

    r.i32()  # throttle
    error = r.i16()
    r.compact_string()  # message
    r.i8()  # endpoint type
    r.compact_string()  # cluster id
    controller = r.i32()
    nodes = r.compact_array(node) or []
    return error, controller, {n[0]: (n[1], n[2]) for n in nodes}


def describe_quorum(port: int):
    """DescribeQuorum v0 on a controller listener: (leader, epoch, high watermark,
    {voter: log end offset}), or None when this node is not the leader."""
    p = describe_quorum_partition(port)
    return None if p is None else (p["leader"], p["epoch"], p["hw"], p["voters"])


def describe_quorum_partition(port: int):
    """DescribeQuorum v0's partition: leader, epoch, hw, {voter: log end}, {observer: log
    end}; None when this node is not the leader."""
    partition = kh.i32(0) + kh.EMPTY_TAGS
    topic = kh.compact_string("__cluster_metadata") + kh.compact_array([partition]) + kh.EMPTY_TAGS
    body = kh.compact_array([topic]) + kh.EMPTY_TAGS
    with kh.RawConnection("127.0.0.1", port, timeout=5) as c:
        corr = c.send_request(DESCRIBE_QUORUM, 0, body, flexible_header=True)
        r = c.recv_response(corr, flexible_header=True)

    def replica(r):
        rid, leo = r.i32(), r.i64()
        r.tagged_fields()
        return rid, leo

    def part(r):
        p = {"index": r.i32(), "error": r.i16(), "leader": r.i32(), "epoch": r.i32(),
             "hw": r.i64(), "voters": dict(r.compact_array(replica)),
             "observers": dict(r.compact_array(replica))}
        r.tagged_fields()
        return p

    def top(r):
        name = r.compact_string()
        parts = r.compact_array(part)
        r.tagged_fields()
        return name, parts

    error = r.i16()
    topics = r.compact_array(top)
    assert error == 0, f"top-level error {error}"
    [(name, [p])] = topics
    assert name == "__cluster_metadata" and p["index"] == 0
    if p["error"] == NOT_LEADER_OR_FOLLOWER:
        return None
    assert p["error"] == 0, p
    return p


class Controller:
    def __init__(self, binary: Path, root: Path, node_id: int, ports: list):
        self.binary, self.node_id, self.port = binary, node_id, ports[node_id - 1]
        self.dir = root / f"node{node_id}"
        self.log = root / f"node{node_id}.log"
        voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports))
        self.config = root / f"node{node_id}.properties"
        self.config.write_text(
            "process.roles=controller\n"
            f"node.id={node_id}\n"
            f"controller.quorum.voters={voters}\n"
            f"listeners=CONTROLLER://127.0.0.1:{self.port}\n"
            "controller.listener.names=CONTROLLER\n"
            f"log.dirs={self.dir}\n")
        subprocess.run([str(binary), "format", "--cluster-id", CLUSTER_ID, "--config",
                        str(self.config)], check=True, capture_output=True)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([str(self.binary), "--config", str(self.config)],
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

    def status(self):
        try:
            return describe_quorum(self.port)
        except (OSError, kh.ConnectionClosed):
            return None

    def metadata_batches(self) -> str:
        seg = self.dir / "__cluster_metadata-0" / "00000000000000000000.log"
        return subprocess.run([str(self.binary), "dump-log", str(seg)], check=True,
                              capture_output=True, text=True).stdout


@pytest.fixture
def quorum(shale_bin, tmp_path):
    ports = [free_port() for _ in range(3)]
    nodes = [Controller(shale_bin, tmp_path, i + 1, ports) for i in range(3)]
    yield nodes
    for n in nodes:
        n.stop()


def leader_among(nodes):
    """(leader id, epoch, hw, voters) when every live node's answer agrees on one leader."""
    answers = [n.status() for n in nodes if n.alive()]
    leaders = [a for a in answers if a is not None]
    if len(leaders) != 1:
        return None
    return leaders[0]


def test_three_controllers_elect_replicate_fail_over_and_rejoin(quorum):
    started = time.monotonic()
    for n in quorum:
        n.start()
    leader, epoch, _, _ = kh.wait_until(lambda: leader_among(quorum), 30, what="a quorum leader")
    print(f"\nfirst leader (node {leader}, epoch {epoch}) "
          f"{time.monotonic() - started:.2f} s after starting three processes")

    # The active controller bootstraps the cluster; every voter holds the records and has
    # fetched up to the leader's log end.
    def replicated():
        s = leader_among(quorum)
        return s if s and s[2] > 1 and all(leo >= s[2] for leo in s[3].values()) else None
    _, _, hw, voters = kh.wait_until(replicated, 30, what="bootstrap records on every voter")
    assert sorted(voters) == [1, 2, 3]
    for n in quorum:
        dump = kh.wait_until(lambda: (d := n.metadata_batches()).count("isControl: false") and d,
                             15, what=f"metadata batches on node {n.node_id}")
        assert f"partitionLeaderEpoch: {epoch}" in dump

    # kill -9 the leader: the other two elect a new one in a later epoch.
    victim = quorum[leader - 1]
    victim.kill()
    killed = time.monotonic()
    new_leader, new_epoch, _, _ = kh.wait_until(lambda: leader_among(quorum), 30, what="a leader after kill -9")
    print(f"new leader (node {new_leader}, epoch {new_epoch}) "
          f"{time.monotonic() - killed:.2f} s after kill -9 of node {leader}")
    assert new_leader != leader and new_epoch > epoch

    # The killed voter restarts from its directory and catches up with the leader.
    victim.start()

    def rejoined():
        s = leader_among(quorum)
        return s if s and s[3].get(victim.node_id, -1) >= s[2] > hw else None
    kh.wait_until(rejoined, 30, what=f"node {victim.node_id} caught up")

    # SIGTERM of the leader: it resigns (EndQuorumEpoch), so a successor comes fast.
    current = leader_among(quorum)
    stopping = quorum[current[0] - 1]
    stopped_at = time.monotonic()
    stopping.stop()
    successor = kh.wait_until(lambda: leader_among(quorum), 30, what="a leader after SIGTERM")
    print(f"new leader (node {successor[0]}, epoch {successor[1]}) "
          f"{time.monotonic() - stopped_at:.2f} s after SIGTERM of node {current[0]}")
    assert successor[0] != current[0] and successor[1] > current[1]
    assert stopping.proc.returncode == 0, "a clean shutdown exits 0"


def test_a_controller_needs_a_formatted_dir_and_a_place_among_the_voters(shale_bin, tmp_path):
    port = free_port()
    config = tmp_path / "c.properties"
    base = ("process.roles=controller\nnode.id=1\nlisteners=CONTROLLER://127.0.0.1:%d\n"
            "controller.listener.names=CONTROLLER\nlog.dirs=%s\n" % (port, tmp_path / "d"))
    config.write_text(base + f"controller.quorum.voters=1@127.0.0.1:{port},2@127.0.0.1:1\n")
    res = subprocess.run([str(shale_bin), "--config", str(config)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode != 0 and "shale format" in (res.stdout + res.stderr), res
    config.write_text(base + "controller.quorum.voters=2@127.0.0.1:1,3@127.0.0.1:2\n")
    res = subprocess.run([str(shale_bin), "--config", str(config)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 1 and "must be a voter" in res.stderr, res
