#!/usr/bin/env python3
"""TLS against plaintext on one `shale` node on loopback, with the shale-bench driver.

    .venv/bin/python bench/scripts/tls-figures.py [SHALE_BIN] [BENCH_BIN] [OUT.jsonl]

Defaults: target/release/shale, target/release/shale-bench,
bench/results/<UTC time>-tls.jsonl. Generates a CA and a server certificate (trustme), starts
one broker with a PLAINTEXT and an SSL listener (TLS 1.3, rustls's default suites) and runs,
alternating plaintext and TLS, ROUNDS times each:

1. throughput: one producer (acks=1, 1 KiB values, 200-record batches, 5 in flight) and one
   consumer for DURATION seconds on a fresh one-partition topic; records/s and MB/s produced
   and consumed, and the broker's CPU seconds per GB moved;
2. handshakes: HANDSHAKES connections opened one after another, each completed by an
   ApiVersions round trip (over TLS: a full TLS 1.3 handshake with an ECDSA P-256 key).

Every result is one JSON line (OUT and stderr); a markdown summary goes to stdout.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import trustme

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))

from conftest import Broker, free_port  # noqa: E402
from figures import bench, broker_cpu, write_results  # noqa: E402

ROUNDS = 3
DURATION = 10
HANDSHAKES = 2000


def main() -> None:
    shale = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "target/release/shale"
    bench_bin = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "target/release/shale-bench"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_path = Path(sys.argv[3]) if len(sys.argv) > 3 else REPO / f"bench/results/{stamp}-tls.jsonl"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ca = trustme.CA()
        ca_pem, server_pem = tmp / "ca.pem", tmp / "server.pem"
        ca.cert_pem.write_to_path(str(ca_pem))
        ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem \
            .write_to_path(str(server_pem))
        data = tmp / "data"
        data.mkdir()
        b = Broker(shale, data, tmp, name="tls-figures")
        ssl_port = free_port()
        b.overrides.update({
            "listeners": f"PLAINTEXT://127.0.0.1:{b.port},SSL://127.0.0.1:{ssl_port}",
            "shale.metrics.address": "",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(server_pem),
        })
        b.start()
        try:
            targets = [("plaintext", f"127.0.0.1:{b.port}", None),
                       ("tls", f"127.0.0.1:{ssl_port}", ca_pem)]
            for r in range(ROUNDS):
                for kind, addr, cert in targets:
                    cpu0 = broker_cpu(b.pid)
                    tls = ["--tls-ca", str(cert)] if cert else []
                    line = bench(bench_bin, addr, *tls, "--topic", f"t-{kind}-{r}",
                                 "--message-size", "1024", "--duration", str(DURATION),
                                 "--label", f"{kind}-throughput")
                    line["broker_cpu_s"] = broker_cpu(b.pid) - cpu0
                    line.update(kind=kind, what="throughput", round=r)
                    results.append(line)
                    hs = bench(bench_bin, addr, *tls, "--handshakes", str(HANDSHAKES),
                               "--label", f"{kind}-handshakes")
                    hs.update(kind=kind, what="handshakes", round=r)
                    results.append(hs)
        finally:
            b.stop()
    write_results(out_path, results, stamp)
    summary(results)


def summary(results: list) -> None:
    def med(kind: str, what: str, key) -> float:
        return statistics.median(key(r) for r in results if r["kind"] == kind and r["what"] == what)

    print("| | plaintext | TLS 1.3 | TLS / plaintext |\n|---|---|---|---|")
    rows = [
        ("produce MB/s", "throughput", lambda r: r["produce"]["mb_per_s"]),
        ("consume MB/s", "throughput", lambda r: r["consume"]["mb_per_s"]),
        ("broker CPU s per GB (produced, and consumed once)",
         "throughput", lambda r: r["broker_cpu_s"] / (r["produce"]["bytes"] / 1e9)),
        ("connections/s (connect + ApiVersions)", "handshakes", lambda r: r["per_second"]),
    ]
    for name, what, key in rows:
        p, t = med("plaintext", what, key), med("tls", what, key)
        print(f"| {name} | {p:,.1f} | {t:,.1f} | {t / p:.2f} |")


if __name__ == "__main__":
    main()
