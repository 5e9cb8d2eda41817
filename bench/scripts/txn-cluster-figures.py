#!/usr/bin/env python3
"""Transactions on a three-node cluster of combined `shale` nodes on loopback.

    txn-cluster-figures.py SHALE_BIN [transactions]

A topic of three partitions (replication factor 3, so each partition's leader is another node
and two of them are not the transaction coordinator), one confluent-kafka transactional
producer (`linger.ms=0`) committing one-record-per-partition transactions: 20 untimed warm-up
transactions, then `transactions` (default 1,000) timed from the first `begin_transaction()` to
the return of the last `commit_transaction()`. Prints transactions per second and how many TCP
connections were opened meanwhile (the kernel's `ActiveOpens` counter, /proc/net/snmp; nothing
else runs): a coordinator that opened a connection per WriteTxnMarkers or AddPartitionsToTxn
call opens several per transaction. Uses the suite's helpers (tests/python) and its venv.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))

import kafka_helpers as kh  # noqa: E402
from test_cluster import stop_all  # noqa: E402
from test_replication import create, start_cluster  # noqa: E402


def active_opens() -> int:
    """TCP connections this machine has opened (connect() calls), from /proc/net/snmp."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()
             if ln.startswith("Tcp:")]
    return int(lines[1][lines[0].index("ActiveOpens")])


def transactions(p, n: int):
    for _ in range(n):
        p.begin_transaction()
        for part in range(3):
            p.produce("txc", value=b"x" * 100, partition=part)
        p.commit_transaction(30)


def main():
    binary = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    nodes = start_cluster(binary, Path(tempfile.mkdtemp(prefix="txn-cluster-")))
    try:
        create(nodes[0], "txc", 3)
        everyone = ",".join(x.bootstrap for x in nodes)
        conf = {"transactional.id": "txc", "transaction.timeout.ms": 60000, "linger.ms": 0}
        p = kh.ck_producer(everyone, **conf)
        p.init_transactions(30)
        transactions(p, 20)
        opened_before, start = active_opens(), time.monotonic()
        transactions(p, n)
        elapsed, opened = time.monotonic() - start, active_opens() - opened_before
        print(f"| {n} transactions of 3 records (3 partitions, RF 3) | {n / elapsed:.1f} "
              f"| {opened} |")
        kh.close_all_clients()
    finally:
        stop_all(nodes)


if __name__ == "__main__":
    main()
