#!/usr/bin/env python3
"""Replication figures of three combined `shale` nodes on loopback.

    replication-figures.py SHALE_BIN BENCH_BIN [seconds] [message_size]

Starts three nodes with the test suite's settings (heartbeat 500 ms, session 3 s), creates
one-partition topics led by broker 1 — `rf1` on broker 1 alone and `rf3` on brokers 1, 2, 3
with `min.insync.replicas=2` — and runs shale-bench against broker 1 for each topic with
acks=1 and acks=all (one producer, one consumer, `seconds` each, default 10), interleaved,
twice. Prints one markdown row per run (produce msg/s and MB/s, ack latency p50 / p99) and the JSON lines to
stderr. Uses the test suite's helpers (tests/python) and its venv (confluent-kafka).

Leader failover times come from tests/python/test_replication.py (it prints them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))

import kafka_helpers as kh  # noqa: E402
from conftest import free_port  # noqa: E402
from test_cluster import Node, live_brokers, stop_all, voters_of  # noqa: E402


def start_cluster(binary: Path, root: Path) -> list:
    ports = [free_port() for _ in range(3)]
    voters = voters_of(ports)
    nodes = [Node(binary, root, i + 1, free_port(), ports[i], voters) for i in range(3)]
    for n in nodes:
        n.start()
    kh.wait_until(lambda: live_brokers(nodes[0]) == {1, 2, 3}, 60, what="unfenced brokers")
    return nodes


def create(node: Node, name: str, replicas: list, **config) -> None:
    from confluent_kafka.admin import NewTopic
    topic = NewTopic(name, 1, -1, replica_assignment=[replicas],
                     config={k.replace("_", "."): str(v) for k, v in config.items()})
    kh.ck_admin(node.bootstrap).create_topics([topic], request_timeout=20)[name].result(30)


def run(bench: Path, node: Node, topic: str, acks: str, seconds: float, size: int) -> dict:
    out = subprocess.run(
        [str(bench), "--bootstrap", node.bootstrap, "--topic", topic, "--acks", acks,
         "--duration", str(seconds), "--message-size", str(size), "--producers", "1",
         "--consumers", "1", "--label", f"{topic} acks={acks}"],
        check=True, capture_output=True, text=True, timeout=seconds + 120).stdout
    line = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(line), file=sys.stderr)
    return line


def main() -> None:
    binary, bench = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 1024
    with tempfile.TemporaryDirectory() as tmp:
        nodes = start_cluster(binary, Path(tmp))
        try:
            create(nodes[0], "rf1", [1])
            create(nodes[0], "rf3", [1, 2, 3], min_insync_replicas=2)
            print(f"| topic | acks | produce msg/s | MB/s | ack p50 / p99 ms | consumed |")
            print("|---|---|---|---|---|---|")
            # Interleaved and repeated: on a shared 2-core machine run order matters.
            for acks in ("1", "all", "1", "all"):
                for topic in ("rf1", "rf3"):
                    r = run(bench, nodes[0], topic, acks, seconds, size)
                    p, lat = r["produce"], r["produce"]["ack_latency"]
                    print(f"| {topic} | {acks} | {p['msgs_per_s']:,.0f} | {p['mb_per_s']:.1f} | "
                          f"{lat['p50_us'] / 1000:.1f} / {lat['p99_us'] / 1000:.1f} | "
                          f"{r['consume']['msgs']:,} |")
        finally:
            kh.close_all_clients()
            stop_all(nodes)


if __name__ == "__main__":
    main()
