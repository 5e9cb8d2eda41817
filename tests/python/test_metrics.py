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
