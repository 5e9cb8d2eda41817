"""Helpers of the TLS and SASL tests: a CA and certificates generated per test with trustme and
written as PEM files (never committed keys), a producer that must succeed, and the broker's
failed-authentication count."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import trustme

import kafka_helpers as kh

MAPPING = "RULE:^CN=([^,]+),.*$/$1/L,DEFAULT"


class Pki:
    """A CA, the broker's key store and trust store, written as PEM files."""

    def __init__(self, root: Path):
        self.root = root
        self.ca = trustme.CA(organization_name="Shale test CA")
        self.ca_pem = root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem))
        self.server_pem = root / "server.pem"
        self.server = self.ca.issue_cert("localhost", "127.0.0.1", common_name="broker")
        self.server.private_key_and_cert_chain_pem.write_to_path(str(self.server_pem))

    def client(self, name: str, ca: trustme.CA | None = None, **kw) -> tuple[str, str]:
        """(certificate path, key path) for CN=name."""
        leaf = (ca or self.ca).issue_cert(f"{name}.clients.test", common_name=name.upper(),
                                         organization_name="Shale", **kw)
        cert, key = self.root / f"{name}.crt", self.root / f"{name}.key"
        for blob in leaf.cert_chain_pems:
            with open(cert, "ab") as f:
                f.write(blob.bytes())
        leaf.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)

    def server_overrides(self, client_auth: str = "none") -> dict:
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.server_pem),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_pem),
            "ssl.client.auth": client_auth,
            "ssl.principal.mapping.rules": MAPPING,
        }


def produce_ck(bootstrap: str, topic: str, values: list, **conf):
    """Produces `values` with confluent-kafka and `conf`; every one must be acknowledged."""
    p = kh.ck_producer(bootstrap, **conf)
    errors = []
    for v in values:
        p.produce(topic, v, callback=lambda err, _m: err and errors.append(err))
    assert p.flush(30) == 0 and not errors, errors


def failed_authentications(b) -> int:
    """The broker's shale_failed_authentication_total."""
    text = urllib.request.urlopen(b.metrics_url, timeout=10).read().decode()
    m = re.search(r"^shale_failed_authentication_total (\d+)", text, re.M)
    assert m, "shale_failed_authentication_total missing"
    return int(m.group(1))
