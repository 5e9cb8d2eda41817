#!/usr/bin/env python3
"""Long-poll soak: broker RSS and CPU over DURATION seconds (default 600) of mixed idle and busy
partitions, many long-polling consumers.

Topic of PARTS partitions (default 50), BUSY of them (default 5) receiving RATE records/s in total
(default 2,000, 100-byte values, one record per produce request so every append wakes fetches);
CONSUMERS confluent-kafka consumers (default 20), each assigned every partition from the end,
fetch.wait.max.ms=500, in one consumer group each (no rebalances). The broker's VmRSS and
utime+stime are sampled every 10 s; one JSON line per sample goes to OUT (default stdout) and a
summary line at the end. Needs SHALE_BIN and confluent-kafka (the test venv has it).

    SHALE_BIN=target/release/shale .venv/bin/python bench/scripts/soak-longpoll.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

DURATION = int(os.environ.get("DURATION", "600"))
PARTS = int(os.environ.get("PARTS", "50"))
BUSY = int(os.environ.get("BUSY", "5"))
RATE = int(os.environ.get("RATE", "2000"))
CONSUMERS = int(os.environ.get("CONSUMERS", "20"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(pid: int) -> dict:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return {"rss_kib": rss, "cpu_s": round((int(fields[11]) + int(fields[12])) / CLK_TCK, 2)}


def wait_ready(bootstrap: str, deadline: float):
    while True:
        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
        if md.brokers:
            return
        if time.monotonic() > deadline:
            raise SystemExit("broker did not start")


def produce(bootstrap: str, topic: str, stop: threading.Event, sent: list):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    tick, next_tick, i = 1.0 / RATE, time.monotonic(), 0
    while not stop.is_set():
        p.produce(topic, value=b"x" * 100, partition=i % BUSY)
        i += 1
        sent[0] += 1
        p.poll(0)
        next_tick += tick
        pause = next_tick - time.monotonic()
        if pause > 0:
            stop.wait(pause)  # pacing the load, not waiting for a condition
    p.flush(30)


def consume(bootstrap: str, topic: str, n: int, stop: threading.Event, got: list):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"soak-{n}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 500})
    c.assign([TopicPartition(topic, p, -1) for p in range(PARTS)])  # -1: from the end
    while not stop.is_set():
        for m in c.consume(1000, timeout=0.5):
            if m.error() is None:
                got[n] += 1
    c.close()


def main():
    out = open(os.environ["OUT"], "a") if os.environ.get("OUT") else sys.stdout
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        broker = subprocess.Popen(
            [os.environ["SHALE_BIN"], "--override", f"listeners=PLAINTEXT://{bootstrap}",
             "--override", f"log.dirs={data}/logs", "--override",
             f"shale.metrics.address=127.0.0.1:{free_port()}"],
            stdout=open(f"{data}/broker.log", "wb"), stderr=subprocess.STDOUT)
        try:
            wait_ready(bootstrap, time.monotonic() + 30)
            topic = "soak"
            admin = AdminClient({"bootstrap.servers": bootstrap})
            admin.create_topics([NewTopic(topic, PARTS, 1)])[topic].result(15)
            stop, sent, got = threading.Event(), [0], [0] * CONSUMERS
            threads = [threading.Thread(target=consume, args=(bootstrap, topic, n, stop, got))
                       for n in range(CONSUMERS)]
            threads.append(threading.Thread(target=produce, args=(bootstrap, topic, stop, sent)))
            for t in threads:
                t.start()
            start, samples = time.monotonic(), []
            while time.monotonic() - start < DURATION:
                time.sleep(10)  # the sampling period
                s = {"t_s": round(time.monotonic() - start), **sample(broker.pid),
                     "sent": sent[0], "consumed": sum(got)}
                samples.append(s)
                print(json.dumps({"scenario": "soak", **s}), file=out, flush=True)
            stop.set()
            for t in threads:
                t.join(60)
            first = next(s for s in samples if s["t_s"] >= 60)  # after a minute of warm-up
            last = samples[-1]
            print(json.dumps({
                "scenario": "soak-summary", "duration_s": DURATION, "partitions": PARTS,
                "busy": BUSY, "rate": RATE, "consumers": CONSUMERS,
                "rss_kib_at_60s": first["rss_kib"], "rss_kib_end": last["rss_kib"],
                "rss_kib_max": max(s["rss_kib"] for s in samples),
                "cpu_s": last["cpu_s"], "cpu_pct": round(100 * last["cpu_s"] / last["t_s"], 1),
                "sent": sent[0], "consumed": sum(got),
                "expected_consumed": sent[0] * CONSUMERS}), file=out, flush=True)
        finally:
            broker.terminate()
            broker.wait(30)


if __name__ == "__main__":
    main()
