#!/usr/bin/env python3
"""Markdown tables from a bench/results/*.jsonl file: Shale's numbers, the peer's (or "not
measured yet"), Shale/peer ratios, and Shale against the physical limits of the same run."""
import json
import sys

NOT_MEASURED = "not measured yet"


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def mib(kib):
    return f"{kib / 1024:.1f}" if kib is not None else "-"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else NOT_MEASURED if not b else "-"


def lat(d, side, key):
    v = d[side]["ack_latency" if side == "produce" else "e2e_latency"].get(key)
    return f"{v / 1000:.2f}" if v is not None else "-"


def main(path):
    rows = load(path)
    by = lambda scen, broker: [r for r in rows if r.get("scenario") == scen and r.get("broker", "shale") == broker]
    peers = sorted({r["broker"] for r in rows if r.get("broker") not in (None, "shale")})
    peer = peers[0] if peers else None
    limits = {(r["limit"], r.get("fsync_every_mib"), r.get("concurrency")): r for r in rows if "limit" in r}
    disk = max((r["mb_per_s"] for k, r in limits.items() if k[0] == "disk_seq_write_fsync"), default=None)
    disk_fsync = limits.get(("disk_seq_write_fsync", 4, None), {}).get("mb_per_s")
    tcp = limits.get(("loopback_tcp", None, None), {}).get("mb_per_s")
    s3_raw = max((r["mb_per_s"] for k, r in limits.items() if k[0] == "s3_ranged_get"), default=None)

    print("### Scenario 1: produce + consume (1 producer, 1 consumer, full speed)\n")
    print("| run | produce msg/s | produce MB/s | consume msg/s | ack p50/p99/p999 ms | e2e p50/p99/p999 ms "
          "| start→ack ms | HWM MiB | broker CPU s | peer produce msg/s | peer consume msg/s "
          "| Shale/peer produce | Shale/peer consume | produce MB/s / disk |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    peer_rows = {r["label"]: r for r in by("s1", peer)} if peer else {}
    for r in by("s1", "shale"):
        p = peer_rows.get(r["label"])
        pm = p["produce"]["msgs_per_s"] if p else None
        cm = p["consume"]["msgs_per_s"] if p else None
        print(f"| {r['label']} | {r['produce']['msgs_per_s']:,.0f} | {r['produce']['mb_per_s']:.1f} "
              f"| {r['consume']['msgs_per_s']:,.0f} "
              f"| {lat(r, 'produce', 'p50_us')}/{lat(r, 'produce', 'p99_us')}/{lat(r, 'produce', 'p999_us')} "
              f"| {lat(r, 'consume', 'p50_us')}/{lat(r, 'consume', 'p99_us')}/{lat(r, 'consume', 'p999_us')} "
              f"| {r['startup_ms']} | {mib(r['broker_after']['vm_hwm_kib'])} "
              f"| {r['broker_after']['cpu_s']} | {f'{pm:,.0f}' if pm else NOT_MEASURED} "
              f"| {f'{cm:,.0f}' if cm else NOT_MEASURED} | {ratio(r['produce']['msgs_per_s'], pm)} "
              f"| {ratio(r['consume']['msgs_per_s'], cm)} | {ratio(r['produce']['mb_per_s'], disk)} |")

    print("\n### Scenario 2: tiered topic read from s3s-fs (Shale only)\n")
    print("| run | MB/s | first record ms | GETs per MiB | bytes fetched per MiB served | vs raw S3 GET | vs local read |")
    print("|---|---|---|---|---|---|---|")
    s2 = by("s2", "shale")
    local = next((r for r in s2 if "local-tier" in r["label"]), None)
    for r in s2:
        served_mib = r["consume"]["bytes"] / 1048576 or 1
        print(f"| {r['label']} | {r['consume']['mb_per_s']:.1f} | {r['consume']['first_record_ms']} "
              f"| {r['remote_gets'] / served_mib:.2f} | {r['remote_fetched_bytes'] / served_mib:,.0f} "
              f"| {ratio(r['consume']['mb_per_s'], s3_raw)} "
              f"| {ratio(r['consume']['mb_per_s'], local['consume']['mb_per_s'] if local else None)} |")

    print("\n### Scenario 3: many partitions and idle connections (fixed rate)\n")
    print("| run | broker | RSS idle MiB | HWM after MiB | RSS after MiB | ack p50/p99/p999 ms "
          "| e2e p50/p99/p999 ms | msg/s | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b in ["shale"] + ([peer] if peer else []):
        for r in by("s3", b):
            print(f"| {r['label']} | {b} | {mib(r['broker_idle']['vm_rss_kib'])} "
                  f"| {mib(r['broker_after']['vm_hwm_kib'])} | {mib(r['broker_after']['vm_rss_kib'])} "
                  f"| {lat(r, 'produce', 'p50_us')}/{lat(r, 'produce', 'p99_us')}/{lat(r, 'produce', 'p999_us')} "
                  f"| {lat(r, 'consume', 'p50_us')}/{lat(r, 'consume', 'p99_us')}/{lat(r, 'consume', 'p999_us')} "
                  f"| {r['produce']['msgs_per_s']:,.0f} | {r['errors']} |")
    if not peer:
        print(f"| (peer) | tansu | {NOT_MEASURED} | | | | | | |")

    print("\n### Scenario 4: physical limits (same run)\n")
    print("| limit | MB/s | detail |")
    print("|---|---|---|")
    for (kind, fs, conc), r in sorted(limits.items(), key=lambda kv: str(kv[0])):
        detail = {"disk_seq_write_fsync": f"{r.get('mib')} MiB, fsync every {fs} MiB (0 = at end)",
                  "loopback_tcp": "one stream, 1 MiB writes",
                  "s3_ranged_get": f"s3s-fs, {r.get('block')} B ranges, {conc} at a time, "
                                   f"GET p50 {r.get('get_p50_ms', 0):.1f} ms"}[kind]
        print(f"| {kind} | {r['mb_per_s']:.1f} | {detail} |")
    print(f"\nLimits used for ratios: disk {disk} MB/s (best of the two), disk with fsync every 4 MiB "
          f"{disk_fsync} MB/s, loopback TCP {tcp} MB/s, S3 ranged GET {s3_raw} MB/s (best).")


if __name__ == "__main__":
    main(sys.argv[1])
