#!/usr/bin/env python3
"""Descriptors and memory of a broker holding many partitions or many segments.

    open-files.py SHALE_BIN partitions N [key=value ...]   # N partitions (topics of 1,000), one record each
    open-files.py SHALE_BIN segments N [key=value ...]     # one partition with N segments of 16 KiB

Prints one markdown table row per phase: open descriptors (/proc/<pid>/fd), the broker's own
count of log files (shale_log_open_files, absent on builds before the budget), VmRSS and VmHWM.
Needs confluent-kafka (the tests' venv) and a ulimit -n high enough for the build measured.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BROKERS = []


class Broker:
    def __init__(self, binary: str, data: str, overrides: dict):
        self.binary, self.data = binary, data
        self.port, self.metrics = free_port(), free_port()
        self.overrides = {"listeners": f"PLAINTEXT://127.0.0.1:{self.port}", "log.dirs": data,
                          "shale.metrics.address": f"127.0.0.1:{self.metrics}", **overrides}
        self.proc = None
        BROKERS.append(self)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> float:
        cmd = [self.binary]
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        t0 = time.monotonic()
        log = open(os.path.join(self.data, "..", "broker.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "NO_COLOR": "1"})
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"broker exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return time.monotonic() - t0
            except OSError:
                time.sleep(0.02)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=300)

    def sample(self) -> dict:
        fds = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        status = open(f"/proc/{self.proc.pid}/status").read()
        kib = lambda k: int(re.search(rf"^{k}:\s+(\d+)", status, re.M).group(1))  # noqa: E731
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=10).read()
            m = re.search(rb"^shale_log_open_files (\S+)$", body, re.M)
            log_files = int(float(m.group(1))) if m else None
        except OSError:
            log_files = None
        return {"fds": fds, "log_files": log_files, "rss": kib("VmRSS") / 1024, "hwm": kib("VmHWM") / 1024}


def row(label: str, s: dict, extra: str = ""):
    lf = "-" if s["log_files"] is None else f"{s['log_files']:,}"
    print(f"| {label} | {s['fds']:,} | {lf} | {s['rss']:.1f} | {s['hwm']:.1f} | {extra} |", flush=True)


def produce(bootstrap: str, items, value: bytes):
    # Batches of at most 8 KB: under the 16 KiB segments of the segments scenario.
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all", "batch.size": 8000,
                  "queue.buffering.max.messages": 1_000_000})
    for topic, part in items:
        while True:
            try:
                p.produce(topic, partition=part, value=value)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(600) == 0


def consume_all(bootstrap: str, topic: str, partitions: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "open-files", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    n, eof = 0, set()
    while len(eof) < partitions:
        for m in c.consume(10000, timeout=1):
            if m.error():
                eof.add(m.partition())
            else:
                n += 1
    c.close()
    return n


def partitions(binary: str, n: int, overrides: dict):
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(binary, os.path.join(tmp, "data"), overrides)
        os.makedirs(b.data)
        b.start()
        row("started, empty", b.sample())
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        topics = [(f"p{i}", min(1000, n - i * 1000)) for i in range((n + 999) // 1000)]
        t0 = time.monotonic()
        for name, count in topics:
            admin.create_topics([NewTopic(name, count, 1)], request_timeout=600)[name].result(600)
        dirs = sum(1 for d in os.listdir(b.data) if d.startswith("p"))
        row(f"{n:,} partitions created", b.sample(), f"{time.monotonic() - t0:.1f} s, {dirs:,} log dirs")
        produce(b.bootstrap, [(t, p) for t, c in topics for p in range(c)], b"x" * 100)
        row("one record in each", b.sample())
        b.stop()
        took = b.start()
        row("restarted", b.sample(), f"start {took:.1f} s")
        b.stop()


def segments(binary: str, n: int, overrides: dict):
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(binary, os.path.join(tmp, "data"), {"log.segment.bytes": "16384", **overrides})
        os.makedirs(b.data)
        b.start()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("segs", 1, 1)], request_timeout=60)["segs"].result(60)
        row("started, one partition", b.sample())
        # ~15 KiB per segment: 15 records of 1000 bytes.
        produce(b.bootstrap, [("segs", 0)] * (n * 15), b"y" * 1000)
        segs = sum(1 for f in os.listdir(os.path.join(b.data, "segs-0")) if f.endswith(".log"))
        row(f"{segs:,} segments written", b.sample())
        got = consume_all(b.bootstrap, "segs", 1)
        row("all read back", b.sample(), f"{got:,} records")
        b.stop()
        took = b.start()
        row("restarted", b.sample(), f"start {took:.1f} s")
        consume_all(b.bootstrap, "segs", 1)
        row("all read back after restart", b.sample())
        b.stop()


if __name__ == "__main__":
    binary, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    extra = dict(kv.split("=", 1) for kv in sys.argv[4:])
    print("| phase | descriptors | log files (metric) | RSS MiB | HWM MiB | note |")
    print("|---|---|---|---|---|---|")
    try:
        {"partitions": partitions, "segments": segments}[kind](binary, count, extra)
    finally:
        for br in BROKERS:
            if br.proc is not None and br.proc.poll() is None:
                br.proc.kill()
