"""Metadata snapshots in a three-node cluster (combined nodes, real processes, real clients).

Every node snapshots its metadata image once `metadata.log.max.record.bytes.between.snapshots`
bytes of records were applied and drops the log prefix the snapshot covers. A node whose
metadata log was wiped (`__cluster_metadata-0` removed, quorum-state included) rejoins: the
leader no longer has the offsets it asks for, so it is sent the snapshot (FetchSnapshot), loads
it, fetches the tail and serves every topic again, with its partition data intact. A restart of
the whole cluster then starts every node from its own snapshot plus its log tail.
"""

import shutil
import time

import pytest

import kafka_helpers as kh
from conftest import free_port
from test_cluster import (Node, active_controller, consume_all, create, leaders, live_brokers,
                          run_cluster, stop_all, voters_of)

SNAPSHOT_BYTES = 2048


@pytest.fixture
def snapshotting_cluster(shale_bin, tmp_path):
    controller_ports = [free_port() for _ in range(3)]
    voters = voters_of(controller_ports)
    extra = f"metadata.log.max.record.bytes.between.snapshots={SNAPSHOT_BYTES}\n"
    nodes = [Node(shale_bin, tmp_path, i + 1, free_port(), controller_ports[i], voters, extra)
             for i in range(3)]
    yield from run_cluster(nodes, brokers=nodes)


def metadata_dir(node: Node):
    return node.dir / "__cluster_metadata-0"


def snapshots(node: Node) -> list:
    return sorted(p.name for p in metadata_dir(node).glob("*.checkpoint"))


def first_log_offset(node: Node) -> int:
    return min(int(p.stem) for p in metadata_dir(node).glob("*.log"))


def topics_of(node: Node) -> set:
    try:
        return set(kh.ck_admin(node.bootstrap).list_topics(timeout=10).topics)
    except Exception:  # noqa: BLE001 - not serving yet
        return set()


def test_a_wiped_node_rejoins_from_a_snapshot(snapshotting_cluster):
    nodes = snapshotting_cluster
    controller = kh.wait_until(lambda: active_controller(nodes), 10, what="a controller")
    victim = next(n for n in nodes if n.node_id != controller)
    others = [n for n in nodes if n is not victim]

    create(others[0], "kept", 3)
    p = kh.ck_producer(others[0].bootstrap)
    for i in range(30):
        p.produce("kept", value=b"k%d" % i, partition=i % 3)
    assert p.flush(30) == 0
    names = [f"snap-{i}" for i in range(20)]
    for i, name in enumerate(names):
        create(others[i % 2], name, 1)
    kh.wait_until(lambda: all(snapshots(n) for n in nodes), 30, what="a snapshot on every node")
    assert "kept" in topics_of(victim)
    assert victim.node_id in set(leaders(others[0], "kept").values()), "victim leads part of kept"

    victim.kill()
    shutil.rmtree(metadata_dir(victim))
    later = [f"after-{i}" for i in range(5)]
    for name in later:
        create(others[0], name, 1)

    victim.start()
    started = time.monotonic()
    wanted = set(names) | set(later) | {"kept"}
    kh.wait_until(lambda: wanted <= topics_of(victim), 60, what="every topic on the wiped node")
    caught_up = time.monotonic() - started
    kh.wait_until(lambda: victim.node_id in live_brokers(others[0]), 30, what="unfenced again")
    print(f"\nwiped node serves all {len(wanted)} topics {caught_up:.2f} s after its restart")
    log = victim.log.read_text()
    assert "metadata snapshot loaded" in log
    # Installed from the leader's snapshot: its new log never held the offsets below it.
    assert snapshots(victim)
    assert first_log_offset(victim) > 0
    got = consume_all(victim.bootstrap, "kept", 30, "g-kept")
    assert sorted(got) == sorted(b"k%d" % i for i in range(30))

    # A whole-cluster restart: each node from its own snapshot and log tail.
    kh.close_all_clients()
    stop_all(nodes)
    for n in nodes:
        n.start()
    ids = {n.node_id for n in nodes}
    kh.wait_until(lambda: live_brokers(nodes[0]) == ids, 30, what="the cluster back")
    for n in nodes:
        kh.wait_until(lambda n=n: wanted <= topics_of(n), 30, what=f"topics on node {n.node_id}")
