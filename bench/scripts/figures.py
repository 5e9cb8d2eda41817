"""What the one-node figure scripts (tls-figures.py, acl-figures.py) share: the broker's CPU
time, one shale-bench run, and writing the results as JSON lines."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path


def broker_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(bench_bin: Path, addr: str, *args: str) -> dict:
    """One shale-bench run against `addr`; its JSON result, which must report no error."""
    out = subprocess.run([str(bench_bin), "--bootstrap", addr, *args], capture_output=True,
                         text=True, timeout=300)
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert "fatal" not in line and not line.get("errors"), line
    return line


def write_results(out_path: Path, results: list, stamp: str, **meta) -> None:
    """Every result as one JSON line in `out_path` and on stderr, with the machine's facts."""
    meta = {"host": platform.node(), "cpus": os.cpu_count(), "at": stamp, **meta}
    with open(out_path, "w") as f:
        for line in results:
            line["meta"] = meta
            f.write(json.dumps(line) + "\n")
            print(json.dumps(line), file=sys.stderr)
