#!/usr/bin/env python3
"""Markdown tables from a bench/results/*.jsonl file: Shale's numbers, each peer's (a peer is
any "broker" other than shale: tansu-memory, tansu-s3), Shale/peer ratios, and Shale against the
physical limits measured in the same run."""
import json
import sys

NOT_MEASURED = "not measured"
SAME_PATTERN = (4 << 20, 8)  # Shale's default read-ahead: 4 MiB GETs, about eight in flight


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


def lats(r, side):
    return "/".join(lat(r, side, k) for k in ("p50_us", "p99_us", "p999_us"))


def cpu_per_gb(r):
    gb = r["produce"]["bytes"] / 1e9
    return r["broker_after"]["cpu_s"] / gb if gb else None


def fmt(v, spec=",.0f"):
    return format(v, spec) if v is not None else NOT_MEASURED


def scenario1(by, peers, disk):
    print("### Scenario 1: produce + consume (1 producer, 1 consumer, full speed)\n")
    print("| run | produce msg/s | produce MB/s | consume msg/s | ack p50/p99/p999 ms "
          "| e2e p50/p99/p999 ms | start→ack ms | HWM MiB | broker CPU s | CPU s per GB "
          "| produce MB/s / disk |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in by("s1", "shale"):
        print(f"| {r['label']} | {r['produce']['msgs_per_s']:,.0f} | {r['produce']['mb_per_s']:.1f} "
              f"| {r['consume']['msgs_per_s']:,.0f} | {lats(r, 'produce')} | {lats(r, 'consume')} "
              f"| {r['startup_ms']} | {mib(r['broker_after']['vm_hwm_kib'])} "
              f"| {r['broker_after']['cpu_s']} | {fmt(cpu_per_gb(r), '.2f')} "
              f"| {ratio(r['produce']['mb_per_s'], disk)} |")
    for peer in peers:
        rows = {r["label"]: r for r in by("s1", peer)}
        if not rows:
            continue
        print(f"\n#### Shale vs {peer}\n")
        print("| run | Shale produce msg/s | peer produce msg/s | Shale/peer | Shale consume msg/s "
              "| peer consume msg/s | Shale/peer | peer errors | Shale CPU s per GB "
              "| peer CPU s per GB | peer/Shale CPU per GB |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in by("s1", "shale"):
            p = rows.get(r["label"])
            pp = p["produce"]["msgs_per_s"] if p else None
            pc = p["consume"]["msgs_per_s"] if p else None
            sc, pcpu = cpu_per_gb(r), cpu_per_gb(p) if p else None
            print(f"| {r['label']} | {r['produce']['msgs_per_s']:,.0f} | {fmt(pp)} "
                  f"| {ratio(r['produce']['msgs_per_s'], pp)} | {r['consume']['msgs_per_s']:,.0f} "
                  f"| {fmt(pc)} | {ratio(r['consume']['msgs_per_s'], pc)} "
                  f"| {p['errors'] if p else '-'} | {fmt(sc, '.2f')} | {fmt(pcpu, '.2f')} "
                  f"| {ratio(pcpu, sc)} |")


def scenario2(by, peers, s3_same, s3_best):
    print("\n### Scenario 2: cold read from s3s-fs\n")
    print("| run | broker | MB/s | first record ms | GETs per MiB | bytes fetched per MiB served "
          "| vs raw GET, same pattern | vs best raw GET | vs local read | HWM MiB (cache budget) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    s2 = by("s2", "shale")
    local = next((r for r in s2 if "local-tier" in r["label"]), None)
    local_mb = local["consume"]["mb_per_s"] if local else None
    for b, rows in [("shale", s2)] + [(p, by("s2", p)) for p in peers]:
        for r in rows:
            served_mib = r["consume"]["bytes"] / 1048576 or 1
            gets = r.get("remote_gets")
            fetched = r.get("remote_fetched_bytes")
            mb = r["consume"]["mb_per_s"]
            print(f"| {r['label']} | {b} | {mb:.1f} | {r['consume']['first_record_ms']} "
                  f"| {f'{gets / served_mib:.2f}' if gets is not None else '-'} "
                  f"| {f'{fetched / served_mib:,.0f}' if fetched is not None else '-'} "
                  f"| {ratio(mb, s3_same)} | {ratio(mb, s3_best)} | {ratio(mb, local_mb)} "
                  f"| {mib(r['broker_after']['vm_hwm_kib'])} ({r.get('cache_mib', '-')}) |")


def scenario3(by, peers):
    print("\n### Scenario 3: many partitions and idle connections (fixed rate)\n")
    print("| run | broker | RSS idle MiB | HWM after MiB | RSS after MiB | ack p50/p99/p999 ms "
          "| e2e p50/p99/p999 ms | msg/s | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b in ["shale"] + peers:
        for r in by("s3", b):
            print(f"| {r['label']} | {b} | {mib(r['broker_idle']['vm_rss_kib'])} "
                  f"| {mib(r['broker_after']['vm_hwm_kib'])} | {mib(r['broker_after']['vm_rss_kib'])} "
                  f"| {lats(r, 'produce')} | {lats(r, 'consume')} "
                  f"| {r['produce']['msgs_per_s']:,.0f} | {r['errors']} |")


def scenario5(by):
    rows = by("s5", "shale")
    if not rows:
        return
    print("\n### Scenario 5: produce latency across segment rolls\n")
    print("| run | segments | ack p50/p99/p999 ms | max ms | msg/s | errors |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        a = r["produce"]["ack_latency"]
        print(f"| {r['label']} | {r['segments']} | {lats(r, 'produce')} | {a['max_us'] / 1000:.1f} "
              f"| {r['produce']['msgs_per_s']:,.0f} | {r['errors']} |")


def main(path):
    rows = load(path)
    by = lambda scen, broker: [r for r in rows if r.get("scenario") == scen and r.get("broker", "shale") == broker]
    peers = sorted({r["broker"] for r in rows if r.get("broker") not in (None, "shale")})
    limits = [r for r in rows if "limit" in r]
    disk = max((r["mb_per_s"] for r in limits if r["limit"] == "disk_seq_write_fsync"), default=None)
    tcp = next((r["mb_per_s"] for r in limits if r["limit"] == "loopback_tcp"), None)
    gets = [r for r in limits if r["limit"] == "s3_ranged_get"]
    s3_best = max((r["mb_per_s"] for r in gets), default=None)
    s3_same = next((r["mb_per_s"] for r in gets if (r.get("block"), r.get("concurrency")) == SAME_PATTERN), None)
    rtt = min((r["get_p50_ms"] for r in gets if r.get("block", 0) <= 65536), default=None)

    scenario1(by, peers, disk)
    scenario2(by, peers, s3_same, s3_best)
    scenario3(by, peers)
    scenario5(by)

    print("\n### Scenario 4: physical limits (same run)\n")
    print("| limit | MB/s | detail |")
    print("|---|---|---|")
    for r in limits:
        if r["limit"] == "disk_seq_write_fsync":
            detail = f"{r.get('mib')} MiB, fsync every {r.get('fsync_every_mib')} MiB (0 = at end)"
        elif r["limit"] == "loopback_tcp":
            detail = "one stream, 1 MiB writes"
        else:
            detail = (f"s3s-fs, {r.get('block', 0):,} B ranges, {r.get('concurrency')} in flight, "
                      f"GET p50 {r.get('get_p50_ms', 0):.1f} ms")
        print(f"| {r['limit']} | {r['mb_per_s']:.1f} | {detail} |")
    print(f"\nLimits used for ratios: disk {disk} MB/s (best), loopback TCP {tcp} MB/s, S3 ranged GET "
          f"{s3_same} MB/s with Shale's read-ahead pattern (4 MiB, 8 in flight) and {s3_best} MB/s "
          f"best; S3 round trip (4 KiB GET p50) {rtt if rtt is None else round(rtt, 1)} ms.")


if __name__ == "__main__":
    main(sys.argv[1])
