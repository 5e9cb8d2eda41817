"""TLS listeners against the real `shale` process, with certificates generated per test (trustme).

* confluent-kafka, kcat (Debian's librdkafka 2.0 and the wheel's 2.16) and kafka-python produce
  and consume over an SSL listener (server authentication), and over mutual TLS with
  `ssl.client.auth=required`; the client certificate's subject, mapped by
  `ssl.principal.mapping.rules`, is the connection's principal.
* Refused, each with a clean close, a log line and `shale_failed_authentication_total`, while a
  good client keeps working: a client without a certificate, an untrusted and an expired
  certificate, a plaintext client and garbage on the TLS port, a TLS client on a plaintext port.
* Secrets: an inline private key is never in the log, and DescribeConfigs shows it as null and
  sensitive.
* A three-node cluster whose controller quorum, broker registrations and replication run over
  mutual TLS: an RF=3 topic takes acks=all writes and every replica stays in the ISR.

Each broker also has a PLAINTEXT listener on its first port, which the harness's readiness
check uses; the clients under test use the SSL port.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import subprocess

import pytest
import trustme

import kafka_helpers as kh
from conftest import free_port
from security_helpers import Pki, failed_authentications, produce_ck


@pytest.fixture
def pki(tmp_path) -> Pki:
    d = tmp_path / "pki"
    d.mkdir()
    return Pki(d)


def tls_broker(broker_factory, pki: Pki, client_auth: str = "none", **extra):
    b = broker_factory(start=False)
    b.ssl_port = free_port()
    b.overrides.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{b.port},SSL://127.0.0.1:{b.ssl_port}",
        "shale.log.level": "info,shale_broker::connection=debug",
        **pki.server_overrides(client_auth),
        **extra,
    })
    b.start()
    b.ssl_bootstrap = f"127.0.0.1:{b.ssl_port}"
    return b


def ck_ssl(pki: Pki, cert: tuple[str, str] | None = None) -> dict:
    conf = {"security.protocol": "SSL", "ssl.ca.location": str(pki.ca_pem),
            "ssl.endpoint.identification.algorithm": "https"}
    if cert:
        conf.update({"ssl.certificate.location": cert[0], "ssl.key.location": cert[1]})
    return conf


def kcat_run(kcat_bin, rdk_dir, lib: str, args: list, input: bytes | None = None):
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if lib == "wheel":
        env["LD_LIBRARY_PATH"] = str(rdk_dir)
    p = subprocess.run([kcat_bin, *args], input=input, env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, f"kcat ({lib}) {args}: {p.stderr[-3000:]!r}"
    return p


def kcat_ssl_args(b, pki: Pki, cert: tuple[str, str] | None = None) -> list:
    args = ["-b", b.ssl_bootstrap, "-X", "security.protocol=ssl",
            "-X", f"ssl.ca.location={pki.ca_pem}", "-X", "broker.address.family=v4",
            "-X", "socket.timeout.ms=10000", "-m", "20"]
    if cert:
        args += ["-X", f"ssl.certificate.location={cert[0]}", "-X", f"ssl.key.location={cert[1]}"]
    return args


def handshake_fails(port: int, context: ssl.SSLContext) -> str:
    """Runs a TLS handshake against the port; returns the error text (fails if it succeeds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                # TLS 1.3: a refused client certificate surfaces on the first read.
                s.sendall(kh.frame(kh.request_header(kh.API_API_VERSIONS, 0, 1)))
                data = s.recv(4)
                if data:
                    raise AssertionError("handshake and request succeeded")
                return "closed"
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
            return str(exc)


def closed_without_answer(port: int, payload: bytes) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return True
                # A TLS alert may come first; a Kafka response never does.
                assert chunk[0] in (0x15, 0x16), chunk[:16]
        except ConnectionResetError:
            return True


# ---------------------------------------------------------------------------
def test_clients_over_tls_with_server_authentication(broker_factory, pki, kcat_bin, rdk_dir):
    b = tls_broker(broker_factory, pki)
    kh.ck_create_topic(b.bootstrap, "tls", 1)
    produce_ck(b.ssl_bootstrap, "tls", [f"ck-{i}".encode() for i in range(200)], **ck_ssl(pki))
    for lib in ("debian", "wheel"):
        kcat_run(kcat_bin, rdk_dir, lib, [*kcat_ssl_args(b, pki), "-P", "-t", "tls"],
                 input=b"".join(f"{lib}-{i}\n".encode() for i in range(100)))
    want = [f"ck-{i}" for i in range(200)] + [f"{lib}-{i}" for lib in ("debian", "wheel")
                                              for i in range(100)]
    for lib in ("debian", "wheel"):
        out = kcat_run(kcat_bin, rdk_dir, lib,
                       [*kcat_ssl_args(b, pki), "-C", "-t", "tls", "-o", "beginning", "-e"])
        assert out.stdout.decode().split() == want, lib
    # Metadata on the SSL listener names the SSL listener.
    md = kh.ck_admin(b.ssl_bootstrap, **ck_ssl(pki)).list_topics(timeout=15)
    assert [(br.host, br.port) for br in md.brokers.values()] == [("127.0.0.1", b.ssl_port)]
    got = kh.kp_consume(b.ssl_bootstrap, "tls", [0], security_protocol="SSL",
                        ssl_cafile=str(pki.ca_pem), ssl_check_hostname=True)
    assert [m.value.decode() for m in got] == want
    assert failed_authentications(b) == 0
    assert "principal=ANONYMOUS" in b.log_text()


def test_large_responses_over_tls(broker_factory, pki):
    """A Fetch response many times the socket buffers, to a client with a tiny receive buffer:
    the broker's writes keep finding the socket full, so TLS holds the tail of one; it must still
    be sent (flushed) without another write to push it."""
    b = tls_broker(broker_factory, pki)
    kh.ck_create_topic(b.bootstrap, "big", 1)
    values = [bytes([i]) * 500_000 for i in range(40)]
    produce_ck(b.ssl_bootstrap, "big", values, **ck_ssl(pki), **{"message.max.bytes": 1_000_000})
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    for _ in range(3):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(20)
        raw.connect(("127.0.0.1", b.ssl_port))
        conn = kh.RawConnection.__new__(kh.RawConnection)
        conn.sock, conn.timeout, conn._corr = ctx.wrap_socket(raw, server_hostname="localhost"), 20, 0
        with conn:
            got = kh.fetch_v4(conn, [("big", 0, 0)], partition_max_bytes=50_000_000)
            assert len(got[("big", 0)]["records"]) > 20_000_000


def test_mutual_tls_maps_the_certificate_subject(broker_factory, pki, kcat_bin, rdk_dir):
    b = tls_broker(broker_factory, pki, client_auth="required")
    kh.ck_create_topic(b.bootstrap, "mtls", 1)
    alice = pki.client("alice")
    produce_ck(b.ssl_bootstrap, "mtls", [b"a", b"b", b"c"], **ck_ssl(pki, alice))
    out = kcat_run(kcat_bin, rdk_dir, "wheel",
                   [*kcat_ssl_args(b, pki, pki.client("bob")), "-C", "-t", "mtls", "-e"])
    assert out.stdout.split() == [b"a", b"b", b"c"]
    got = kh.kp_consume(b.ssl_bootstrap, "mtls", [0], security_protocol="SSL",
                        ssl_cafile=str(pki.ca_pem), ssl_certfile=alice[0], ssl_keyfile=alice[1])
    assert [m.value for m in got] == [b"a", b"b", b"c"]
    log = b.log_text()
    assert "principal=alice" in log and "principal=bob" in log, "mapped, lower-cased CN"
    assert failed_authentications(b) == 0


def test_refused_tls_clients_are_closed_and_others_keep_working(broker_factory, pki, tmp_path):
    b = tls_broker(broker_factory, pki, client_auth="required")
    kh.ck_create_topic(b.bootstrap, "neg", 1)
    good = ck_ssl(pki, pki.client("good"))

    def context(cert: tuple[str, str] | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
        if cert:
            ctx.load_cert_chain(*cert)
        return ctx

    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    expired = pki.client("expired", not_before=past - datetime.timedelta(days=30),
                         not_after=past)
    untrusted = pki.client("mallory", ca=trustme.CA())
    cases = {
        "no certificate": context(None),
        "expired certificate": context(expired),
        "untrusted certificate": context(untrusted),
    }
    for what, ctx in cases.items():
        handshake_fails(b.ssl_port, ctx)
        produce_ck(b.ssl_bootstrap, "neg", [what.encode()], **good)
    hello = kh.frame(kh.request_header(kh.API_API_VERSIONS, 0, 7))
    assert closed_without_answer(b.ssl_port, hello), "plaintext Kafka on the TLS port"
    assert closed_without_answer(b.ssl_port, os.urandom(3000)), "garbage on the TLS port"
    kh.wait_until(lambda: failed_authentications(b) >= 5, 10, what="five failed handshakes")
    log = b.log_text()
    for needle in ["certificate", "expired", "UnknownIssuer", "TLS handshake failed"]:
        assert needle.lower() in log.lower(), f"{needle} not logged"
    # A TLS client on the plaintext port is closed with a hint.
    plain = ssl.create_default_context(cafile=str(pki.ca_pem))
    handshake_fails(b.port, plain)
    kh.wait_until(lambda: "TLS handshake on a plaintext listener" in b.log_text(), 10,
                  what="the plaintext listener's hint")
    produce_ck(b.ssl_bootstrap, "neg", [b"after"], **good)
    got = kh.ck_consume(b.ssl_bootstrap, "neg", [0], **good)
    assert [m.value for m in got] == [*(w.encode() for w in cases), b"after"]
    b.assert_running()


def test_inline_key_is_a_secret(broker_factory, pki):
    key = pki.server.private_key_pem.bytes().decode()
    chain = b"".join(c.bytes() for c in pki.server.cert_chain_pems).decode()
    b = tls_broker(broker_factory, pki, **{
        "ssl.keystore.location": "",
        "ssl.keystore.certificate.chain": chain,
        "ssl.keystore.key": key,
    })
    produce_ck(b.ssl_bootstrap, "secret-topic", [b"x"], **ck_ssl(pki))
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource("BROKER", "1")
    entries = kh.ck_admin(b.bootstrap).describe_configs([res], request_timeout=20)[res].result(30)
    secret = entries["ssl.keystore.key"]
    assert secret.value is None and secret.is_sensitive, secret
    assert entries["ssl.client.auth"].value == "none"
    body = "".join(key.splitlines()[1:-1])
    log = b.log_text().replace(" ".join(b.command()), "")  # the harness's own command line
    assert body[:40] not in log.replace("\n", ""), "the private key reached the log"


def keytool(*args: str) -> None:
    p = subprocess.run(["keytool", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"keytool {args}: {p.stdout}{p.stderr}"


def test_pkcs12_stores_from_keytool_and_an_encrypted_pem_key(broker_factory, pki, shale_bin,
                                                             tmp_path):
    # Java's keytool writes the stores a Kafka operator has: a key store converted from an
    # openssl-style PKCS12 (3DES, as Java 8 and openssl -legacy write), a trust store with the
    # CA as a trusted entry, and a JKS store.
    legacy = pki.server_pkcs12("srcpass", legacy=True)
    keystore, truststore, jks = (pki.root / n for n in ("ks.p12", "ts.p12", "ks.jks"))
    keytool("-importkeystore", "-srckeystore", str(legacy), "-srcstoretype", "PKCS12",
            "-srcstorepass", "srcpass", "-destkeystore", str(keystore), "-deststoretype",
            "PKCS12", "-deststorepass", "ks-secret", "-noprompt")
    keytool("-importcert", "-noprompt", "-alias", "caroot", "-file", str(pki.ca_pem),
            "-keystore", str(truststore), "-storetype", "PKCS12", "-storepass", "ts-secret")
    keytool("-importkeystore", "-srckeystore", str(keystore), "-srcstoretype", "PKCS12",
            "-srcstorepass", "ks-secret", "-destkeystore", str(jks), "-deststoretype", "JKS",
            "-deststorepass", "ks-secret", "-noprompt")
    b = tls_broker(broker_factory, pki, client_auth="required", **{
        "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(keystore),
        "ssl.keystore.password": "ks-secret", "ssl.key.password": "ks-secret",
        "ssl.truststore.type": "PKCS12", "ssl.truststore.location": str(truststore),
        "ssl.truststore.password": "ts-secret",
    })
    alice = pki.client("alice")
    produce_ck(b.ssl_bootstrap, "p12", [b"one", b"two"], **ck_ssl(pki, alice))
    from kafka import KafkaConsumer
    c = KafkaConsumer("p12", bootstrap_servers=b.ssl_bootstrap, security_protocol="SSL",
                      ssl_cafile=str(pki.ca_pem), ssl_certfile=alice[0], ssl_keyfile=alice[1],
                      auto_offset_reset="earliest", consumer_timeout_ms=15000)
    assert [next(c).value for _ in range(2)] == [b"one", b"two"]
    c.close()
    log = b.log_text().replace(" ".join(b.command()), "")
    assert "ks-secret" not in log and "ts-secret" not in log, "a store password reached the log"
    b.stop()

    # The legacy store read directly with a CA bundle as the trust store (no trust marks, as
    # openssl writes it), and an encrypted PEM key opened with its password.
    for extra in ({"ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(legacy),
                   "ssl.keystore.password": "srcpass", "ssl.truststore.type": "PKCS12",
                   "ssl.truststore.location": str(pki.ca_pkcs12("bundle-pw")),
                   "ssl.truststore.password": "bundle-pw"},
                  {"ssl.keystore.location": str(pki.encrypted_server_pem("pem-secret")),
                   "ssl.key.password": "pem-secret"}):
        b = tls_broker(broker_factory, pki, client_auth="required", **extra)
        produce_ck(b.ssl_bootstrap, "p12", [b"three"], **ck_ssl(pki, alice))
        b.stop()

    # Refused at start-up, naming the store, never the password: a JKS store (its type, or its
    # bytes behind a PKCS12 type) and a wrong password.
    port = free_port()
    base = {"listeners": f"SSL://127.0.0.1:{port}", "process.roles": "broker,controller",
            "ssl.keystore.password": "ks-secret"}
    for store, kind, needle in [(jks, "JKS", "ssl.keystore.type=JKS"),
                                (jks, "PKCS12", "is a JKS store"),
                                (legacy, "PKCS12", "does not open as a PKCS12 store")]:
        cmd = [str(shale_bin), "--override", f"log.dirs={tmp_path / 'refused'}",
               "--override", "shale.metrics.address="]
        for k, v in {**base, "ssl.keystore.type": kind, "ssl.keystore.location": str(store)}.items():
            cmd += ["--override", f"{k}={v}"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
        assert res.returncode != 0 and needle in res.stderr, (kind, res.stderr[-2000:])
        assert "ks-secret" not in res.stderr


def served_cn(port: int, pki: Pki) -> str:
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def test_certificates_reload_without_restart(broker_factory, pki):
    # Housekeeping (which also checks the store files) every second.
    b = tls_broker(broker_factory, pki, **{"log.flush.offset.checkpoint.interval.ms": "1000"})
    assert served_cn(b.ssl_port, pki) == "broker"
    # Kafka's way: a dynamic per-broker config naming a new key store.
    renewed = pki.root / "renewed.pem"
    pki.ca.issue_cert("localhost", "127.0.0.1", common_name="broker-renewed") \
        .private_key_and_cert_chain_pem.write_to_path(str(renewed))
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    admin = kh.ck_admin(b.bootstrap)
    res = ConfigResource("BROKER", "1", incremental_configs=[ConfigEntry(
        "listener.name.ssl.ssl.keystore.location", str(renewed),
        incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)
    assert served_cn(b.ssl_port, pki) == "broker-renewed"
    # Beyond Kafka: the file itself replaced in place is picked up by the next check.
    pki.ca.issue_cert("localhost", "127.0.0.1", common_name="broker-rotated") \
        .private_key_and_cert_chain_pem.write_to_path(str(renewed) + ".tmp")
    os.replace(str(renewed) + ".tmp", renewed)
    kh.wait_until(lambda: served_cn(b.ssl_port, pki) == "broker-rotated", 15,
                  what="the rotated certificate")
    # A broken store is refused and the listener keeps serving the last good one.
    renewed.write_text("not a certificate")
    kh.wait_until(lambda: "TLS stores not reloaded" in b.log_text(), 15, what="the refusal")
    assert served_cn(b.ssl_port, pki) == "broker-rotated"
    produce_ck(b.ssl_bootstrap, "after-reload", [b"ok"], **ck_ssl(pki))


def test_three_nodes_over_mutual_tls(shale_bin, tmp_path, pki):
    nodes = tls_cluster(shale_bin, tmp_path, pki)
    try:
        ids = {1, 2, 3}
        kh.wait_until(lambda: live(nodes[0]) == ids, 60, what="three registered brokers over TLS")
        client = ck_ssl(pki, pki.client("app"))
        internal = ",".join(f"127.0.0.1:{n['internal']}" for n in nodes)
        admin = kh.ck_admin(internal, **client)
        from confluent_kafka.admin import NewTopic
        admin.create_topics([NewTopic("replicated", 1, 3, config={"min.insync.replicas": "3"})]
                            )["replicated"].result(30)
        produce_ck(internal, "replicated", [f"r{i}".encode() for i in range(500)],
                   **client, acks="all")
        md = kh.raw_metadata("127.0.0.1", nodes[0]["port"], ["replicated"])
        part = md["topics"]["replicated"]["partitions"][0]
        assert sorted(part["isr"]) == [1, 2, 3], part
        got = kh.ck_consume(internal, "replicated", [0], **client)
        assert [m.value for m in got] == [f"r{i}".encode() for i in range(500)]
        for n in nodes:
            log = n["log"].read_text()
            assert "TLS handshake failed" not in log, log[-3000:]
    finally:
        for n in nodes:
            n["proc"].terminate()
        for n in nodes:
            n["proc"].wait(timeout=30)


def live(node) -> set:
    try:
        md = kh.raw_metadata("127.0.0.1", node["port"])
    except (OSError, kh.ConnectionClosed):
        return set()
    return {br["node_id"] for br in md["brokers"]}


def tls_cluster(shale_bin, tmp_path, pki: Pki) -> list:
    """Three combined nodes: PLAINTEXT for the harness, INTERNAL (SSL) between brokers and for
    the clients under test, CONTROLLER (SSL) for the quorum; mutual TLS on both."""
    ports = [{"port": free_port(), "internal": free_port(), "controller": free_port()}
             for _ in range(3)]
    voters = ",".join(f"{i + 1}@localhost:{p['controller']}" for i, p in enumerate(ports))
    nodes = []
    for i, p in enumerate(ports):
        node_id = i + 1
        conf = tmp_path / f"node{node_id}.properties"
        settings = {
            "process.roles": "broker,controller",
            "node.id": node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{p['port']},INTERNAL://127.0.0.1:{p['internal']},"
                         f"CONTROLLER://127.0.0.1:{p['controller']}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p['port']},"
                                    f"INTERNAL://localhost:{p['internal']}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name": "INTERNAL",
            "controller.listener.names": "CONTROLLER",
            "broker.session.timeout.ms": 3000,
            "broker.heartbeat.interval.ms": 500,
            "shale.metrics.address": "",
            "log.dirs": tmp_path / f"node{node_id}",
            **pki.server_overrides("required"),
        }
        conf.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        subprocess.run([str(shale_bin), "format", "--cluster-id", "MkU3OEVBNTcwNTJENDM2Qg",
                        "--config", str(conf)], check=True, capture_output=True)
        log = tmp_path / f"node{node_id}.log"
        proc = subprocess.Popen([str(shale_bin), "--config", str(conf)], stdout=log.open("ab"),
                                stderr=subprocess.STDOUT)
        nodes.append({**p, "proc": proc, "log": log})
    return nodes
