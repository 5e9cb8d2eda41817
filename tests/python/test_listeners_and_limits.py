"""Listeners, fail-closed start-up and connection limits, against the real `shale` process.

* Settings that ask for what Shale does not implement (SCRAM, ACLs, JKS key stores, a broker-only
  node without its controllers' listener)
  stop start-up with a non-zero exit and a message naming each of them.
* Every listener is bound: two PLAINTEXT listeners both answer; a Kafka 4 single-node
  configuration with a CONTROLLER listener starts and keeps that listener out of Metadata.
* max.connections.per.ip closes extra connections at once, max.connections makes new ones
  wait until a slot frees, connections.max.idle.ms closes idle ones; established clients keep
  working throughout.

Raw connections come from other loopback addresses (127.0.0.2, .3, ...) so that the per-address
limit bites them and not the confluent-kafka clients, which connect from 127.0.0.1.

The flood test opens SHALE_FLOOD_CONNECTIONS connections (default 2,000, fast; the test process
and the broker each need that many descriptors, `ulimit -n` here is 20,000, so 10,000 also runs).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request

import pytest

import kafka_helpers as kh
from conftest import free_port

API_VERSIONS_V0 = kh.frame(kh.request_header(kh.API_API_VERSIONS, 0, 7))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def run_shale(shale_bin, tmp_path, overrides: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [str(shale_bin), "--override", f"log.dirs={tmp_path / 'data'}",
           "--override", "shale.metrics.address="]
    for k, v in overrides.items():
        cmd += ["--override", f"{k}={v}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})


def nothing_listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def connect_from(source: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def outcome(sock: socket.socket, timeout: float = 10) -> str:
    """Sends ApiVersions v0; 'response' if a response frame arrives, 'closed' if the broker
    closed the connection, 'hang' if neither happened within `timeout`."""
    sock.settimeout(timeout)
    try:
        sock.sendall(API_VERSIONS_V0)
        head = sock.recv(4)
    except socket.timeout:
        return "hang"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    if not head:
        return "closed"
    size = int.from_bytes(head, "big", signed=True)
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        assert chunk, "connection closed in the middle of a response"
        body += chunk
    return "response"


def metric(broker, name: str) -> float:
    with urllib.request.urlopen(broker.metrics_url, timeout=10) as resp:
        body = resp.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", body, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def close_all(socks):
    for s in socks:
        s.close()


def produce(producer, topic: str, ids) -> None:
    res = kh.ck_produce(producer, topic, [kh.make_record(i) for i in ids],
                        partition_of=lambda i: 0, flush_timeout=30)
    assert not res.errors, res.errors


def poll_values(consumer, n: int, timeout: float = 30) -> list:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            out.append(m.value())
    assert len(out) == n, f"consumed {len(out)} of {n} records"
    return out


def assigned_consumer(bootstrap: str, topic: str):
    from confluent_kafka import TopicPartition
    c = kh.ck_consumer(bootstrap, **{"enable.partition.eof": False})
    c.assign([TopicPartition(topic, 0, 0)])
    return c


# ---------------------------------------------------------------------------
# A. fail closed
# ---------------------------------------------------------------------------
def test_secured_kafka_config_stops_startup_naming_every_setting(shale_bin, tmp_path):
    p1, p2 = free_port(), free_port()
    res = run_shale(shale_bin, tmp_path, {
        "listeners": f"SASL_SSL://127.0.0.1:{p1},SSL://127.0.0.1:{p2}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL",
        "ssl.keystore.location": "/etc/kafka/server.keystore.jks",
        "ssl.keystore.password": "secret",
        "sasl.enabled.mechanisms": "GSSAPI",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
        "allow.everyone.if.no.acl.found": "false",
        "client.quota.callback.class": "com.example.Quotas",
    })
    assert res.returncode != 0, res.stderr
    assert "refusing to start" in res.stderr, res.stderr
    # SSL, SASL/PLAIN and ACLs are served, TLS from PEM stores only: Kafka's default JKS store
    # type is named, and so are a SASL mechanism and a quota callback not served.
    for needle in ["ssl.keystore.type=JKS (listener SSL)", "ssl.keystore.type=JKS (listener SASL_SSL)",
                   "GSSAPI is not supported yet", "client.quota.callback.class"]:
        assert needle in res.stderr, f"{needle} not named:\n{res.stderr}"
    assert "secret" not in res.stderr, "a password reached the message"
    assert "ignoring unknown configuration key" not in res.stderr
    assert nothing_listens(p1) and nothing_listens(p2)


@pytest.mark.parametrize("key,value", [
    ("ssl.engine.factory.class", "com.example.Engine"),
    ("sasl.jaas.config", "x required;"),
    ("listener.name.plaintext.ssl.engine.factory.class", "com.example.Engine"),
    ("security.inter.broker.protocol", "SASL_SSL"),
    ("client.quota.callback.class", "com.example.Quotas"),
    ("delegation.token.secret.key", "k"),
])
def test_each_unsupported_setting_alone_stops_startup(shale_bin, tmp_path, key, value):
    port = free_port()
    res = run_shale(shale_bin, tmp_path, {"listeners": f"PLAINTEXT://127.0.0.1:{port}", key: value})
    assert res.returncode != 0
    assert "refusing to start" in res.stderr and key in res.stderr, res.stderr
    assert nothing_listens(port)


def test_cluster_shapes_that_cannot_run_stop_startup(shale_bin, tmp_path):
    port, c = free_port(), free_port()
    # A broker-only node that does not know the controllers' listener name.
    res = run_shale(shale_bin, tmp_path, {
        "node.id": "4",
        "process.roles": "broker",
        "listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.quorum.voters": f"1@127.0.0.1:{c},2@127.0.0.1:{c + 1},3@127.0.0.1:{c + 2}",
    })
    assert res.returncode != 0
    assert "controller.listener.names" in res.stderr, res.stderr
    # Joining a dynamic quorum (KIP-853) as a combined node needs a controller listener.
    res = run_shale(shale_bin, tmp_path, {
        "listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.quorum.bootstrap.servers": "192.0.2.10:9093",
    })
    assert res.returncode != 0
    assert "controller listener" in res.stderr, res.stderr
    # A static and a dynamic quorum at once.
    res = run_shale(shale_bin, tmp_path, {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{c}",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": f"1@127.0.0.1:{c}",
        "controller.quorum.bootstrap.servers": "192.0.2.10:9093",
    })
    assert res.returncode != 0
    assert "choose a static or a dynamic quorum" in res.stderr, res.stderr


def test_a_listener_that_cannot_bind_stops_startup(shale_bin, tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    free = free_port()
    try:
        res = run_shale(shale_bin, tmp_path, {
            "listeners": f"A://127.0.0.1:{free},B://127.0.0.1:{busy}",
            "listener.security.protocol.map": "A:PLAINTEXT,B:PLAINTEXT",
        })
    finally:
        taken.close()
    assert res.returncode != 0
    assert f"binding listener B://127.0.0.1:{busy}" in res.stderr, res.stderr


def test_two_plaintext_listeners_both_serve_clients(broker_factory):
    b = broker_factory(start=False)
    second = free_port()
    b.overrides["listeners"] = f"INTERNAL://127.0.0.1:{b.port},EXTERNAL://127.0.0.1:{second}"
    b.overrides["listener.security.protocol.map"] = "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT"
    b.start()
    for port in (b.port, second):
        with kh.RawConnection("127.0.0.1", port) as c:
            assert kh.api_versions(c, 3).error_code == 0
    # Each listener describes the cluster with its own endpoints, as Kafka does: Metadata,
    # FindCoordinator (raw v1) and DescribeCluster (confluent-kafka's AdminClient).
    for port in (b.port, second):
        md = kh.raw_metadata("127.0.0.1", port, [])
        assert [br["port"] for br in md["brokers"]] == [port], (port, md)
        with kh.RawConnection("127.0.0.1", port) as c:
            corr = c.send_request(10, 1, kh.string("g") + kh.i8(0))
            r = c.recv_response(corr)
            r.i32()  # throttle
            code, _msg, node, host, coord_port = r.i16(), r.string(), r.i32(), r.string(), r.i32()
        assert (code, node, host, coord_port) == (0, 1, "127.0.0.1", port), (code, node, host, coord_port)
        desc = kh.ck_admin(f"127.0.0.1:{port}").describe_cluster(request_timeout=10).result(timeout=15)
        assert [n.port for n in desc.nodes] == [port], desc.nodes
    # A client bootstrapped on the second listener produces and consumes.
    boot2 = f"127.0.0.1:{second}"
    kh.ck_create_topic(boot2, "two-listeners", 1)
    produce(kh.ck_producer(boot2), "two-listeners", range(20))
    assert len(kh.ck_consume(boot2, "two-listeners", [0], timeout=30)) == 20
    b.stop()
    assert "ignoring unknown configuration key" not in b.log_text()


def test_kafka4_single_node_config_with_controller_listener(broker_factory):
    b = broker_factory(start=False)
    ctl = free_port()
    b.overrides.update({
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"PLAINTEXT://127.0.0.1:{b.port},CONTROLLER://127.0.0.1:{ctl}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{b.port},CONTROLLER://127.0.0.1:{ctl}",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.bootstrap.servers": f"localhost:{ctl}",
        "controller.quorum.voters": f"1@localhost:{ctl}",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map":
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
    })
    b.start()
    with kh.RawConnection("127.0.0.1", ctl) as c:
        assert kh.api_versions(c, 0).error_code == 0
    md = kh.raw_metadata("127.0.0.1", ctl, [])
    assert [br["port"] for br in md["brokers"]] == [b.port], md


# ---------------------------------------------------------------------------
# B. connection limits
# ---------------------------------------------------------------------------
def test_per_ip_limit_closes_extras_while_clients_keep_working(broker_factory):
    b = broker_factory(overrides={"max.connections.per.ip": "50"})
    kh.ck_create_topic(b.bootstrap, "per-ip", 1)
    producer = kh.ck_producer(b.bootstrap)
    consumer = assigned_consumer(b.bootstrap, "per-ip")
    produce(producer, "per-ip", range(10))
    assert len(poll_values(consumer, 10)) == 10

    socks = [connect_from("127.0.0.2", b.port) for _ in range(200)]
    try:
        results = [outcome(s) for s in socks]
        assert results.count("response") == 50 and results.count("closed") == 150, \
            {r: results.count(r) for r in set(results)}
        # The established clients are unaffected while the address is at its limit.
        produce(producer, "per-ip", range(10, 20))
        assert len(poll_values(consumer, 10)) == 10
        assert metric(b, "shale_connections_rejected_total") == 150
        # Still at the limit: one more from that address is closed at once.
        with connect_from("127.0.0.2", b.port) as extra:
            assert outcome(extra) == "closed"
    finally:
        close_all(socks)
    # Closed connections give their slots back.
    kh.wait_until(lambda: metric(b, "shale_connections") < 10, what="the 50 slots freed")
    again = [connect_from("127.0.0.2", b.port) for _ in range(50)]
    try:
        assert [outcome(s) for s in again] == ["response"] * 50
    finally:
        close_all(again)


def test_per_ip_override_applies_to_that_address(broker_factory):
    b = broker_factory(overrides={"max.connections.per.ip": "0",
                                  "max.connections.per.ip.overrides": "127.0.0.1:100,127.0.0.4:3"})
    socks = [connect_from("127.0.0.4", b.port) for _ in range(5)]
    try:
        assert sorted(outcome(s) for s in socks) == ["closed"] * 2 + ["response"] * 3
        with connect_from("127.0.0.5", b.port) as other:  # limit 0: every connection refused
            assert outcome(other) == "closed"
    finally:
        close_all(socks)


def test_broker_wide_limit_holds_new_connections_until_a_slot_frees(broker_factory):
    cap = 10
    b = broker_factory(overrides={"max.connections": str(cap)})
    kh.ck_create_topic(b.bootstrap, "cap", 1)
    producer = kh.ck_producer(b.bootstrap)
    produce(producer, "cap", range(5))
    held, waiting = [], None
    try:
        # Fill the broker up to its cap (the producer holds some connections already).
        for _ in range(cap - int(metric(b, "shale_connections"))):
            s = connect_from("127.0.0.6", b.port)
            held.append(s)
            assert outcome(s) == "response"
        assert metric(b, "shale_connections") == cap
        # One more is connected by the kernel but not taken: its request is not answered.
        waiting = connect_from("127.0.0.6", b.port)
        assert outcome(waiting, timeout=2) == "hang"
        assert metric(b, "shale_connections") == cap
        # Established connections and clients are still served at the cap.
        assert outcome(held[0]) == "response"
        produce(producer, "cap", range(5, 10))
        # A freed slot lets the waiting connection in; its request is then answered.
        held.pop().close()
        waiting.settimeout(10)
        head = waiting.recv(4)
        assert len(head) == 4, "the waiting connection was not served after a slot freed"
    finally:
        close_all(held)
        if waiting is not None:
            waiting.close()
    assert metric(b, "shale_connections_rejected_total") == 0


def test_idle_connections_are_closed(broker_factory):
    b = broker_factory(overrides={"connections.max.idle.ms": "1000"})
    kh.ck_create_topic(b.bootstrap, "idle", 1)
    producer = kh.ck_producer(b.bootstrap)
    produce(producer, "idle", range(5))

    quiet = connect_from("127.0.0.7", b.port)
    busy = None
    try:
        assert outcome(quiet) == "response"
        answered = time.monotonic()
        quiet.settimeout(15)
        try:
            assert quiet.recv(1) == b"", "an idle connection received data"
        except ConnectionResetError:
            pass
        idle_for = time.monotonic() - answered
        assert 0.8 <= idle_for < 10, f"closed after {idle_for:.2f} s idle (limit 1 s)"
        # A connection with a request every 300 ms for 3 s is not idle...
        busy = connect_from("127.0.0.7", b.port)
        started = time.monotonic()
        while time.monotonic() - started < 3:
            assert outcome(busy) == "response"
            time.sleep(0.3)  # the request pacing under test, not a wait for a condition
        # ...until it goes quiet.
        kh.wait_until(lambda: _closed(busy), timeout=10, what="the busy connection closed once quiet")
    finally:
        quiet.close()
        if busy is not None:
            busy.close()
    assert metric(b, "shale_connections_idle_closed_total") >= 2
    # The producer's connections went idle and were closed too; it reconnects and delivers.
    produce(producer, "idle", range(5, 10))
    assert len(kh.ck_consume(b.bootstrap, "idle", [0], timeout=30)) == 10


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_connection_flood_is_refused_cleanly(broker_factory):
    n = int(os.environ.get("SHALE_FLOOD_CONNECTIONS", "2000"))
    limit = 50
    b = broker_factory(overrides={"max.connections.per.ip": str(limit)})
    kh.ck_create_topic(b.bootstrap, "flood", 1)
    producer = kh.ck_producer(b.bootstrap)
    consumer = assigned_consumer(b.bootstrap, "flood")
    produce(producer, "flood", range(10))
    assert len(poll_values(consumer, 10)) == 10

    started = time.monotonic()
    socks = []
    try:
        for i in range(n):
            socks.append(connect_from("127.0.0.8", b.port))
        results = [outcome(s) for s in socks]
        elapsed = time.monotonic() - started
        counts = {r: results.count(r) for r in set(results)}
        assert counts == {"response": limit, "closed": n - limit}, counts
        produce(producer, "flood", range(10, 20))
        assert len(poll_values(consumer, 10)) == 10
        assert metric(b, "shale_connections_rejected_total") == n - limit
        print(f"{n} connections refused down to {limit} in {elapsed:.2f} s")
    finally:
        close_all(socks)
    b.assert_running()
    kh.wait_until(lambda: metric(b, "shale_connections") < 10, what="flood connections released")
