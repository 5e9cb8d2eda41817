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

    def server_pkcs12(self, password: str, legacy: bool = False) -> Path:
        """The broker's key and chain as a PKCS12 store written by `cryptography`: AES-256 with
        PBKDF2 (what openssl 3 writes), or `legacy` 3DES with SHA-1 (openssl -legacy, Java 8)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
        key = serialization.load_pem_private_key(self.server.private_key_pem.bytes(), None)
        certs = [x509.load_pem_x509_certificate(c.bytes()) for c in self.server.cert_chain_pems]
        certs.append(x509.load_pem_x509_certificate(self.ca.cert_pem.bytes()))
        if legacy:
            enc = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)
                   .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                   .hmac_hash(hashes.SHA1()).build(password.encode()))
        else:
            enc = serialization.BestAvailableEncryption(password.encode())
        path = self.root / ("server-legacy.p12" if legacy else "server.p12")
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            b"broker", key, certs[0], certs[1:], enc))
        return path

    def ca_pkcs12(self, password: str) -> Path:
        """The CA certificate alone in a PKCS12 store written by `cryptography` (as openssl
        pkcs12 -export -nokeys writes it: no Java trust mark)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
        ca = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        path = self.root / "ca-bundle.p12"
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            None, None, None, [ca], serialization.BestAvailableEncryption(password.encode())))
        return path

    def encrypted_server_pem(self, password: str) -> Path:
        """The broker's chain and its key as encrypted PKCS#8 PEM (BEGIN ENCRYPTED PRIVATE KEY)."""
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_private_key(self.server.private_key_pem.bytes(), None)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(password.encode()))
        path = self.root / "server-encrypted.pem"
        path.write_bytes(pem + b"".join(c.bytes() for c in self.server.cert_chain_pems))
        return path

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
