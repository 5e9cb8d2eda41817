"""Tiered storage (KIP-405) on a multi-node cluster: one controller-only node (1) and three
broker-only nodes (2-4) sharing one bucket on a real S3 server (s3s-fs).

* Two topics of the same ~4 MB (replication factor 3, min.insync.replicas=2, 64 KiB segments):
  "tiered" (remote.storage.enable, local.retention.bytes=1: once offloaded only the active segment
  stays on the leader's disk) and "plain" (no tiering).
* A follower of both is stopped, its disk wiped and formatted again (a replacement broker with an
  empty disk) and started: it rejoins the ISR of both. For "tiered" it rebuilds from the remote
  tier (the leader-epoch cache and a local log starting above 0) and copies less than half the
  partition from the leader; for "plain" it copies the whole log. The rebuild times and byte counts
  are printed as `REBUILD topic=… seconds=… copied_bytes=… total_bytes=…` lines.
* A fifth node (broker-only) joins and one replica of each topic moves to it
  (AlterPartitionReassignments, kafka-python): for "tiered" it too copies only the local tail. The
  times and byte counts are printed as `REASSIGN …` lines.
* The other brokers are stopped (controlled shutdown): the rebuilt broker leads "tiered" alone
  and a real client reads every record back from offset 0, in order, through the remote tier.
"""

import os
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest

import kafka_helpers as kh
from conftest import free_port
from test_cluster import CLUSTER_ID, Node, live_brokers, stop_all, voters_of
from test_replication import EXTRA, create, partition_state, segment_bytes_of
from test_tiering import local_segments, produce, segment_objects, tier_config, wait_tiered

BUCKET = "shale-cluster"
SEGMENT_BYTES = 65536
# The bench (bench/scripts/tiered-cluster-figures.sh) runs this test on a larger partition.
RECORDS = int(os.environ.get("SHALE_TIERED_RECORDS", "16000"))
VALUE_SIZE = 250
TOPICS = ("tiered", "plain")
TIERING = {
    "remote.log.storage.system.enable": "true",
    "remote.log.manager.task.interval.ms": "200",
    "log.retention.check.interval.ms": "200",
    "rlmm.config.remote.log.metadata.topic.num.partitions": "5",
    "rlmm.config.remote.log.metadata.topic.replication.factor": "3",
}


@pytest.fixture
def cluster(shale_bin, tmp_path, s3_server):
    """[controller 1, broker 2, broker 3, broker 4], every broker unfenced; log tails printed at
    teardown."""
    settings = {**TIERING, **s3_server.broker_overrides(s3_server.make_bucket(BUCKET))}
    extra = EXTRA + "".join(f"{k}={v}\n" for k, v in settings.items())
    controller_port = free_port()
    voters = voters_of([controller_port])
    controller = Node(shale_bin, tmp_path, 1, None, controller_port, voters)
    brokers = [Node(shale_bin, tmp_path, i, free_port(), None, voters, extra) for i in (2, 3, 4)]
    nodes = [controller] + brokers
    for n in nodes:
        n.start()
    kh.wait_until(lambda: live_brokers(brokers[0]) == {2, 3, 4}, 30, what="unfenced brokers")
    new_broker = lambda: Node(shale_bin, tmp_path, 5, free_port(), None, voters, extra)  # noqa: E731
    yield nodes, new_broker
    kh.close_all_clients()
    stop_all(nodes)
    for n in nodes:
        print(f"--- node {n.node_id} log tail ---\n" + "\n".join(n.log.read_text().splitlines()[-40:]))


def value_of(i: int) -> bytes:
    return (b"%08d" % i).ljust(VALUE_SIZE, b".")


def tiering_view(node: Node) -> SimpleNamespace:
    """What test_tiering's helpers read from a single broker (address and data directory)."""
    return SimpleNamespace(host="127.0.0.1", port=node.port, data_dir=node.dir)


def leader_of(nodes: list, topic: str) -> Node:
    leader = partition_state(nodes, topic)[0]
    return next(n for n in nodes if n.node_id == leader)


def log_bytes(node: Node, topic: str) -> int:
    """Bytes of the *.log files of `topic`-0 on the node's disk."""
    return len(segment_bytes_of(node, f"{topic}-0"))


def remote_log_bytes(s3, topic: str) -> int:
    """Bytes of the segment objects of `topic` in the bucket."""
    return sum((s3.root / BUCKET / seg["log"]).stat().st_size
               for seg in segment_objects(s3, BUCKET, topic).values())


def in_isr(nodes: list, topic: str, node_id: int) -> bool:
    state = partition_state(nodes, topic)
    return state is not None and node_id in state[1]


def give_an_empty_disk(node: Node):
    """Wipes the node's data directory and formats it again as Node.__init__ does."""
    shutil.rmtree(node.dir)
    subprocess.run([str(node.binary), "format", "--cluster-id", CLUSTER_ID, "--config",
                    str(node.config)], check=True, capture_output=True)


def wait_back_in_isr(others: list, node: Node, since: float, timeout: float = 120) -> dict:
    """Seconds from `since` until `node` is in the ISR of each topic, as the other brokers
    report it (the node itself may still be replaying old metadata)."""
    took = {}

    def all_back():
        for t in TOPICS:
            if t not in took and in_isr(others, t, node.node_id):
                took[t] = time.monotonic() - since
        return len(took) == len(TOPICS)

    kh.wait_until(all_back, timeout, what=f"broker {node.node_id} back in the ISRs (so far {took})")
    return took


def move_one_replica_to(node: Node, brokers: list, keep: Node) -> dict:
    """Moves one replica of each topic (neither the leader's nor `keep`'s) to `node` and returns
    the seconds until each move is complete (listed no more, `node` in the ISR)."""
    from kafka import KafkaAdminClient, TopicPartition
    admin = kh._track(KafkaAdminClient(bootstrap_servers=brokers[0].bootstrap))
    targets = {}
    for t in TOPICS:
        leader, _, replicas = partition_state(brokers, t, replicas=True)
        leaving = next(r for r in replicas if r not in (leader, keep.node_id))
        targets[TopicPartition(t, 0)] = [node.node_id if r == leaving else r for r in replicas]
    started, took = time.monotonic(), {}
    assert admin.alter_partition_reassignments(targets) == {tp: None for tp in targets}

    def done():
        ongoing = admin.list_partition_reassignments()
        for tp in targets:
            if tp.topic not in took and tp not in ongoing and in_isr(brokers, tp.topic, node.node_id):
                took[tp.topic] = time.monotonic() - started
        return len(took) == len(targets)

    kh.wait_until(done, 120, what=f"replicas moved to broker {node.node_id} (so far {took})")
    return took


def epoch_checkpoint_entries(node: Node, topic: str) -> list:
    """The entry lines of the partition's leader-epoch-checkpoint (after version and count)."""
    path = node.dir / f"{topic}-0" / "leader-epoch-checkpoint"
    return path.read_text().splitlines()[2:] if path.exists() else []


def assert_reads_back_in_order(msgs: list):
    got = [(m.offset, m.value) for m in msgs]
    for i, (offset, value) in enumerate(got):
        assert (offset, value) == (i, value_of(i)), \
            f"record {i}: offset {offset}, value {(value or b'')[:16]!r}… (expected {value_of(i)[:8]!r})"
    assert len(got) == RECORDS, f"read {len(got)} records, expected {RECORDS}"


@pytest.mark.timeout(480)
def test_a_wiped_follower_rebuilds_from_the_remote_tier_and_serves_cold_reads_alone(cluster,
                                                                                     s3_server):
    nodes, new_broker = cluster
    brokers = nodes[1:]
    create(brokers[0], "tiered", 1, **tier_config(SEGMENT_BYTES, min_insync_replicas=2))
    create(brokers[0], "plain", 1, segment_bytes=SEGMENT_BYTES, min_insync_replicas=2)
    everyone = ",".join(b.bootstrap for b in brokers)
    records = [kh.Gen(i, None, value_of(i), (), 0) for i in range(RECORDS)]
    for topic in TOPICS:
        res = produce(everyone, topic, records)
        assert res.offsets == {i: (0, i) for i in range(RECORDS)}, \
            f"{topic}: {len(res.offsets)} of {RECORDS} records acknowledged at their offsets"
    leaders = {t: leader_of(brokers, t) for t in TOPICS}
    wait_tiered(tiering_view(leaders["tiered"]), "tiered", min_local=1, timeout=120)

    # Two partitions have at most two leaders among three brokers: one broker leads neither and,
    # with replication factor 3 on three brokers, follows both.
    victim = next(b for b in brokers if b not in leaders.values())
    others = [b for b in brokers if b is not victim]
    victim.stop()
    kh.wait_until(lambda: live_brokers(others[0]) == {b.node_id for b in others}, 30,
                  what=f"broker {victim.node_id} gone")
    kh.wait_until(lambda: not any(in_isr(others, t, victim.node_id) for t in TOPICS), 30,
                  what=f"broker {victim.node_id} out of the ISRs")
    give_an_empty_disk(victim)
    assert not list(victim.dir.glob("*-0")), "partition directories survived the wipe"

    victim.start()
    took = wait_back_in_isr(others, victim, time.monotonic())
    # The total of "tiered": its segment objects in the bucket plus the leader's local log (the
    # active segment), measured on their own rather than borrowed from "plain".
    totals = {"tiered": remote_log_bytes(s3_server, "tiered")
              + log_bytes(leader_of(others, "tiered"), "tiered"),
              "plain": log_bytes(leader_of(others, "plain"), "plain")}
    copied = {t: log_bytes(victim, t) for t in TOPICS}
    for t in TOPICS:
        print(f"REBUILD topic={t} seconds={took[t]:.2f} copied_bytes={copied[t]} "
              f"total_bytes={totals[t]}")
    assert copied["tiered"] < totals["tiered"] / 2, (copied, totals)
    assert copied["plain"] >= 0.9 * totals["plain"], (copied, totals)

    entries = kh.wait_until(lambda: epoch_checkpoint_entries(victim, "tiered"), 15,
                            what="entries in the rebuilt leader-epoch-checkpoint of tiered-0")
    print(f"rebuilt leader-epoch-checkpoint of tiered-0: {entries}")
    started = [line for line in victim.log.read_text().splitlines()
               if "follower started from the remote tier" in line and "tiered-0" in line]
    assert started, "the rebuilt broker did not start tiered-0 from the remote tier"
    first = local_segments(tiering_view(victim), "tiered")[0]
    assert first > 0, f"the rebuilt local log of tiered-0 starts at {first}: copied from offset 0"

    # A fifth broker joins; one replica of each topic moves to it.
    fifth = new_broker()
    nodes.append(fifth)
    fifth.start()
    kh.wait_until(lambda: live_brokers(victim) == {2, 3, 4, 5}, 30, what="a fifth broker")
    moved = move_one_replica_to(fifth, brokers + [fifth], keep=victim)
    for t in TOPICS:
        print(f"REASSIGN topic={t} seconds={moved[t]:.2f} copied_bytes={log_bytes(fifth, t)} "
              f"total_bytes={totals[t]}")
    assert log_bytes(fifth, "tiered") < totals["tiered"] / 2
    assert log_bytes(fifth, "plain") >= 0.9 * totals["plain"]

    for b in others + [fifth]:  # SIGTERM: controlled shutdown moves leadership to the rebuilt one
        b.stop()
    kh.wait_until(lambda: partition_state([victim], "tiered")[0] == victim.node_id, 60,
                  what=f"broker {victim.node_id} leading tiered-0")
    kh.wait_until(lambda: kh.list_offset("127.0.0.1", victim.port, "tiered", 0, -1) == RECORDS, 30,
                  what="the high watermark of tiered-0 at the end on the rebuilt leader")
    msgs = kh.ck_consume(victim.bootstrap, "tiered", [0], start={0: 0}, timeout=120)
    assert_reads_back_in_order(msgs)
