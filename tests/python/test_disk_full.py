"""Out of space: a produce that cannot be written gets KAFKA_STORAGE_ERROR, the failure is logged
once at ERROR and shown as a metric, the torn write is cut back at once (the segment ends with
its last whole batch while the broker runs), reads go on, and appends resume by themselves when
space returns.

"Disk full" is the broker's file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored): a write past it
fails part-way with EFBIG exactly as a full disk fails it with ENOSPC, and the limit can be lifted
from outside (prlimit) to give the space back, with no mount needed.
"""

from __future__ import annotations

import resource
import signal
import struct
import urllib.request

import kafka_helpers as kh

LIMIT = 1024 * 1024  # bytes any one file of the broker may reach
VALUE = b"v" * 10_000
STORAGE_ERROR = 56


def limited_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, as ENOSPC would be
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.RLIM_INFINITY))


def produce(bootstrap: str, n: int) -> tuple:
    """n records, one request each, no retries: (acknowledged offsets, error codes)."""
    p = kh.ck_producer(bootstrap, acks=1, retries=0, **{"linger.ms": 0, "message.timeout.ms": 10000})
    acked, errors = [], []

    def cb(err, msg):
        if err is None:
            acked.append(msg.offset())
        else:
            errors.append(err.code())
    for _ in range(n):
        p.produce("full", value=VALUE, partition=0, on_delivery=cb)
        p.flush(15)
    return acked, errors


def whole_batches_end(path) -> tuple:
    """Walks the record batch headers: (bytes covered by whole batches, file size)."""
    data = path.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">i", data[pos + 8:pos + 12])
        if pos + 12 + length > len(data):
            break
        pos += 12 + length
    return pos, len(data)


def failing_gauge(broker) -> float:
    with urllib.request.urlopen(broker.metrics_url, timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("shale_partitions_appends_failing "):
                return float(line.split()[1])
    raise AssertionError("shale_partitions_appends_failing not exported")


def test_disk_full_fails_cleanly_logs_once_and_recovers(broker_factory):
    b = broker_factory({"log.segment.bytes": str(8 * LIMIT)}, start=False)
    b.preexec_fn = limited_file_size
    b.start()
    kh.ck_create_topic(b.bootstrap, "full", 1)

    acked, errors = produce(b.bootstrap, 130)  # ~1.3 MB: the last ~30 cannot fit
    assert len(acked) >= 90, f"only {len(acked)} records fit"
    assert errors and set(errors) == {STORAGE_ERROR}, errors
    assert acked == list(range(len(acked)))

    # Logged once (not once per failed produce), shown as a metric.
    failing_lines = [ln for ln in b.log_text().splitlines() if "appends failing" in ln]
    assert len(failing_lines) == 1 and "ERROR" in failing_lines[0], failing_lines
    assert failing_gauge(b) == 1

    # The segment holds whole batches only, while the broker still runs.
    segment = b.data_dir / "full-0" / "00000000000000000000.log"
    covered, size = whole_batches_end(segment)
    assert covered == size, f"torn tail: {size - covered} bytes after the last whole batch"

    # Reads go on.
    msgs = kh.ck_consume(b.bootstrap, "full", [0])
    assert [m.offset for m in msgs] == acked and all(m.value == VALUE for m in msgs)

    # Space returns: appends resume without a restart.
    resource.prlimit(b.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    more, errors = produce(b.bootstrap, 20)
    assert not errors, errors
    assert more == list(range(len(acked), len(acked) + 20))
    assert failing_gauge(b) == 0
    assert any("appends succeed again" in ln for ln in b.log_text().splitlines())

    # A restart finds nothing to repair and serves every record.
    b.stop()
    b.preexec_fn = None
    b.start()
    assert not [ln for ln in b.log_text().splitlines()[-200:] if "corrupt" in ln.lower()]
    msgs = kh.ck_consume(b.bootstrap, "full", [0])
    assert [m.offset for m in msgs] == acked + more
