"""Partition replication across three combined `shale` nodes on loopback, with real clients.

* A topic with replication factor 3 and min.insync.replicas=2: every replica holds the same
  records (followers fetch from the leader), acks=all producers are acknowledged once the ISR
  has them, and the ISR is visible to kcat.
* Leader failover: the partition leader is killed with SIGKILL and restarted (or frozen with
  SIGSTOP until a new leader acknowledges, then thawed, or cut off from every other process by
  iptables inside a network namespace of the test's own until a new leader acknowledges, then
  reconnected), again and again, while an idempotent acks=all producer (confluent-kafka) and a
  consumer group (kafka-python) run: no acknowledged record is lost, none is duplicated, and the
  consumer carries on. Each returning broker truncates what it had beyond the new leader's log
  and rejoins the ISR; at the end every replica holds the same log.
* min.insync.replicas: with one of three brokers down the ISR shrinks to two; a topic needing
  three refuses acks=all with NOT_ENOUGH_REPLICAS while acks=1 still works.
* Reassignment (kafka-python's AlterPartitionReassignments / ListPartitionReassignments): a
  fourth, broker-only node joins; a move to it while it is down stays in progress (listed) and is
  cancelled; once it runs, partitions move to it under a running idempotent producer, it copies
  the logs byte for byte, the replicas it replaced drop theirs, and nothing acked is lost.
* Committed offsets survive `kill -9` of the group coordinator (the new leader of its
  `__consumer_offsets` partition serves them).
* KIP-392: with the rack-aware selector, a confluent-kafka consumer with `client.rack` reads
  from the follower in its rack, one without it from the leader.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import kafka_helpers as kh
from conftest import free_port
from test_cluster import Node, live_brokers, stop_all, voters_of

KILL_ROUNDS = int(os.environ.get("SHALE_KILL_ROUNDS", "20"))
FREEZE_ROUNDS = int(os.environ.get("SHALE_FREEZE_ROUNDS", "3"))
PARTITION_ROUNDS = int(os.environ.get("SHALE_PARTITION_ROUNDS", "5"))
# Set (to the namespace's name) in the pytest run the partition test starts inside a network
# namespace of its own.
IN_NETNS = "SHALE_IN_NETNS"
ROOT = [] if os.geteuid() == 0 else ["sudo"]
NOT_ENOUGH_REPLICAS = 19


EXTRA = "replica.lag.time.max.ms=6000\nreplica.fetch.backoff.ms=200\n"


def start_cluster(shale_bin, tmp_path, extra: str = EXTRA, gids: bool = False) -> list:
    """Three combined nodes (racks rack-1 … rack-3), every broker unfenced; with `gids`, node
    `i` runs in group 40000 + i."""
    controller_ports = [free_port() for _ in range(3)]
    voters = voters_of(controller_ports)
    nodes = [Node(shale_bin, tmp_path, i + 1, free_port(), controller_ports[i], voters, extra)
             for i in range(3)]
    for n in nodes:
        n.gid = 40000 + n.node_id if gids else None
    for n in nodes:
        n.start()
    kh.wait_until(lambda: live_brokers(nodes[0]) == {1, 2, 3}, 30, what="three unfenced brokers")
    return nodes


@pytest.fixture
def cluster(shale_bin, tmp_path):
    nodes = start_cluster(shale_bin, tmp_path)
    yield nodes
    kh.close_all_clients()
    stop_all(nodes)
    for n in nodes:
        print(f"--- node {n.node_id} log tail ---\n" + "\n".join(n.log.read_text().splitlines()[-40:]))


def create(node: Node, name: str, partitions: int, rf: int = 3, **config):
    from confluent_kafka.admin import NewTopic
    topic = NewTopic(name, num_partitions=partitions, replication_factor=rf,
                     config={k.replace("_", "."): str(v) for k, v in config.items()})
    kh.ck_admin(node.bootstrap).create_topics([topic], request_timeout=20)[name].result(timeout=30)


def partition_state(nodes: list, topic: str, partition: int = 0, replicas: bool = False):
    """(leader, isr) of a partition as the first live broker reports it (and its replicas when
    `replicas`), None if none answers."""
    for n in nodes:
        if not n.alive() or getattr(n, "frozen", False):
            continue
        try:
            md = kh.raw_metadata("127.0.0.1", n.port, [topic])
        except (OSError, kh.ConnectionClosed):
            continue
        for p in md["topics"][topic]["partitions"]:
            if p["partition"] == partition:
                state = p["leader"], set(p["isr"])
                return state + (p["replicas"],) if replicas else state
    return None


def agreed_state(nodes: list, topic: str):
    """(leader, isr) when every live broker names the same leader and a full ISR, else None (a
    broker that was just thawed may still believe it leads)."""
    states = []
    for n in nodes:
        if not n.alive() or getattr(n, "frozen", False):
            continue
        state = partition_state([n], topic)
        if state is None or state[0] <= 0 or len(state[1]) != len(nodes):
            return None
        states.append(state)
    return states[0] if states and all(s == states[0] for s in states) else None


def segment_bytes(node: Node, topic: str) -> list:
    """The bytes of every partition's log files on `node`, by partition."""
    return [segment_bytes_of(node, d.name) for d in sorted(node.dir.glob(f"{topic}-*"))]


def segment_bytes_of(node: Node, partition_dir: str) -> bytes:
    """The bytes of one partition's log files on `node` (empty when it has none)."""
    d = node.dir / partition_dir
    return b"".join(f.read_bytes() for f in sorted(d.glob("*.log"))) if d.exists() else b""


def test_followers_copy_the_leader_and_acks_all_waits_for_the_isr(cluster, kcat_bin):
    create(cluster[0], "r3", 3, min_insync_replicas=2)
    out = subprocess.run([kcat_bin, "-b", cluster[1].bootstrap, "-L", "-t", "r3"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    assert out.count("replicas: ") == 3 and out.count("isrs: ") == 3, out
    for line in out.splitlines():
        if "isrs:" in line:
            assert sorted(line.split("isrs: ")[1].split(",")) == ["1", "2", "3"], line

    p = kh.ck_producer(cluster[1].bootstrap, acks="all")
    failed = []
    for i in range(3000):
        p.produce("r3", value=b"v%d" % i, partition=i % 3,
                  on_delivery=lambda e, m: e is not None and failed.append(e))
    assert p.flush(30) == 0 and not failed, failed[:3]

    # Every follower holds byte-identical logs once the high watermark covers everything.
    kh.wait_until(lambda: segment_bytes(cluster[0], "r3") == segment_bytes(cluster[1], "r3")
                  == segment_bytes(cluster[2], "r3"), 20, what="identical replicas")
    assert all(len(b) > 10_000 for b in segment_bytes(cluster[0], "r3"))

    from kafka import KafkaConsumer
    consumer = kh._track(KafkaConsumer("r3", bootstrap_servers=cluster[2].bootstrap,
                                       group_id="g-r3", auto_offset_reset="earliest",
                                       consumer_timeout_ms=20000))
    got = [m.value for _, m in zip(range(3000), consumer)]
    assert sorted(got) == sorted(b"v%d" % i for i in range(3000))


class Producer(threading.Thread):
    """An idempotent acks=all producer sending "0", "1", … until stopped; remembers what was
    acknowledged."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = 1):
        super().__init__(daemon=True)
        self.partitions = partitions
        # A frozen leader keeps its connections open: librdkafka gives up on requests in
        # flight there only at its request timeout (30 s by default), 10 s here.
        self.p = kh.ck_producer(bootstrap, **{"enable.idempotence": True, "acks": "all",
                                              "message.timeout.ms": 120000, "linger.ms": 2,
                                              "request.timeout.ms": 10000,
                                              "socket.timeout.ms": 10000})
        self.topic, self.acked, self.errors = topic, set(), []
        self.sent_at, self.acked_at = {}, {}
        self.stopping = threading.Event()

    def _done(self, err, msg):
        if err is None:
            n = int(msg.value())
            self.acked.add(n)
            self.acked_at[n] = time.monotonic()
        else:
            self.errors.append(err)

    def failover_after(self, t: float):
        """Seconds from `t` to the acknowledgement of the first record produced after `t`, None
        while there is none."""
        times = [self.acked_at[n] for n, at in list(self.sent_at.items())
                 if at > t and n in self.acked_at]
        return min(times) - t if times else None

    def run(self):
        n = 0
        while not self.stopping.is_set():
            try:
                self.p.produce(self.topic, value=b"%d" % n, partition=n % self.partitions,
                               on_delivery=self._done)
                self.sent_at[n] = time.monotonic()
                n += 1
            except BufferError:
                pass
            self.p.poll(0.005)
        self.p.flush(120)


class Consumer(threading.Thread):
    """A kafka-python group member collecting every value it reads."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        from kafka import KafkaConsumer
        self.c = kh._track(KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}",
                                         auto_offset_reset="earliest", request_timeout_ms=15000,
                                         enable_auto_commit=True, auto_commit_interval_ms=500))
        self.values, self.stopping = [], threading.Event()

    def run(self):
        while not self.stopping.is_set():
            for records in self.c.poll(timeout_ms=200).values():
                self.values.extend(int(r.value) for r in records)


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_losing_the_leader_loses_and_duplicates_no_acked_record(cluster, fault):
    """`kill`: SIGKILL of the leader, then a restart. `freeze`: SIGSTOP of the leader until a
    new one acknowledges, then SIGCONT — the old leader wakes up believing it still leads, with
    client requests queued on its sockets, as after a network partition heals."""
    lose_the_leader(cluster, fault, KILL_ROUNDS if fault == "kill" else FREEZE_ROUNDS)


@pytest.mark.timeout(900)
def test_a_partitioned_leader_loses_and_duplicates_no_acked_record(request, shale_bin, tmp_path):
    """The leader is cut off from every other process (brokers, controllers, clients) while it
    keeps running, until a new leader acknowledges; then the network heals. The test runs itself
    again inside a network namespace of its own, where each node runs in a group of its own and
    iptables drops whatever the victim sends and whatever is sent to its ports."""
    if IN_NETNS not in os.environ:
        run_in_a_network_namespace(request.node.name)
        return
    nodes = start_cluster(shale_bin, tmp_path, gids=True)
    try:
        lose_the_leader(nodes, "partition", PARTITION_ROUNDS)
    finally:
        kh.close_all_clients()
        stop_all(nodes)
        for n in nodes:
            tail = "\n".join(n.log.read_text().splitlines()[-30:])
            print(f"--- node {n.node_id} log tail ---\n{tail}")


def run_in_a_network_namespace(test: str):
    """Runs `test` of this file again in a new network namespace (its own loopback, its own
    iptables) and fails if it fails there."""
    ns = f"shale-test-{os.getpid()}"
    subprocess.run(ROOT + ["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(ROOT + ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
                       check=True)
        cmd = ROOT + ["ip", "netns", "exec", ns, "env", f"{IN_NETNS}={ns}", sys.executable,
                      "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s",
                      f"{Path(__file__).name}::{test}"]
        run = subprocess.run(cmd, cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=840)
        print(run.stdout[-30000:], run.stderr[-5000:])
        assert run.returncode == 0, f"the run inside {ns} failed (exit {run.returncode})"
    finally:
        subprocess.run(ROOT + ["ip", "netns", "del", ns], check=False)


def cut_off(node, on: bool):
    """Drops (on) or stops dropping every packet `node` sends and every packet sent to its
    ports; only ever run inside the test's own network namespace."""
    assert IN_NETNS in os.environ
    rules = [["-m", "owner", "--gid-owner", str(node.gid)]]
    rules += [["-p", "tcp", "--dport", str(p)] for p in (node.port, node.controller_port)]
    for match in rules:
        subprocess.run(ROOT + ["iptables", "-I" if on else "-D", "OUTPUT", "-o", "lo"] + match
                       + ["-j", "DROP"], check=True)


def lose_the_leader(cluster: list, fault: str, rounds: int):
    """`rounds` times: loses the leader of a fresh topic to `fault` under an idempotent acks=all
    producer and a group consumer, and brings it back; then checks nothing acked was lost or
    duplicated and every replica holds the same log."""
    topic = f"lose-{fault}"
    create(cluster[0], topic, 1, min_insync_replicas=2)
    producer = Producer(",".join(n.bootstrap for n in cluster), topic)
    consumer = Consumer(",".join(n.bootstrap for n in cluster), topic)
    producer.start()
    consumer.start()
    failover = []
    try:
        for round_ in range(rounds):
            kh.wait_until(lambda: len(producer.acked) > 0, 30, what="acks")
            leader, isr = kh.wait_until(lambda: agreed_state(cluster, topic), 60,
                                        what="a leader and a full ISR every broker agrees on")
            victim = cluster[leader - 1]
            if fault == "kill":
                victim.kill()
            else:
                victim.frozen = True  # partition_state() asks no frozen node
                if fault == "freeze":
                    victim.proc.send_signal(signal.SIGSTOP)
                else:
                    cut_off(victim, True)
            lost_at = time.monotonic()  # once the fault is in place (iptables takes a while)
            failover.append(kh.wait_until(lambda: producer.failover_after(lost_at), 90,
                                          what=f"an ack of a record produced after the {fault}"))
            if fault == "kill":
                victim.start()
            else:
                if fault == "freeze":
                    victim.proc.send_signal(signal.SIGCONT)
                else:
                    cut_off(victim, False)
                victim.frozen = False
            print(f"round {round_}: {fault} of leader {leader}, next ack after "
                  f"{failover[-1]:.2f} s, {len(producer.acked)} acked")
    finally:
        for n in cluster:
            if getattr(n, "frozen", False):
                if fault == "freeze":
                    n.proc.send_signal(signal.SIGCONT)
                else:
                    cut_off(n, False)
                n.frozen = False
        producer.stopping.set()
        producer.join(150)
    acked = producer.acked
    assert not producer.errors, producer.errors[:5]
    kh.wait_until(lambda: set(consumer.values) >= acked, 60, what="the consumer to read every ack")
    consumer.stopping.set()
    consumer.join(10)

    # Read the whole partition again from the start: every acked value exactly once; and every
    # replica ends up with the same log (what a returning leader wrote beyond the new leader's
    # log was truncated).
    seen = read_all(cluster[0].bootstrap, topic, 1)
    kh.wait_until(lambda: segment_bytes(cluster[0], topic) == segment_bytes(cluster[1], topic)
                  == segment_bytes(cluster[2], topic), 60, what="identical replicas")
    assert len(seen) == len(set(seen)), "duplicates in the log"
    assert acked <= set(seen), f"lost acked records: {sorted(acked - set(seen))[:10]}"
    failover.sort()
    print(f"\nfailover ({fault} of the leader to the next acked produce) over {len(failover)} rounds: "
          f"p50 {failover[len(failover) // 2]:.2f} s, max {failover[-1]:.2f} s; "
          f"{len(acked)} records acked, {len(seen)} in the log")


def test_min_insync_replicas_refuses_acks_all_when_the_isr_is_too_small(cluster):
    create(cluster[0], "strict", 1, min_insync_replicas=3)
    leader, _ = partition_state(cluster, "strict")
    follower = next(n for n in cluster if n.node_id != leader)
    follower.kill()
    kh.wait_until(lambda: len(partition_state(cluster, "strict")[1]) == 2, 30, what="ISR of two")
    live = next(n for n in cluster if n.alive())
    p = kh.ck_producer(live.bootstrap, acks="all", retries=0, **{"message.timeout.ms": 10000})
    errors = []
    p.produce("strict", value=b"x", partition=0, on_delivery=lambda e, m: errors.append(e))
    p.flush(30)
    assert errors and errors[0] is not None and errors[0].code() == NOT_ENOUGH_REPLICAS, errors
    p1 = kh.ck_producer(live.bootstrap, acks=1)
    ok = []
    p1.produce("strict", value=b"y", partition=0, on_delivery=lambda e, m: ok.append(e))
    p1.flush(30)
    assert ok == [None], ok
    follower.start()
    kh.wait_until(lambda: len(partition_state(cluster, "strict")[1]) == 3, 60, what="ISR of three")


def read_all(bootstrap: str, topic: str, partitions: int) -> list:
    """Every value of `topic` from offset 0, read with confluent-kafka."""
    from confluent_kafka import TopicPartition as Tp
    c = kh.ck_consumer(bootstrap)
    c.assign([Tp(topic, p, 0) for p in range(partitions)])
    seen = []
    while True:
        m = c.poll(5)
        if m is None or m.error() is not None:
            return seen
        seen.append(int(m.value()))


def test_reassignment_moves_partitions_to_a_new_broker_under_load(cluster, shale_bin, tmp_path):
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.errors import NoReassignmentInProgressError
    voters = voters_of([n.controller_port for n in cluster])
    fourth = Node(shale_bin, tmp_path, 4, free_port(), None, voters, EXTRA)
    fourth.start()
    kh.wait_until(lambda: live_brokers(cluster[0]) == {1, 2, 3, 4}, 30, what="a fourth broker")
    create(cluster[0], "moving", 2, rf=2, min_insync_replicas=1)
    tp0, tp1 = TopicPartition("moving", 0), TopicPartition("moving", 1)

    # Broker 4 down (still registered): the move cannot complete, is listed, and is cancelled.
    # (The admin client is made afterwards: kafka-python does not retry a request it sent to a
    # broker that died since its last metadata.)
    fourth.kill()
    kh.wait_until(lambda: 4 not in live_brokers(cluster[0]), 30, what="broker 4 fenced")
    admin = kh._track(KafkaAdminClient(bootstrap_servers=cluster[1].bootstrap))
    _, _, before = partition_state(cluster, "moving", 0, replicas=True)
    assert admin.alter_partition_reassignments({tp0: [before[0], 4]}) == {tp0: None}
    ongoing = admin.list_partition_reassignments()
    assert ongoing[tp0]["adding_replicas"] == [4], ongoing
    assert admin.alter_partition_reassignments({tp0: None}) == {tp0: None}
    assert admin.list_partition_reassignments() == {}
    assert partition_state(cluster, "moving", 0, replicas=True)[2] == before
    assert admin.alter_partition_reassignments({tp1: None}) == {tp1: NoReassignmentInProgressError}

    # Broker 4 back: both partitions move under a running producer.
    fourth.start()
    kh.wait_until(lambda: live_brokers(cluster[0]) == {1, 2, 3, 4}, 30, what="broker 4 back")
    producer = Producer(",".join(n.bootstrap for n in cluster), "moving", partitions=2)
    producer.start()
    try:
        kh.wait_until(lambda: len(producer.acked) > 500, 30, what="acks before the move")
        targets = {}
        for tp in (tp0, tp1):
            _, _, replicas = partition_state(cluster, "moving", tp.partition, replicas=True)
            targets[tp] = [4, replicas[1]]
        started = time.monotonic()
        assert admin.alter_partition_reassignments(targets) == {tp0: None, tp1: None}
        kh.wait_until(lambda: admin.list_partition_reassignments() == {}, 60, what="moves done")
        took = time.monotonic() - started
        for tp, target in targets.items():
            leader, isr, replicas = partition_state(cluster, "moving", tp.partition, replicas=True)
            assert replicas == target and isr == set(target) and leader in target, (tp, replicas)
        acked_during = len(producer.acked)
        kh.wait_until(lambda: len(producer.acked) > acked_during + 200, 30, what="acks after the move")
    finally:
        producer.stopping.set()
        producer.join(150)
    assert not producer.errors, producer.errors[:5]
    print(f"\nreassignment of 2 partitions to a new broker: done {took:.2f} s after the request, "
          f"{len(producer.acked)} records acked")

    # The new replica holds the same log as the one it was moved beside; the old replicas go.
    for tp, target in targets.items():
        other = cluster[target[1] - 1]
        name = f"moving-{tp.partition}"
        kh.wait_until(lambda: segment_bytes_of(fourth, name) == segment_bytes_of(other, name)
                      and segment_bytes_of(fourth, name), 30, what=f"{name} copied to broker 4")
        gone = [n for n in cluster if n.node_id not in target]
        kh.wait_until(lambda: all(not (n.dir / name).exists() for n in gone), 30,
                      what=f"{name} removed from its old replicas")
    seen = read_all(fourth.bootstrap, "moving", 2)
    assert len(seen) == len(set(seen)), "duplicates"
    assert producer.acked <= set(seen), f"lost: {sorted(producer.acked - set(seen))[:10]}"
    stop_all([fourth])


def test_a_consumer_with_a_rack_reads_from_the_replica_in_its_rack(shale_bin, tmp_path):
    """KIP-392: with Kafka's RackAwareReplicaSelector the leader (rack-1) points a consumer with
    `client.rack=rack-2` at broker 2, which serves it; without `client.rack` the leader does."""
    import json
    selector = "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector\n"
    nodes = start_cluster(shale_bin, tmp_path, EXTRA + selector)
    try:
        from confluent_kafka.admin import NewTopic
        topic = NewTopic("racked", 1, -1, replica_assignment=[[1, 2, 3]])
        kh.ck_admin(nodes[0].bootstrap).create_topics([topic])["racked"].result(30)
        p = kh.ck_producer(nodes[0].bootstrap, acks="all")
        for i in range(2000):
            p.produce("racked", value=b"%d" % i, partition=0)
        assert p.flush(30) == 0

        def read(**extra):
            stats = []
            c = kh.ck_consumer(",".join(n.bootstrap for n in nodes), **extra,
                               **{"statistics.interval.ms": 200,
                                  "stats_cb": lambda s: stats.append(json.loads(s))})
            from confluent_kafka import TopicPartition as Tp
            c.assign([Tp("racked", 0, 0)])
            got = []
            while len(got) < 2000:
                m = c.poll(10)
                assert m is not None, f"stalled after {len(got)} records"
                if m.error() is None:
                    got.append(int(m.value()))
            kh.wait_until(lambda: c.poll(0.2) is None and stats, 10, what="statistics")
            c.close()
            return got, stats[-1]["topics"]["racked"]["partitions"]["0"]["broker"]

        got, served_by = read(**{"client.rack": "rack-2"})
        assert got == list(range(2000)) and served_by == 2, served_by
        got, served_by = read()
        assert got == list(range(2000)) and served_by == 1, served_by
    finally:
        kh.close_all_clients()
        stop_all(nodes)


def test_committed_offsets_survive_the_loss_of_the_coordinator(cluster):
    """A commit is answered once the ISR of its `__consumer_offsets` partition has it (Kafka's
    coordinator writes with acks=-1): after `kill -9` of the coordinator, the partition's new
    leader coordinates the group and serves the committed offset."""
    from confluent_kafka import TopicPartition as Tp
    create(cluster[0], "offs", 1)
    p = kh.ck_producer(cluster[0].bootstrap, acks="all")
    for i in range(100):
        p.produce("offs", value=b"%d" % i, partition=0)
    assert p.flush(30) == 0
    everyone = ",".join(n.bootstrap for n in cluster)
    c = kh.ck_consumer(everyone, **{"group.id": "g-offs"})
    c.assign([Tp("offs", 0, 0)])
    got = 0
    while got < 60:
        m = c.poll(10)
        assert m is not None
        got += m.error() is None
    c.commit(offsets=[Tp("offs", 0, 60)], asynchronous=False)
    group = kh.ck_admin(everyone).describe_consumer_groups(["g-offs"])["g-offs"].result(30)
    coordinator = cluster[group.coordinator.id - 1]
    c.close()
    coordinator.kill()
    others = ",".join(n.bootstrap for n in cluster if n is not coordinator)
    c2 = kh.ck_consumer(others, **{"group.id": "g-offs"})

    def committed():
        try:
            return c2.committed([Tp("offs", 0)], timeout=5)[0].offset == 60
        except Exception:  # noqa: BLE001 - the coordinator is moving: retry
            return False

    kh.wait_until(committed, 60, what="the committed offset from the new coordinator")
    coordinator.start()
