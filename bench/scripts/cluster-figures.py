#!/usr/bin/env python3
"""Figures of a three-node cluster of combined `shale` nodes on loopback.

    cluster-figures.py SHALE_BIN [topics] [failovers]

Prints, as markdown table rows:
* start: the three processes started until every broker is unfenced in Metadata;
* metadata propagation: CreateTopics through a broker that is not the active controller
  (forwarded; the answer comes once the entry broker has applied the topic) until it is
  acknowledged, then until the two other brokers list it with a leader, polled with raw
  Metadata requests in a tight loop (p50 / p90 / max);
* controller failover: `kill -9` of the active controller until the survivors agree on a new
  quorum leader (DescribeQuorum every 20 ms), and until a CreateTopics through a survivor
  succeeds; the killed node is restarted (and unfenced) between rounds;
* graceful handover: SIGTERM of the active controller until a new leader.

Nodes run the test suite's settings (heartbeat 500 ms, session 3 s). Uses the suite's helpers
(tests/python) and its venv (confluent-kafka); KEEP_LOGS=DIR keeps the nodes' logs, VERBOSE=1
prints failed creations.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))

import kafka_helpers as kh  # noqa: E402
from conftest import free_port  # noqa: E402
from test_cluster import Node, active_controller, live_brokers, stop_all, voters_of  # noqa: E402


def start_cluster(binary: Path, root: Path) -> tuple[list, float]:
    ports = [free_port() for _ in range(3)]
    voters = voters_of(ports)
    nodes = [Node(binary, root, i + 1, free_port(), ports[i], voters) for i in range(3)]
    started = time.monotonic()
    for n in nodes:
        n.start()
    kh.wait_until(lambda: live_brokers(nodes[0]) == {1, 2, 3}, 60, what="unfenced brokers")
    return nodes, time.monotonic() - started


def has_topic(conn: kh.RawConnection, name: str) -> bool:
    t = kh.metadata_v4(conn, [name])["topics"].get(name)
    return t is not None and t["error_code"] == 0 and \
        all(p["leader"] >= 0 for p in t["partitions"])


def create(node: Node, name: str, timeout: float = 10) -> bool:
    from confluent_kafka.admin import NewTopic
    try:
        fs = kh.ck_admin(node.bootstrap).create_topics([NewTopic(name, 1, 1)],
                                                       request_timeout=timeout)
        fs[name].result(timeout=timeout + 5)
        return True
    except Exception as e:  # noqa: BLE001 - retriable while no controller is active
        if os.environ.get("VERBOSE"):
            print(f"  {time.monotonic():.2f} create {name} via {node.node_id}: {e}",
                  file=sys.stderr)
        return False


def propagation(nodes: list, topics: int) -> list:
    controller = kh.wait_until(lambda: active_controller(nodes), 10, what="a controller")
    entry = next(n for n in nodes if n.node_id != controller)
    others = [kh.RawConnection("127.0.0.1", n.port) for n in nodes if n is not entry]
    acks, lags = [], []
    for i in range(topics):
        name = f"prop-{i}"
        sent = time.monotonic()
        assert create(entry, name), name
        acked = time.monotonic()
        pending = list(others)
        while pending:
            pending = [n for n in pending if not has_topic(n, name)]
        acks.append(acked - sent)
        lags.append(time.monotonic() - acked)
    for c in others:
        c.close()
    return acks, lags


def spread(values: list) -> str:
    """p50 / p90 / max in milliseconds."""
    v = sorted(values)
    p90 = v[max(0, int(len(v) * 0.9) - 1)]
    return f"{statistics.median(v) * 1e3:.1f} / {p90 * 1e3:.1f} / {v[-1] * 1e3:.1f} ms"


def new_leader_after(nodes: list, victim: Node, stop) -> float:
    stop()
    t0 = time.monotonic()
    survivors = [n for n in nodes if n is not victim]
    while True:
        leader = active_controller(survivors)
        if leader is not None and leader != victim.node_id:
            return time.monotonic() - t0
        time.sleep(0.02)


def failover(nodes: list, round_no: int) -> tuple[float, float]:
    controller = kh.wait_until(lambda: active_controller(nodes), 10, what="a controller")
    victim = next(n for n in nodes if n.node_id == controller)
    entry = next(n for n in nodes if n is not victim)
    kh.close_all_clients()
    killed = time.monotonic()
    elected = new_leader_after(nodes, victim, victim.kill)
    i = 0
    while not create(entry, f"failover-{round_no}-{i}", timeout=2):
        kh.close_all_clients()
        i += 1
    created = time.monotonic() - killed
    victim.start()
    # Its own answer, not the others' image: until the old incarnation's session expires the
    # others still list it, while the new one's registration is refused (as in Kafka).
    kh.wait_until(lambda: live_brokers(victim) == {1, 2, 3}, 60, what="the victim back")
    return elected, created


def handover(nodes: list) -> float:
    controller = kh.wait_until(lambda: active_controller(nodes), 10, what="a controller")
    victim = next(n for n in nodes if n.node_id == controller)
    took = new_leader_after(nodes, victim, victim.proc.terminate)
    victim.proc.wait(timeout=30)
    return took


def main() -> None:
    binary = Path(sys.argv[1]).resolve()
    topics = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with tempfile.TemporaryDirectory(prefix="shale-cluster-figures-") as root:
        nodes, ready = start_cluster(binary, Path(root))
        try:
            print(f"| start until 3 brokers unfenced | {ready:.2f} s |")
            acks, lags = propagation(nodes, topics)
            print(f"| CreateTopics through a non-controller broker until acknowledged, "
                  f"p50 / p90 / max of {topics} | {spread(acks)} |")
            print(f"| then until the 2 other brokers list it with a leader | {spread(lags)} |")
            for r in range(rounds):
                elected, created = failover(nodes, r)
                print(f"| kill -9 of the active controller: new leader / next topic created "
                      f"(round {r + 1}) | {elected:.2f} / {created:.2f} s |")
            print(f"| SIGTERM of the active controller until a new leader "
                  f"| {handover(nodes):.2f} s |")
        finally:
            kh.close_all_clients()
            stop_all(nodes)
            if os.environ.get("KEEP_LOGS"):
                shutil.copytree(root, os.environ["KEEP_LOGS"], dirs_exist_ok=True)


if __name__ == "__main__":
    main()
