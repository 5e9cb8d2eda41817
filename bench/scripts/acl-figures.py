#!/usr/bin/env python3
"""Authorization's cost end to end: one `shale` node without an authorizer against one with
Kafka's StandardAuthorizer and 10,000 ACLs, on loopback, with the shale-bench driver.

    .venv/bin/python bench/scripts/acl-figures.py [SHALE_BIN] [BENCH_BIN] [OUT.jsonl]

Defaults: target/release/shale, target/release/shale-bench,
bench/results/<UTC time>-acl.jsonl. The ACL broker's clients are ANONYMOUS (PLAINTEXT), which
is not a super user: it gets CREATE, WRITE and READ on the `bench-` prefix, and 9,997 more
bindings are written for 1,000 other principals (literal and prefixed topics, groups,
transactional ids, DENYs) through confluent-kafka's admin client, so every Produce and Fetch
is decided against the full index. Then, alternating the two brokers, ROUNDS times each: one
producer (acks=1, 1 KiB values, 200-record batches, 5 in flight) and one consumer for DURATION
seconds on a fresh one-partition topic, and the broker's CPU seconds per GB moved.

Every result is one JSON line (OUT and stderr); a markdown summary goes to stdout.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))

import kafka_helpers as kh  # noqa: E402
from conftest import Broker  # noqa: E402
from figures import bench, broker_cpu, write_results  # noqa: E402

ROUNDS = 3
DURATION = 10
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def bindings() -> list:
    """ANONYMOUS's three bindings, then 9,997 for principals u0..u999."""
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)
    lit, pre = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    allow, deny = AclPermissionType.ALLOW, AclPermissionType.DENY
    out = [AclBinding(ResourceType.TOPIC, "bench-", pre, "User:ANONYMOUS", "*", o, allow)
           for o in (AclOperation.CREATE, AclOperation.WRITE, AclOperation.READ)]
    for i in range(1000):
        who = f"User:u{i}"
        for k in range(5):
            out.append(AclBinding(ResourceType.TOPIC, f"orders-{(i + k) % 1000}", lit, who, "*",
                                  AclOperation.WRITE, allow))
        out.append(AclBinding(ResourceType.TOPIC, f"team{i}-", pre, who, "*", AclOperation.ALL,
                              allow))
        out.append(AclBinding(ResourceType.TOPIC, "bench-secret", lit, who, "*",
                              AclOperation.READ, deny))
        out.append(AclBinding(ResourceType.GROUP, f"g{i}-", pre, who, "*", AclOperation.READ,
                              allow))
        out.append(AclBinding(ResourceType.TRANSACTIONAL_ID, f"tx{i}", lit, who, "*",
                              AclOperation.WRITE, allow))
        out.append(AclBinding(ResourceType.TOPIC, "bench-", pre, who, "10.0.0.1",
                              AclOperation.WRITE, allow))
    return out[:10_000]


def load_acls(bootstrap: str) -> None:
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)
    admin = kh.ck_admin(bootstrap)
    todo = bindings()
    for start in range(0, len(todo), 1000):
        for f in admin.create_acls(todo[start:start + 1000], request_timeout=60).values():
            f.result(timeout=60)
    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    count = len(admin.describe_acls(every, request_timeout=60).result(timeout=60))
    assert count == 10_000, count


def main() -> None:
    shale = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "target/release/shale"
    bench_bin = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "target/release/shale-bench"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_path = Path(sys.argv[3]) if len(sys.argv) > 3 else REPO / f"bench/results/{stamp}-acl.jsonl"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        brokers = {}
        for kind, extra in [("open", {}), ("acl", {
                "authorizer.class.name": AUTHORIZER, "super.users": "User:admin",
                # Only while the ACLs are loaded: ANONYMOUS needs ALTER on the cluster for it.
                "allow.everyone.if.no.acl.found": "true"})]:
            data = tmp / kind
            data.mkdir()
            b = Broker(shale, data, tmp, name=f"acl-figures-{kind}")
            # Retention keeps six 10-second runs (about 1.6 GB each) off the disk.
            b.overrides.update({"shale.metrics.address": "", "log.retention.bytes": "536870912",
                                "log.retention.check.interval.ms": "2000", **extra})
            brokers[kind] = b.start()
        try:
            load_acls(brokers["acl"].bootstrap)
            for r in range(ROUNDS):
                for kind, b in brokers.items():
                    cpu0 = broker_cpu(b.pid)
                    line = bench(bench_bin, b.bootstrap, "--topic", f"bench-{kind}-{r}",
                                 "--message-size", "1024", "--duration", str(DURATION),
                                 "--label", f"{kind}-throughput")
                    line["broker_cpu_s"] = broker_cpu(b.pid) - cpu0
                    line.update(kind=kind, round=r)
                    results.append(line)
        finally:
            kh.close_all_clients()
            for b in brokers.values():
                b.stop()
    write_results(out_path, results, stamp, acls=10_000)
    summary(results)


def summary(results: list) -> None:
    def med(kind: str, key) -> float:
        return statistics.median(key(r) for r in results if r["kind"] == kind)

    print("| | no authorizer | 10,000 ACLs | ACLs / none |\n|---|---|---|---|")
    rows = [
        ("produce MB/s", lambda r: r["produce"]["mb_per_s"]),
        ("consume MB/s", lambda r: r["consume"]["mb_per_s"]),
        ("broker CPU s per GB (produced, and consumed once)",
         lambda r: r["broker_cpu_s"] / (r["produce"]["bytes"] / 1e9)),
    ]
    for name, key in rows:
        o, a = med("open", key), med("acl", key)
        print(f"| {name} | {o:,.1f} | {a:,.1f} | {a / o:.2f} |")


if __name__ == "__main__":
    main()
