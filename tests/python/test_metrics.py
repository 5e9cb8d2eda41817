"""The Prometheus endpoint (`shale.metrics.address`, GET /metrics)."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request

import kafka_helpers as kh

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

# API -> names a per-API label may use for it
APIS = {
    "Produce": {"produce", "0"},
    "Fetch": {"fetch", "1"},
    "ListOffsets": {"listoffsets", "2"},
    "Metadata": {"metadata", "3"},
    "ApiVersions": {"apiversions", "18"},
    "CreateTopics": {"createtopics", "19"},
}


def scrape(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        ctype = resp.headers.get("Content-Type", "")
        body = resp.read().decode()
    assert ctype.startswith("text/plain"), ctype
    samples = []
    types = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = dict(LABEL.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
    return body, samples, types


def _norm(label_value: str) -> str:
    """'ListOffsets', 'list_offsets', 'ListOffsetsKey' and 'list-offsets' all become 'listoffsets'."""
    v = re.sub(r"[^a-z0-9]", "", label_value.lower())
    for suffix in ("request", "key"):
        if v.endswith(suffix) and len(v) > len(suffix):
            v = v[: -len(suffix)]
    return v


def per_api_counts(samples, types) -> dict:
    """Sum of counter samples whose labels name each API, per (metric, API)."""
    out: dict = {}
    for name, labels, value in samples:
        family = name[:-len("_total")] if name.endswith("_total") else name
        if types.get(family, types.get(name)) != "counter":
            continue
        for api, aliases in APIS.items():
            if any(_norm(v) in aliases for v in labels.values()):
                out.setdefault(name, {}).setdefault(api, 0.0)
                out[name][api] += value
    return out


def test_metrics_per_api_request_counters(broker):
    kh.ck_create_topic(broker.bootstrap, "m", 1)
    res = kh.ck_produce(kh.ck_producer(broker.bootstrap), "m", [kh.make_record(i) for i in range(100)],
                        partition_of=lambda i: 0)
    assert not res.errors
    assert len(kh.ck_consume(broker.bootstrap, "m", [0])) == 100

    body, samples, types = scrape(broker.metrics_url)
    counts = per_api_counts(samples, types)
    assert counts, f"no counter with a per-API label found in:\n{body[:3000]}"
    # Some counter family must have seen every API we used.
    complete = {name: per for name, per in counts.items()
                if all(per.get(api, 0) > 0 for api in ("Produce", "Fetch", "Metadata", "ApiVersions",
                                                         "ListOffsets", "CreateTopics"))}
    assert complete, f"no counter covers all used APIs: {counts}"

    # Counters only go up.
    name = next(iter(complete))
    before = complete[name]["Metadata"]
    kh.ck_admin(broker.bootstrap).list_topics(topic="m", timeout=10)
    kh.wait_until(lambda: per_api_counts(*scrape(broker.metrics_url)[1:])[name]["Metadata"] > before,
                  timeout=10, what="Metadata counter to increase")

    # Unknown paths are 404s, not crashes.
    try:
        urllib.request.urlopen(broker.metrics_url.replace("/metrics", "/nope"), timeout=10)
        raise AssertionError("GET /nope should fail")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    broker.assert_running()


def test_metrics_disabled(broker_factory):
    b = broker_factory({"shale.metrics.address": ""})
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", b.metrics_port)) != 0, "metrics port open although disabled"
    b.assert_running()


def family(samples, name: str) -> dict:
    """{tuple(sorted labels): value} of one metric name."""
    return {tuple(sorted(labels.items())): value for n, labels, value in samples if n == name}


def topic_value(samples, meter: str, topic=None) -> float:
    """A BrokerTopicMetrics counter: the all-topics sample (topic=None) or one topic's."""
    name = f"kafka_server_brokertopicmetrics_{meter.lower()}_total"
    key = (("topic", topic),) if topic else ()
    return family(samples, name).get(key, 0.0)


def labelled_topics(samples) -> set:
    return {labels["topic"] for n, labels, _ in samples
            if n == "kafka_server_brokertopicmetrics_bytesinpersec_total" and "topic" in labels}


def test_per_topic_and_per_partition_metrics(broker_factory):
    """Kafka's BrokerTopicMetrics with a topic label (confluent-kafka and kafka-python traffic),
    the per-partition Log gauges, and label sets that only follow hosted topics."""
    b = broker_factory({"auto.create.topics.enable": "false"})
    kh.ck_create_topic(b.bootstrap, "ta", 2)
    kh.ck_create_topic(b.bootstrap, "tb", 1)
    res = kh.ck_produce(kh.ck_producer(b.bootstrap), "ta", [kh.make_record(i) for i in range(500)],
                        partition_of=lambda i: i % 2)
    assert not res.errors
    kp = kh.kp_producer(b.bootstrap)
    for i in range(300):
        kp.send("tb", value=b"v%d" % i, partition=0)
    kp.flush()
    assert len(kh.ck_consume(b.bootstrap, "ta", [0, 1])) == 500
    assert len(kh.kp_consume(b.bootstrap, "tb", [0])) == 300

    # Refused records count as failed and rejected for their topic; an unknown topic gets no label.
    conn = kh.RawConnection(b.host, b.port)
    bad = kh.produce(conn, "ta", 0, kh.record_batch([kh.Rec(b"k", b"v", [])], corrupt_crc=True))
    assert bad["error_code"] == kh.CORRUPT_MESSAGE, bad
    ghost = kh.produce(conn, "ghost", 0, kh.record_batch([kh.Rec(b"k", b"v", [])]))
    assert ghost["error_code"] != 0, ghost
    conn.close()

    _, samples, types = scrape(b.metrics_url)
    labelled = labelled_topics(samples)
    assert {"ta", "tb"} <= labelled and labelled <= {"ta", "tb", "__consumer_offsets"}, labelled
    assert topic_value(samples, "MessagesInPerSec", "ta") == 500
    assert topic_value(samples, "MessagesInPerSec", "tb") == 300
    assert topic_value(samples, "MessagesInPerSec") >= 800
    for t in ("ta", "tb"):
        bytes_in = topic_value(samples, "BytesInPerSec", t)
        assert bytes_in > 0 and topic_value(samples, "BytesOutPerSec", t) >= bytes_in, t
        assert topic_value(samples, "TotalProduceRequestsPerSec", t) >= 1, t
        assert topic_value(samples, "TotalFetchRequestsPerSec", t) >= 1, t
    assert topic_value(samples, "FailedProduceRequestsPerSec", "ta") == 1
    assert topic_value(samples, "BytesRejectedPerSec", "ta") > 0
    assert topic_value(samples, "FailedProduceRequestsPerSec", "tb") == 0
    assert topic_value(samples, "BytesInPerSec") >= sum(
        topic_value(samples, "BytesInPerSec", t) for t in ("ta", "tb"))
    assert types["kafka_server_brokertopicmetrics_bytesinpersec_total"] == "counter"

    end = family(samples, "kafka_log_log_logendoffset")
    assert end[(("partition", "0"), ("topic", "ta"))] + end[(("partition", "1"), ("topic", "ta"))] == 500
    assert end[(("partition", "0"), ("topic", "tb"))] == 300
    assert family(samples, "kafka_log_log_numlogsegments")[(("partition", "0"), ("topic", "tb"))] >= 1
    assert family(samples, "kafka_log_log_size")[(("partition", "0"), ("topic", "tb"))] > 0
    assert not any(labels.get("topic") == "ghost" for _, labels, _ in samples)

    # A deleted topic's series go away.
    fs = kh.ck_admin(b.bootstrap).delete_topics(["tb"], request_timeout=20)
    fs["tb"].result()
    kh.wait_until(lambda: "tb" not in labelled_topics(scrape(b.metrics_url)[1]), timeout=20,
                  what="tb's series to disappear after its deletion")
    b.assert_running()


def test_topic_labels_are_capped(broker_factory):
    b = broker_factory({"shale.metrics.topic.labels.max": "2"})
    for t in ("c1", "c2", "c3"):
        kh.ck_create_topic(b.bootstrap, t, 1)
    _, samples, _ = scrape(b.metrics_url)
    assert len(labelled_topics(samples)) == 2, labelled_topics(samples)
    assert family(samples, "shale_metrics_topics_unlabelled")[()] == 1
    # The unlabelled topic still counts in the all-topics values.
    unlabelled = ({"c1", "c2", "c3"} - labelled_topics(samples)).pop()
    res = kh.ck_produce(kh.ck_producer(b.bootstrap), unlabelled, [kh.make_record(i) for i in range(10)],
                        partition_of=lambda i: 0)
    assert not res.errors
    _, samples, _ = scrape(b.metrics_url)
    assert topic_value(samples, "MessagesInPerSec") == 10
    assert not any(labels.get("topic") == unlabelled for _, labels, _ in samples)
