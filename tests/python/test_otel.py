"""OpenTelemetry traces end to end: the broker exports over OTLP to a real receiver process
(otlp_receiver.py, decoding with opentelemetry-proto) over HTTP/protobuf and gRPC.

A producer writes to a tiered topic (s3s-fs), the segments go to the bucket and leave the
disk, and a consumer reads from offset 0, so the Fetch is served from the remote tier. The
test then finds, among the decoded spans, the Produce request span with its attributes and a
child log.append span, a Fetch span with a child remote.get span, and the CreateTopics span
with its metadata.write child (same trace id, parent span id = the request span's id). With no
OTEL_* variables nothing is exported and nothing about it is logged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kafka_helpers as kh
from conftest import free_port
from test_tiering import produce, tier_config, wait_tiered

RECEIVER = Path(__file__).resolve().parent / "otlp_receiver.py"
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3


class Receiver:
    def __init__(self, out: Path, log: Path, http_port: int, grpc_port: int):
        self.out, self.http_port, self.grpc_port = out, http_port, grpc_port
        self.log = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, str(RECEIVER), "--http-port", str(http_port), "--grpc-port",
                 str(grpc_port), "--out", str(out)],
                stdout=subprocess.PIPE, stderr=f, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            self.proc.kill()
            raise AssertionError(f"OTLP receiver did not start ({line!r}):\n{log.read_text()}")

    def spans(self) -> list:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def otlp_receiver(tmp_path):
    started = []

    def start(http_port=None, grpc_port=None) -> Receiver:
        r = Receiver(tmp_path / f"spans{len(started)}.jsonl", tmp_path / f"receiver{len(started)}.log",
                     http_port or free_port(), grpc_port or free_port())
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def no_otel_env() -> dict:
    """Removes every OTEL_* variable the test runner may have from the broker's environment."""
    return {k: None for k in os.environ if k.startswith("OTEL_")}


def children(spans: list, parent: dict, name: str) -> list:
    return [s for s in spans if s["name"] == name and s["parent_span_id"] == parent["span_id"]
            and s["trace_id"] == parent["trace_id"]]


def with_child(spans: list, name: str, child: str):
    """The first `name` span that has a `child` span, and that child."""
    for s in spans:
        if s["name"] == name:
            kids = children(spans, s, child)
            if kids:
                return s, kids[0]
    return None


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_produce_and_cold_fetch_spans(protocol, otlp_receiver, s3_server, broker_factory):
    r = otlp_receiver()
    port = r.grpc_port if protocol == "grpc" else r.http_port
    s3_server.make_bucket("tiered")
    overrides = {"remote.log.manager.task.interval.ms": "200",
                 "log.retention.check.interval.ms": "200"}
    overrides.update(s3_server.broker_overrides("tiered"))
    b = broker_factory(overrides=overrides, start=False)
    b.env.update(no_otel_env())
    b.env.update({
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        # HTTP: frequent exports while running. gRPC: none until shutdown, whose flush
        # must deliver everything.
        "OTEL_BSP_SCHEDULE_DELAY": "200" if protocol != "grpc" else "600000",
        "OTEL_BSP_MAX_QUEUE_SIZE": "65536",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "65536",
    })
    b.start()

    topic = "traced"
    kh.ck_create_topic(b.bootstrap, topic, config=tier_config(16384))
    n = 3000
    gens = [kh.make_record(i) for i in range(n)]
    res = produce(b.bootstrap, topic, gens, **{"client.id": "otel-producer"})
    assert len(res.offsets) == n
    wait_tiered(b, topic, min_local=1)
    got = kh.ck_consume(b.bootstrap, topic, [0], start={0: 0}, **{"client.id": "otel-consumer"})
    assert len(got) == n, f"cold read returned {len(got)} of {n} records"

    if protocol == "grpc":
        b.stop()
        assert "flushing traces at shutdown failed" not in b.log_text()

    def complete():
        spans = r.spans()
        found = (with_child(spans, "Produce", "log.append"), with_child(spans, "Fetch", "remote.get"),
                 with_child(spans, "CreateTopics", "metadata.write"))
        return (spans, *found) if all(found) else None

    spans, (prod, append), (fetch, get), (create, write) = kh.wait_until(
        complete, timeout=30, interval=0.2,
        what=f"Produce/log.append, Fetch/remote.get and CreateTopics/metadata.write spans "
             f"(names so far: {sorted({s['name'] for s in r.spans()})})")

    assert {s["transport"] for s in spans} == {"grpc" if protocol == "grpc" else "http"}
    assert {s["service"] for s in spans} == {"shale"}, {s["service"] for s in spans}

    a = prod["attributes"]
    assert prod["kind"] == SPAN_KIND_SERVER and prod["parent_span_id"] == "", prod
    assert a["kafka.api_key"] == 0 and a["kafka.api_name"] == "Produce", a
    assert a["kafka.api_version"] >= 3 and a["kafka.client_id"] == "otel-producer", a
    assert a["kafka.topic_count"] == 1 and a["kafka.partition_count"] == 1, a
    assert a["kafka.error_code"] == 0 and a["messaging.system"] == "kafka", a
    assert isinstance(a["kafka.correlation_id"], int), a
    assert append["attributes"]["kafka.topic"] == topic and append["attributes"]["kafka.partition"] == 0
    assert append["attributes"]["kafka.base_offset"] >= 0, append
    assert prod["start"] <= append["start"] <= append["end"] <= prod["end"], (prod, append)

    f = fetch["attributes"]
    assert fetch["kind"] == SPAN_KIND_SERVER and f["kafka.api_key"] == 1, f
    assert f["kafka.client_id"] == "otel-consumer" and f["kafka.error_code"] == 0, f
    assert f["kafka.topic_count"] == 1 and f["kafka.partition_count"] == 1, f
    g = get["attributes"]
    assert get["kind"] == SPAN_KIND_CLIENT and g["object_store.operation"] == "get", get
    assert g["object_store.path"].startswith(topic + "-"), g

    assert create["attributes"]["kafka.topic_count"] == 1, create
    assert write["attributes"]["kafka.record_count"] >= 1, write

    # Tiering's uploads are their own traces: a root copy span with the PUTs under it.
    copy = with_child(spans, "tiering.copy_segment", "remote.put")
    assert copy is not None and copy[0]["parent_span_id"] == "", sorted({s["name"] for s in spans})

    # The spans stay out of the log, which keeps its usual lines.
    log = b.log_text()
    assert "kafka.request" not in log and "log.append" not in log
    assert " ERROR " not in log, log[-3000:]


def test_nothing_is_exported_without_otel_variables(otlp_receiver, broker_factory):
    """Off by default: a receiver on OTLP's default ports (4318 HTTP, 4317 gRPC) gets nothing."""
    try:
        r = otlp_receiver(http_port=4318, grpc_port=4317)
    except AssertionError as exc:
        pytest.fail(f"OTLP's default ports 4317/4318 must be free for this test: {exc}", pytrace=False)
    b = broker_factory(start=False)
    b.env.update(no_otel_env())
    b.start()
    topic = "untraced"
    kh.ck_create_topic(b.bootstrap, topic)
    gens = [kh.make_record(i) for i in range(200)]
    produce(b.bootstrap, topic, gens)
    assert len(kh.ck_consume(b.bootstrap, topic, [0])) == len(gens)
    b.stop()
    assert r.spans() == []
    log = b.log_text()
    assert " ERROR " not in log and " WARN " not in log, log[-3000:]
    for word in ("opentelemetry", "otlp", "OTLP", "kafka.request"):
        assert word not in log, f"{word!r} in the log:\n{log[-3000:]}"
    assert "stopped cleanly" in log


def test_bad_otel_settings_stop_start_up(broker_factory):
    b = broker_factory(start=False)
    b.env.update(no_otel_env())
    b.env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    with pytest.raises(AssertionError, match="http/json"):
        b.start()
