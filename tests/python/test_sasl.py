"""SASL/PLAIN against the real `shale` process, on SASL_PLAINTEXT and SASL_SSL listeners.

* confluent-kafka, kcat (the wheel's librdkafka) and kafka-python log in with PLAIN (users from
  the listener's `PlainLoginModule` JAAS config), then produce and consume; the username is the
  connection's principal.
* Refused on the wire, each with Kafka's error where Kafka answers one, then a closed connection,
  a log line without the secret and `shale_failed_authentication_total`, while a logged-in client
  keeps working: a wrong password, an unknown user, a mechanism not enabled
  (UNSUPPORTED_SASL_MECHANISM), a request before authenticating, an oversized token, garbage.
* KIP-368: with `connections.max.reauth.ms`, librdkafka re-authenticates on its connection and
  keeps producing past the session lifetime; a raw client that does not is closed at its next
  request.
* OAUTHBEARER with Kafka's unsecured JWS validator: librdkafka's and kafka-python's unsecured
  tokens log in as their subject; refused tokens get RFC 7628's JSON error, then
  SASL_AUTHENTICATION_FAILED.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import time

import pytest

import kafka_helpers as kh
from conftest import free_port
from security_helpers import Pki, failed_authentications, produce_ck

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-pw-9f3" user_admin="admin-pw-9f3" '
        'user_alice="alice-pw-4c1";')
API_SASL_HANDSHAKE, API_SASL_AUTHENTICATE = 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58


@pytest.fixture
def pki(tmp_path) -> Pki:
    d = tmp_path / "pki"
    d.mkdir()
    return Pki(d)


def sasl_broker(broker_factory, pki: Pki, **extra):
    b = broker_factory(start=False)
    b.sasl_port, b.sasl_ssl_port = free_port(), free_port()
    b.overrides.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{b.sasl_port},"
                     f"SASL_SSL://127.0.0.1:{b.sasl_ssl_port}",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server_pem),
        "shale.log.level": "info,shale_broker::connection=debug",
        **extra,
    })
    return b.start()


def ck_sasl(user: str, password: str, pki: Pki | None = None) -> dict:
    conf = {"security.protocol": "SASL_SSL" if pki else "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": password}
    if pki:
        conf["ssl.ca.location"] = str(pki.ca_pem)
    return conf


def secret_free_log(b) -> str:
    log = b.log_text().replace(" ".join(b.command()), "")
    for secret in ("admin-pw-9f3", "alice-pw-4c1", "wrong-pw-77"):
        assert secret not in log, f"{secret} reached the log"
    return log


# -- raw SASL exchanges --------------------------------------------------------------------
def handshake(c: kh.RawConnection, mechanism: str) -> tuple[int, list]:
    corr = c.send_request(API_SASL_HANDSHAKE, 1, kh.string(mechanism))
    r = c.recv_response(corr)
    return r.i16(), r.array(lambda x: x.string())


def authenticate(c: kh.RawConnection, token: bytes) -> tuple[int, str | None, int]:
    corr = c.send_request(API_SASL_AUTHENTICATE, 1, kh.kbytes(token))
    r = c.recv_response(corr)
    code, message = r.i16(), r.string()
    r.kbytes()
    return code, message, r.i64()


def metadata_ok(c: kh.RawConnection) -> bool:
    return isinstance(kh.metadata_v4(c, [], allow_auto_create=False), dict)


# ------------------------------------------------------------------------------------------
def test_plain_login_with_real_clients(broker_factory, pki, kcat_bin, rdk_dir):
    b = sasl_broker(broker_factory, pki)
    kh.ck_create_topic(b.bootstrap, "plain", 1)
    produce_ck(f"127.0.0.1:{b.sasl_port}", "plain", [b"p1", b"p2"],
               **ck_sasl("alice", "alice-pw-4c1"))
    produce_ck(f"127.0.0.1:{b.sasl_ssl_port}", "plain", [b"s1"],
               **ck_sasl("admin", "admin-pw-9f3", pki))
    env = dict(os.environ, LD_LIBRARY_PATH=str(rdk_dir))
    out = subprocess.run(
        [kcat_bin, "-b", f"127.0.0.1:{b.sasl_ssl_port}", "-X", "security.protocol=sasl_ssl",
         "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice",
         "-X", "sasl.password=alice-pw-4c1", "-X", f"ssl.ca.location={pki.ca_pem}",
         "-X", "broker.address.family=v4", "-C", "-t", "plain", "-e", "-m", "20"],
        env=env, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [b"p1", b"p2", b"s1"]
    got = kh.kp_consume(f"127.0.0.1:{b.sasl_ssl_port}", "plain", [0], security_protocol="SASL_SSL",
                        sasl_mechanism="PLAIN", sasl_plain_username="admin",
                        sasl_plain_password="admin-pw-9f3", ssl_cafile=str(pki.ca_pem))
    assert [m.value for m in got] == [b"p1", b"p2", b"s1"]
    log = secret_free_log(b)
    assert "principal=alice" in log and "principal=admin" in log
    assert failed_authentications(b) == 0


def test_refused_logins_are_answered_and_closed(broker_factory, pki):
    b = sasl_broker(broker_factory, pki)
    kh.ck_create_topic(b.bootstrap, "refused", 1)
    good = ck_sasl("alice", "alice-pw-4c1")
    addr = ("127.0.0.1", b.sasl_port)
    for user, password in [("alice", "wrong-pw-77"), ("mallory", "alice-pw-4c1")]:
        with kh.RawConnection(*addr) as c:
            assert handshake(c, "PLAIN") == (0, ["PLAIN"])
            code, message, _ = authenticate(c, f"\0{user}\0{password}".encode())
            assert code == SASL_AUTHENTICATION_FAILED, code
            assert message == "Authentication failed: Invalid username or password"
            assert c.wait_closed()
        produce_ck(f"127.0.0.1:{b.sasl_port}", "refused", [user.encode()], **good)
    with kh.RawConnection(*addr) as c:
        assert handshake(c, "SCRAM-SHA-256") == (UNSUPPORTED_SASL_MECHANISM, ["PLAIN"])
        assert c.wait_closed()
    with kh.RawConnection(*addr) as c:  # a request before authenticating
        c.send_request(kh.API_METADATA, 4, kh.i32(0) + kh.boolean(False))
        assert c.wait_closed()
    with kh.RawConnection(*addr) as c:  # an oversized token, refused from its size prefix
        assert handshake(c, "PLAIN")[0] == 0
        c.send_raw(kh.i32(600_000) + b"\0" * 1024)
        assert c.wait_closed()
    with kh.RawConnection(*addr) as c:
        c.send_raw(os.urandom(64))
        assert c.wait_closed()
    kh.wait_until(lambda: failed_authentications(b) >= 5, 10, what="five failed logins")
    log = secret_free_log(b)
    assert "Invalid username or password" in log and "not enabled" in log
    # A TLS client of the SASL_SSL listener gets the same answers.
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    raw = socket.create_connection(("127.0.0.1", b.sasl_ssl_port), timeout=10)
    c = kh.RawConnection.__new__(kh.RawConnection)
    c.sock, c.timeout, c._corr = ctx.wrap_socket(raw, server_hostname="localhost"), 10, 0
    with c:
        assert handshake(c, "PLAIN")[0] == 0
        assert authenticate(c, b"\0alice\0wrong-pw-77")[0] == SASL_AUTHENTICATION_FAILED
    got = kh.ck_consume(f"127.0.0.1:{b.sasl_port}", "refused", [0], **good)
    assert [m.value for m in got] == [b"alice", b"mallory"]
    b.assert_running()


def test_sessions_expire_unless_clients_reauthenticate(broker_factory, pki):
    b = sasl_broker(broker_factory, pki, **{"connections.max.reauth.ms": "1500"})
    kh.ck_create_topic(b.bootstrap, "reauth", 1)
    with kh.RawConnection("127.0.0.1", b.sasl_port) as c:
        assert handshake(c, "PLAIN")[0] == 0
        code, _, lifetime = authenticate(c, b"\0alice\0alice-pw-4c1")
        assert (code, lifetime) == (0, 1500)
        assert metadata_ok(c)
        time.sleep(1.6)  # let the session lapse: the condition under test is elapsed time
        c.send_request(kh.API_METADATA, 4, kh.i32(0) + kh.boolean(False))
        assert c.wait_closed()
    # librdkafka re-authenticates (KIP-368) and keeps one producer going past several lifetimes.
    p = kh.ck_producer(f"127.0.0.1:{b.sasl_port}", **ck_sasl("alice", "alice-pw-4c1"))
    deadline, sent = time.monotonic() + 5, 0
    while time.monotonic() < deadline:
        p.produce("reauth", str(sent).encode())
        sent += 1
        assert p.flush(10) == 0
    log = secret_free_log(b)
    assert log.count("session expired") == 1, "only the raw client lets its session lapse"
    assert log.count("SASL authentication failed") == 1
    peers = re.findall(r"SASL authenticated peer=(\S+)", log)
    assert max(peers.count(p) for p in peers) >= 3, f"no connection re-authenticated: {peers}"
    got = kh.ck_consume(b.bootstrap, "reauth", [0])
    assert len(got) == sent


def test_scram_users_from_format_and_from_the_admin_api(broker_factory, pki, shale_bin, kcat_bin,
                                                         rdk_dir):
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialDeletion, UserScramCredentialUpsertion)
    b = broker_factory(start=False)
    b.sasl_ssl_port = free_port()
    b.overrides.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{b.port},SASL_SSL://127.0.0.1:{b.sasl_ssl_port}",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server_pem),
        "shale.log.level": "info,shale_broker::connection=debug",
    })
    # kafka-storage.sh format --add-scram: a bootstrap user before the first start.
    fmt = [str(shale_bin), "format", "-t", "MkU3OEVBNTcwNTJENDM2Qg",
           "--add-scram", "SCRAM-SHA-256=[name=alice,password=alice-pw-4c1]"]
    for k, v in b.overrides.items():
        fmt += ["--override", f"{k}={v}"]
    out = subprocess.run(fmt, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "alice-pw-4c1" not in out.stdout + out.stderr
    b.start()
    sasl_ssl = f"127.0.0.1:{b.sasl_ssl_port}"

    def scram(user: str, password: str, mechanism: str) -> dict:
        return {"security.protocol": "SASL_SSL", "sasl.mechanisms": mechanism,
                "sasl.username": user, "sasl.password": password,
                "ssl.ca.location": str(pki.ca_pem)}

    kh.ck_create_topic(b.bootstrap, "scram", 1)
    produce_ck(sasl_ssl, "scram", [b"a1"], **scram("alice", "alice-pw-4c1", "SCRAM-SHA-256"))
    # kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[iterations=8192,password=…]'.
    admin = kh.ck_admin(sasl_ssl, **scram("alice", "alice-pw-4c1", "SCRAM-SHA-256"))
    up = UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                      b"bob-pw-0d2")
    for f in admin.alter_user_scram_credentials([up]).values():
        f.result(30)
    described = admin.describe_user_scram_credentials(["alice", "bob"])
    info = {u: [(c.mechanism, c.iterations) for c in f.result(30).scram_credential_infos]
            for u, f in described.items()}
    assert info == {"alice": [(ScramMechanism.SCRAM_SHA_256, 4096)],
                    "bob": [(ScramMechanism.SCRAM_SHA_512, 8192)]}, info
    bad = UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 10),
                                       b"x")
    with pytest.raises(Exception, match="(?i)iterations"):
        admin.alter_user_scram_credentials([bad])["carol"].result(30)
    # bob logs in with SCRAM-SHA-512 from kafka-python and kcat.
    got = kh.kp_consume(sasl_ssl, "scram", [0], security_protocol="SASL_SSL",
                        sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="bob",
                        sasl_plain_password="bob-pw-0d2", ssl_cafile=str(pki.ca_pem))
    assert [m.value for m in got] == [b"a1"]
    env = dict(os.environ, LD_LIBRARY_PATH=str(rdk_dir))
    kcat = [kcat_bin, "-b", sasl_ssl, "-X", "security.protocol=sasl_ssl",
            "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=bob",
            "-X", "ssl.ca.location=" + str(pki.ca_pem), "-X", "broker.address.family=v4",
            "-C", "-t", "scram", "-e", "-m", "10"]
    out = subprocess.run([*kcat, "-X", "sasl.password=bob-pw-0d2"], env=env, capture_output=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.split() == [b"a1"], out.stderr[-2000:]
    out = subprocess.run([*kcat, "-X", "sasl.password=wrong-pw-77"], env=env, capture_output=True,
                         timeout=60)
    assert out.returncode != 0, "a wrong SCRAM password was accepted"
    # Deleting bob's credential ends his logins; alice is unaffected.
    gone = UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_512)
    admin.alter_user_scram_credentials([gone])["bob"].result(30)
    out = subprocess.run([*kcat, "-X", "sasl.password=bob-pw-0d2"], env=env, capture_output=True,
                         timeout=60)
    assert out.returncode != 0, "a deleted SCRAM credential still logs in"
    produce_ck(sasl_ssl, "scram", [b"a2"], **scram("alice", "alice-pw-4c1", "SCRAM-SHA-256"))
    log = secret_free_log(b)
    for secret in ("bob-pw-0d2",):
        assert secret not in log
    assert "principal=bob" in log and "principal=alice" in log
    assert "Invalid user credentials" in log
    # The credentials survive a restart (metadata log).
    b.restart()
    produce_ck(sasl_ssl, "scram", [b"a3"], **scram("alice", "alice-pw-4c1", "SCRAM-SHA-256"))


# -- OAUTHBEARER with Kafka's unsecured JWS validator --------------------------------------
OAUTH_JAAS = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
              'unsecuredLoginStringClaim_sub="admin" unsecuredValidatorRequiredScope="kafka";')


def unsecured_token(sub: str, lifetime: float = 3600, scope: str = "kafka") -> str:
    """An unsigned JWT (`alg: none`), as Kafka's unsecured login module makes them."""
    import base64
    import json

    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    now = int(time.time())  # whole seconds, as clients write them
    claims = {"sub": sub, "iat": now, "exp": now + lifetime, "scope": scope}
    return f"{b64({'alg': 'none'})}.{b64(claims)}."


def oauth_first_message(token: str) -> bytes:
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


def authenticate_bytes(c: kh.RawConnection, token: bytes) -> tuple[int, str | None, bytes, int]:
    corr = c.send_request(API_SASL_AUTHENTICATE, 1, kh.kbytes(token))
    r = c.recv_response(corr)
    return r.i16(), r.string(), r.kbytes(), r.i64()


def test_oauthbearer_with_unsecured_tokens(broker_factory, pki):
    b = sasl_broker(broker_factory, pki, **{
        "sasl.enabled.mechanisms": "PLAIN,OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": OAUTH_JAAS,
        "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": OAUTH_JAAS,
        "connections.max.reauth.ms": "60000",
    })
    kh.ck_create_topic(b.bootstrap, "oauth", 1)
    # librdkafka makes its own unsecured token from sasl.oauthbearer.config.
    produce_ck(f"127.0.0.1:{b.sasl_ssl_port}", "oauth", [b"o1", b"o2"], **{
        "security.protocol": "SASL_SSL", "ssl.ca.location": str(pki.ca_pem),
        "sasl.mechanisms": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
        "sasl.oauthbearer.config": "principal=carol scope=kafka lifeSeconds=600"})
    # kafka-python with a token provider.
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Tokens(AbstractTokenProvider):
        def token(self):
            return unsecured_token("dave")
    got = kh.kp_consume(f"127.0.0.1:{b.sasl_port}", "oauth", [0],
                        security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                        sasl_oauth_token_provider=Tokens())
    assert [m.value for m in got] == [b"o1", b"o2"]
    log = b.log_text()
    assert "principal=carol" in log and "principal=dave" in log

    # On the wire: a token valid for 5 s makes a session of at most 5 s (KIP-368), not 60.
    with kh.RawConnection("127.0.0.1", b.sasl_port) as c:
        assert handshake(c, "OAUTHBEARER")[0] == 0
        code, _, _, lifetime = authenticate_bytes(c, oauth_first_message(
            unsecured_token("erin", lifetime=5)))
        assert code == 0 and 0 < lifetime <= 5000, (code, lifetime)
        assert metadata_ok(c)
    # Refused tokens: RFC 7628's JSON error first, the client's \x01, then
    # SASL_AUTHENTICATION_FAILED and a closed connection.
    before = failed_authentications(b)
    refused = [(unsecured_token("mallory-7x", scope="other"), "insufficient_scope"),
               (unsecured_token("mallory-7x", lifetime=-60), "invalid_token")]
    for token, status in refused:
        with kh.RawConnection("127.0.0.1", b.sasl_port) as c:
            assert handshake(c, "OAUTHBEARER")[0] == 0
            code, _, challenge, _ = authenticate_bytes(c, oauth_first_message(token))
            assert code == 0 and f'"status":"{status}"'.encode() in challenge.replace(b" ", b"")
            code, message, _, _ = authenticate_bytes(c, b"\x01")
            assert code == SASL_AUTHENTICATION_FAILED and status in message, (code, message)
            with pytest.raises(kh.ConnectionClosed):
                c.recv_response(c.send_request(18, 0, b""))
    # A malformed first message fails at once.
    with kh.RawConnection("127.0.0.1", b.sasl_port) as c:
        assert handshake(c, "OAUTHBEARER")[0] == 0
        assert authenticate_bytes(c, b"n,,\x01auth=Basic xyz\x01\x01")[0] == SASL_AUTHENTICATION_FAILED
    assert failed_authentications(b) == before + 3
    log = b.log_text()
    assert "principal=erin" in log
    for token, _ in refused:  # neither refused tokens nor their subjects are logged
        assert "mallory-7x" not in log and token.split(".")[1] not in log
