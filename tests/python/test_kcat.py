"""kcat against shale, on two librdkafka generations: Debian's kcat with its
librdkafka 2.0.2 (which trips over brokers that send default-valued tagged
fields in ApiVersions v3) and the same kcat on the confluent-kafka wheel's
librdkafka 2.16 through LD_LIBRARY_PATH=.rdk."""

from __future__ import annotations

import json
import re
import os
import subprocess

import pytest

import kafka_helpers as kh

LIBS = ["debian", "wheel"]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.fixture(params=LIBS)
def kcat(request, kcat_bin):
    """Returns run(args, input=None) -> CompletedProcess for the chosen librdkafka."""
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    want = "librdkafka 2.0.2"
    if request.param == "wheel":
        rdk = request.getfixturevalue("rdk_dir")
        env["LD_LIBRARY_PATH"] = str(rdk)
        want = "librdkafka 2.16"
    version = subprocess.run([kcat_bin, "-V"], env=env, capture_output=True, text=True, timeout=30)
    assert want in version.stdout + version.stderr, f"expected {want}: {version.stdout}{version.stderr}"

    def run(args, input=None, timeout=60, check=True):
        p = subprocess.run([kcat_bin, *args], input=input, env=env, capture_output=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kcat {' '.join(args)} exited {p.returncode}\n"
                                 f"stdout: {p.stdout[-2000:]!r}\nstderr: {p.stderr[-4000:]!r}")
        return p

    run.lib = request.param
    return run


def common(broker):
    return ["-b", broker.bootstrap, "-m", "20", "-X", "socket.timeout.ms=10000",
            "-X", "broker.address.family=v4"]


def test_kcat_metadata(broker, kcat):
    kh.ck_create_topic(broker.bootstrap, "kl", 3)
    p = kcat([*common(broker), "-L", "-J"])
    md = json.loads(p.stdout)
    assert [b["name"] for b in md["brokers"]] == [f"127.0.0.1:{broker.port}"], md["brokers"]
    topics = {t["topic"]: t for t in md["topics"]}
    assert "kl" in topics, md
    parts = topics["kl"]["partitions"]
    assert sorted(x["partition"] for x in parts) == [0, 1, 2]
    assert all(x["leader"] == md["brokers"][0]["id"] for x in parts)
    p = kcat([*common(broker), "-L", "-t", "kl"])
    assert b"3 partitions" in p.stdout, p.stdout


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_produce_consume(broker, kcat, codec):
    topic = f"kc-{kcat.lib}-{codec}"
    kh.ck_create_topic(broker.bootstrap, topic, 2)
    n = 500
    lines = [f"k{i}:value {i} " + "z" * (i % 90) for i in range(n)]
    args = [*common(broker), "-P", "-t", topic, "-p", "1", "-K:", "-H", "h1=a", "-H", "h1=b",
            "-H", "h2=c"]
    if codec != "none":
        args += ["-z", codec]
    kcat(args, input=("\n".join(lines) + "\n").encode())

    # Read back with kcat itself.
    fmt = "%k|%s|%h|%o|%p\\n"
    p = kcat([*common(broker), "-C", "-t", topic, "-p", "1", "-o", "beginning", "-e", "-q", "-f", fmt])
    out = p.stdout.decode().splitlines()
    assert len(out) == n, f"kcat consumed {len(out)} lines, expected {n}: {out[:3]}"
    for i, line in enumerate(out):
        assert line == f"k{i}|{lines[i].split(':', 1)[1]}|h1=a,h1=b,h2=c|{i}|1", (i, line)

    # JSON envelope too.
    p = kcat([*common(broker), "-C", "-t", topic, "-p", "1", "-o", "-5", "-e", "-q", "-J"])
    js = [json.loads(x) for x in p.stdout.decode().splitlines() if x.strip()]
    assert [m["offset"] for m in js] == list(range(n - 5, n)), js
    assert all(m["key"] == f"k{m['offset']}" for m in js)

    # And with confluent-kafka: duplicate header keys survive in order.
    msgs = kh.ck_consume(broker.bootstrap, topic, [1])
    assert len(msgs) == n
    assert msgs[7].key == b"k7" and msgs[7].value == lines[7].split(":", 1)[1].encode()
    assert msgs[7].headers == (("h1", b"a"), ("h1", b"b"), ("h2", b"c"))
    broker.stop()
    # librdkafka sends a batch uncompressed when compressing would not shrink it (a small trailing
    # batch, say), so "none" may appear beside the codec; what must never happen is a codec that
    # is silently not used at all (as with lz4 before FindCoordinator was advertised).
    codecs = broker.segment_codecs(topic, 1)
    assert codec in codecs and codecs <= {codec, "none"}, f"kcat -z {codec} on {kcat.lib}: {codecs}"


def test_kcat_consume_client_produced(broker, kcat):
    """Records with null and empty keys/values, produced by confluent-kafka, read by kcat."""
    topic = f"kc-read-{kcat.lib}"
    kh.ck_create_topic(broker.bootstrap, topic, 1)
    p = kh.ck_producer(broker.bootstrap, **{"compression.type": "zstd"})
    recs = [(b"a", b"1"), (None, b"2"), (b"c", None), (b"d", b"")]
    got = []
    for k, v in recs:
        p.produce(topic, key=k, value=v, partition=0, on_delivery=lambda e, m: got.append(e))
    assert p.flush(30) == 0 and got == [None] * 4
    out = kcat([*common(broker), "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                "-f", "%K|%k|%S|%s|%o\\n"]).stdout.decode().splitlines()
    # %K / %S print -1 for a NULL key / value and 0 for an empty one.
    assert out == ["1|a|1|1|0", "-1||1|2|1", "1|c|-1||2", "1|d|0||3"], out


def test_kcat_query_offsets_by_timestamp(broker, kcat):
    topic = f"kc-q-{kcat.lib}"
    kh.ck_create_topic(broker.bootstrap, topic, 1)
    gens = [kh.make_record(i, ts_step=100) for i in range(50)]
    res = kh.ck_produce(kh.ck_producer(broker.bootstrap), topic, gens, partition_of=lambda i: 0)
    assert not res.errors
    ts = kh.BASE_TS + 100 * 20 - 50
    out = kcat([*common(broker), "-Q", "-t", f"{topic}:0:{ts}"]).stdout.decode()
    assert re.search(r"\[0\]\s+offset 20\b", out), out
