"""A CA and certificates for the TLS and SASL_SSL tests, generated per test with trustme and
written as PEM files (never committed keys)."""

from __future__ import annotations

from pathlib import Path

import trustme

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
