"""Small helpers shared by the Python end-to-end tests of Shale.

Two halves:
  * raw Kafka wire protocol (framing, primitive encoders, a reader, RecordBatch v2
    with CRC-32C, and a handful of request builders / response parsers) used by
    tests that must send exactly the bytes they want;
  * thin wrappers around the real clients (confluent-kafka, kafka-python) with
    fail-fast timeouts, plus a deterministic record generator and comparison
    helpers.

Everything here is written from the public protocol description; nothing is
copied from Kafka.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import crc32c as _crc32c_mod

# ---------------------------------------------------------------------------
# Kafka error codes used by the tests
# ---------------------------------------------------------------------------
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REQUEST = 42
INVALID_RECORD = 87

# API keys
API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_FIND_COORDINATOR = 10
API_API_VERSIONS = 18
API_CREATE_TOPICS = 19

# All clients in the tests are bounded by these.
DEFAULT_DEADLINE_S = 30.0


def wait_until(cond: Callable[[], object], timeout: float = DEFAULT_DEADLINE_S,
               interval: float = 0.05, what: str = "condition"):
    """Polls `cond` until it returns a truthy value; returns that value or raises."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - we report the last one
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Primitive encoders
# ---------------------------------------------------------------------------
def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def boolean(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


def string(s: Optional[str]) -> bytes:
    """Classic (int16 length) string; None encodes as nullable -1."""
    if s is None:
        return i16(-1)
    b = s.encode("utf-8")
    return i16(len(b)) + b


def kbytes(b: Optional[bytes]) -> bytes:
    """Classic (int32 length) bytes; None encodes as -1."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items: Optional[Iterable[bytes]]) -> bytes:
    if items is None:
        return i32(-1)
    items = list(items)
    return i32(len(items)) + b"".join(items)


def uvarint(v: int) -> bytes:
    assert v >= 0
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(v: int) -> bytes:
    """Zig-zag signed varint (works for both varint and varlong ranges)."""
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s: Optional[str]) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode("utf-8")
    return uvarint(len(b) + 1) + b


def compact_array(items: Optional[Iterable[bytes]]) -> bytes:
    if items is None:
        return uvarint(0)
    items = list(items)
    return uvarint(len(items) + 1) + b"".join(items)


EMPTY_TAGS = uvarint(0)


class Reader:
    """Sequential big-endian decoder over a response body."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"read of {n} bytes at {self.pos} past end {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt: str, n: int):
        return struct.unpack(fmt, self.take(n))[0]

    def i8(self) -> int:
        return self._unpack(">b", 1)

    def i16(self) -> int:
        return self._unpack(">h", 2)

    def i32(self) -> int:
        return self._unpack(">i", 4)

    def i64(self) -> int:
        return self._unpack(">q", 8)

    def boolean(self) -> bool:
        return self.i8() != 0

    def string(self) -> Optional[str]:
        n = self.i16()
        return None if n < 0 else self.take(n).decode("utf-8")

    def kbytes(self) -> Optional[bytes]:
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, item: Callable[["Reader"], object]) -> Optional[list]:
        n = self.i32()
        if n < 0:
            return None
        return [item(self) for _ in range(n)]

    def uvarint(self) -> int:
        shift = 0
        value = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def varint(self) -> int:
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def compact_string(self) -> Optional[str]:
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode("utf-8")

    def compact_array(self, item: Callable[["Reader"], object]) -> Optional[list]:
        n = self.uvarint()
        if n == 0:
            return None
        return [item(self) for _ in range(n - 1)]

    def tagged_fields(self) -> dict:
        tags = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            size = self.uvarint()
            tags[tag] = self.take(size)
        return tags


# ---------------------------------------------------------------------------
# Framing and a raw connection
# ---------------------------------------------------------------------------
def request_header(api_key: int, api_version: int, correlation_id: int,
                   client_id: Optional[str] = "shale-raw-test", flexible: bool = False) -> bytes:
    """Request header v1, or v2 (adds empty tagged fields) when `flexible`."""
    h = i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)
    if flexible:
        h += EMPTY_TAGS
    return h


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


class ConnectionClosed(Exception):
    pass


class RawConnection:
    """A blocking TCP connection that speaks size-prefixed Kafka frames."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, source: str | None = None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def next_correlation_id(self) -> int:
        self._corr += 1
        return self._corr

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send_request(self, api_key: int, api_version: int, body: bytes,
                     flexible_header: bool = False, correlation_id: Optional[int] = None) -> int:
        corr = self.next_correlation_id() if correlation_id is None else correlation_id
        self.send_raw(frame(request_header(api_key, api_version, corr, flexible=flexible_header) + body))
        return corr

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise ConnectionClosed(str(exc)) from exc
            if not chunk:
                raise ConnectionClosed(f"EOF after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        size = struct.unpack(">i", self._recv_exact(4))[0]
        if size < 0 or size > 256 * 1024 * 1024:
            raise ValueError(f"implausible response size {size}")
        return self._recv_exact(size)

    def recv_response(self, correlation_id: int, flexible_header: bool = False) -> Reader:
        """Reads one response; checks the correlation id and returns a Reader on the body."""
        data = self.recv_frame()
        r = Reader(data)
        got = r.i32()
        if got != correlation_id:
            raise AssertionError(f"correlation id {got} != expected {correlation_id}")
        if flexible_header:
            r.tagged_fields()
        return r

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True if the peer closes the connection (EOF or reset) within `timeout`,
        discarding anything it sends first. False if it stays open."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError, OSError):
                return True
            if not chunk:
                return True

    def closed_or_response(self, timeout: float = 10.0) -> str:
        """Returns 'closed' if the peer closed, 'response' if it sent at least one
        full frame, 'hang' if neither happened within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            head = self.sock.recv(4)
        except socket.timeout:
            return "hang"
        except (ConnectionResetError, BrokenPipeError, OSError):
            return "closed"
        if not head:
            return "closed"
        return "response"


# ---------------------------------------------------------------------------
# ApiVersions
# ---------------------------------------------------------------------------
@dataclass
class ApiVersionsResponse:
    error_code: int
    api_keys: dict  # api_key -> (min, max)
    throttle_time_ms: Optional[int] = None
    tags: dict = field(default_factory=dict)
    trailing_bytes: int = 0


def api_versions_v3_body(name: str = "shale-tests", version: str = "1.0") -> bytes:
    return compact_string(name) + compact_string(version) + EMPTY_TAGS


def parse_api_versions_v0(r: Reader) -> ApiVersionsResponse:
    err = r.i16()
    keys = {}
    for k, lo, hi in r.array(lambda rr: (rr.i16(), rr.i16(), rr.i16())) or []:
        keys[k] = (lo, hi)
    return ApiVersionsResponse(err, keys, trailing_bytes=r.remaining())


def parse_api_versions_v3(r: Reader) -> ApiVersionsResponse:
    err = r.i16()

    def entry(rr: Reader):
        k, lo, hi = rr.i16(), rr.i16(), rr.i16()
        rr.tagged_fields()
        return k, lo, hi

    keys = {k: (lo, hi) for k, lo, hi in (r.compact_array(entry) or [])}
    throttle = r.i32()
    tags = r.tagged_fields()
    return ApiVersionsResponse(err, keys, throttle, tags, r.remaining())


def api_versions(conn: RawConnection, version: int = 0) -> ApiVersionsResponse:
    """ApiVersions v0 or v3 (the response header is always v0)."""
    if version >= 3:
        corr = conn.send_request(API_API_VERSIONS, version, api_versions_v3_body(), flexible_header=True)
        return parse_api_versions_v3(conn.recv_response(corr))
    corr = conn.send_request(API_API_VERSIONS, version, b"")
    return parse_api_versions_v0(conn.recv_response(corr))


# ---------------------------------------------------------------------------
# Metadata v1
# ---------------------------------------------------------------------------
def metadata_v1_body(topics: Optional[list]) -> bytes:
    return array(None if topics is None else [string(t) for t in topics])


def parse_metadata_v1(r: Reader) -> dict:
    brokers = r.array(lambda rr: {"node_id": rr.i32(), "host": rr.string(),
                                  "port": rr.i32(), "rack": rr.string()})
    controller = r.i32()

    def partition(rr: Reader):
        return {"error_code": rr.i16(), "partition": rr.i32(), "leader": rr.i32(),
                "replicas": rr.array(lambda x: x.i32()), "isr": rr.array(lambda x: x.i32())}

    def topic(rr: Reader):
        return {"error_code": rr.i16(), "name": rr.string(), "is_internal": rr.boolean(),
                "partitions": rr.array(partition)}

    topics = r.array(topic)
    return {"brokers": brokers, "controller_id": controller,
            "topics": {t["name"]: t for t in topics}, "trailing_bytes": r.remaining()}


def metadata_v1(conn: RawConnection, topics: Optional[list]) -> dict:
    corr = conn.send_request(API_METADATA, 1, metadata_v1_body(topics))
    return parse_metadata_v1(conn.recv_response(corr))


# ---------------------------------------------------------------------------
# Metadata v4 (adds allow_auto_topic_creation; the response adds throttle and cluster id)
# ---------------------------------------------------------------------------
def metadata_v4(conn: RawConnection, topics: Optional[list], allow_auto_create: bool = False) -> dict:
    body = metadata_v1_body(topics) + boolean(allow_auto_create)
    corr = conn.send_request(API_METADATA, 4, body)
    r = conn.recv_response(corr)
    throttle = r.i32()
    brokers = r.array(lambda rr: {"node_id": rr.i32(), "host": rr.string(),
                                  "port": rr.i32(), "rack": rr.string()})
    cluster_id = r.string()
    controller = r.i32()

    def partition(rr: Reader):
        return {"error_code": rr.i16(), "partition": rr.i32(), "leader": rr.i32(),
                "replicas": rr.array(lambda x: x.i32()), "isr": rr.array(lambda x: x.i32())}

    def topic(rr: Reader):
        return {"error_code": rr.i16(), "name": rr.string(), "is_internal": rr.boolean(),
                "partitions": rr.array(partition)}

    tl = r.array(topic)
    return {"throttle_time_ms": throttle, "brokers": brokers, "cluster_id": cluster_id,
            "controller_id": controller, "topics": {t["name"]: t for t in tl},
            "trailing_bytes": r.remaining()}


def raw_metadata(host: str, port: int, topics: Optional[list] = None) -> dict:
    """One Metadata v4 round trip on a fresh connection, never auto-creating topics."""
    with RawConnection(host, port) as c:
        return metadata_v4(c, topics, allow_auto_create=False)


def topic_partitions(host: str, port: int, name: str) -> Optional[int]:
    """Partition count of `name`, or None if the broker says it does not exist."""
    t = raw_metadata(host, port, [name])["topics"][name]
    if t["error_code"] in (UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION):
        return None
    assert t["error_code"] == 0, f"metadata for {name}: error {t['error_code']}"
    return len(t["partitions"])


# ---------------------------------------------------------------------------
# CreateTopics v2
# ---------------------------------------------------------------------------
def create_topics_v2_body(topics: list, timeout_ms: int = 10000, validate_only: bool = False) -> bytes:
    """topics: list of (name, num_partitions, replication_factor, {config: value})."""
    items = []
    for name, parts, rf, configs in topics:
        cfgs = [string(k) + string(v) for k, v in (configs or {}).items()]
        items.append(string(name) + i32(parts) + i16(rf) + array([]) + array(cfgs))
    return array(items) + i32(timeout_ms) + boolean(validate_only)


def create_topics_v2(conn: RawConnection, topics: list, validate_only: bool = False) -> dict:
    corr = conn.send_request(API_CREATE_TOPICS, 2, create_topics_v2_body(topics, validate_only=validate_only))
    r = conn.recv_response(corr)
    r.i32()  # throttle
    res = r.array(lambda rr: (rr.string(), rr.i16(), rr.string()))
    return {name: (code, msg) for name, code, msg in res}


# ---------------------------------------------------------------------------
# RecordBatch v2 and Produce
# ---------------------------------------------------------------------------
def crc32c(data: bytes) -> int:
    return _crc32c_mod.crc32c(data)


@dataclass
class Rec:
    key: Optional[bytes]
    value: Optional[bytes]
    headers: list = field(default_factory=list)  # [(str, bytes|None)]
    timestamp_delta: int = 0


def encode_record(offset_delta: int, rec: Rec) -> bytes:
    body = bytearray()
    body += i8(0)  # attributes
    body += varint(rec.timestamp_delta)
    body += varint(offset_delta)
    for part in (rec.key, rec.value):
        if part is None:
            body += varint(-1)
        else:
            body += varint(len(part)) + part
    body += varint(len(rec.headers))
    for hk, hv in rec.headers:
        kb = hk.encode("utf-8")
        body += varint(len(kb)) + kb
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + bytes(body)


CRC_OFFSET = 17  # base_offset(8) + batch_length(4) + leader_epoch(4) + magic(1)


def record_batch(records: list, base_timestamp: Optional[int] = None, base_offset: int = 0,
                 producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
                 attributes: int = 0, corrupt_crc: bool = False) -> bytes:
    """An uncompressed magic-2 RecordBatch holding `records` (list of Rec)."""
    if base_timestamp is None:
        base_timestamp = (int(time.time()) - 60) * 1000
    recs = b"".join(encode_record(i, r) for i, r in enumerate(records))
    max_ts = base_timestamp + max((r.timestamp_delta for r in records), default=0)
    after_crc = (i16(attributes) + i32(len(records) - 1) + i64(base_timestamp) + i64(max_ts)
                 + i64(producer_id) + i16(producer_epoch) + i32(base_sequence)
                 + i32(len(records)) + recs)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    after_length = i32(-1) + i8(2) + u32(crc) + after_crc  # partition_leader_epoch, magic, crc
    return i64(base_offset) + i32(len(after_length)) + after_length


def produce_body(topic: str, partition: int, records: bytes, acks: int = -1,
                 timeout_ms: int = 10000) -> bytes:
    """Produce v3..v8 request body (all share one non-flexible layout)."""
    part = i32(partition) + kbytes(records)
    return string(None) + i16(acks) + i32(timeout_ms) + array([string(topic) + array([part])])


def parse_produce_response(r: Reader, version: int) -> dict:
    """Returns {(topic, partition): {error_code, base_offset, ...}} for v3..v8."""
    out = {}
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            p = {"partition": r.i32(), "error_code": r.i16(), "base_offset": r.i64(),
                 "log_append_time_ms": r.i64()}
            if version >= 5:
                p["log_start_offset"] = r.i64()
            if version >= 8:
                p["record_errors"] = r.array(lambda rr: (rr.i32(), rr.string()))
                p["error_message"] = r.string()
            out[(name, p["partition"])] = p
    r.i32()  # throttle_time_ms
    return out


def produce(conn: RawConnection, topic: str, partition: int, batch: bytes,
            version: int = 3, acks: int = -1) -> dict:
    corr = conn.send_request(API_PRODUCE, version, produce_body(topic, partition, batch, acks))
    return parse_produce_response(conn.recv_response(corr), version)[(topic, partition)]


# ---------------------------------------------------------------------------
# Deterministic test records
# ---------------------------------------------------------------------------
# Record timestamps start one hour before the test run (whole seconds): recent enough that
# no retention setting deletes them, old enough to stay clear of "future timestamp" limits.
BASE_TS = (int(time.time()) - 3600) * 1000


@dataclass(frozen=True)
class Msg:
    """A record as read back by a client, normalised for comparison."""
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: tuple  # ((str, bytes|None), ...) in order, duplicates kept
    timestamp: int

    def content(self):
        return (self.key, self.value, self.headers, self.timestamp)


@dataclass(frozen=True)
class Gen:
    """The i-th generated record."""
    i: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: tuple
    timestamp: int

    def content(self):
        return (self.key, self.value, self.headers, self.timestamp)


def make_record(i: int, value_size: int = 0, null_header_values: bool = True,
                ts_step: int = 1, all_null: bool = True) -> Gen:
    """Record i: keys (some null), varied binary values (some null / empty),
    headers including duplicate keys and (optionally) null header values.
    With all_null=False no record has both a null key and a null value
    (kafka-python's producer refuses those)."""
    key = None if i % 17 == 5 else f"key-{i}".encode()
    if key is None and i % 23 == 7 and not all_null:
        key = f"key-{i}".encode()
    if i % 23 == 7:
        value = None
    else:
        n = value_size if value_size else (i * 7919) % 211
        prefix = f"v{i}:".encode()
        body = bytes(((i + j) * 31) & 0xFF for j in range(max(0, n - len(prefix))))
        value = (prefix + body)[:n] if n else b""
    headers: list = []
    if i % 4 != 0:
        headers.append(("trace", f"t{i}".encode()))
    if i % 3 == 0:
        headers += [("dup", b"first"), ("other", b"x"), ("dup", f"second-{i}".encode()), ("dup", b"")]
    if null_header_values and i % 11 == 0:
        headers.append(("nullv", None))
    return Gen(i, key, value, tuple(headers), BASE_TS + i * ts_step)


def index_of_key(key: Optional[bytes]) -> Optional[int]:
    if key is None or not key.startswith(b"key-"):
        return None
    try:
        return int(key[4:])
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# client registry: every client made here is closed at test teardown, so a
# client kept alive by a failing test's traceback does not keep reconnecting
# to a stopped broker for the rest of the session
# ---------------------------------------------------------------------------
_CLIENTS: list = []


def _track(client):
    _CLIENTS.append(client)
    return client


def close_all_clients():
    from confluent_kafka import Consumer, Producer
    while _CLIENTS:
        c = _CLIENTS.pop()
        try:
            if isinstance(c, Producer):
                c.purge()
                c.close()
            elif isinstance(c, Consumer):
                c.close()
            elif hasattr(c, "close"):  # kafka-python clients
                try:
                    c.close(timeout=1)
                except TypeError:
                    c.close()
        except Exception:  # noqa: BLE001 - already closed, or closing a broken client
            pass


# ---------------------------------------------------------------------------
# confluent-kafka wrappers
# ---------------------------------------------------------------------------
# librdkafka's own log lines go to Python logging (shown with a failing test) instead of
# straight to stderr, where clients outliving a stopped broker would flood the run.
RDKAFKA_LOGGER = logging.getLogger("rdkafka")


def ck_common(bootstrap: str) -> dict:
    conf = {
        "logger": RDKAFKA_LOGGER,
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": 10000,
        "socket.connection.setup.timeout.ms": 10000,
        "topic.metadata.refresh.interval.ms": 5000,
    }
    # In a network namespace with only a loopback interface, librdkafka's v4-only lookup
    # (getaddrinfo with AI_ADDRCONFIG) finds no address at all, even for 127.0.0.1.
    if "SHALE_IN_NETNS" not in os.environ:
        conf["broker.address.family"] = "v4"
    return conf


def ck_admin(bootstrap: str, **extra):
    from confluent_kafka.admin import AdminClient
    conf = ck_common(bootstrap)
    conf.update(extra)
    return _track(AdminClient(conf))


def ck_producer(bootstrap: str, **extra):
    from confluent_kafka import Producer
    conf = ck_common(bootstrap)
    conf.update({"linger.ms": 5, "message.timeout.ms": 30000, "queue.buffering.max.messages": 500000})
    conf.update(extra)
    return _track(Producer(conf))


def ck_consumer(bootstrap: str, **extra):
    from confluent_kafka import Consumer
    conf = ck_common(bootstrap)
    # group.id is mandatory in confluent-kafka even when only assign() is used;
    # nothing is committed (no group protocol is exercised).
    conf.update({"group.id": f"shale-test-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                 "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                 "enable.partition.eof": True})
    conf.update(extra)
    return _track(Consumer(conf))


def ck_create_topic(bootstrap: str, name: str, partitions: int = 1, config: Optional[dict] = None,
                    timeout: float = 30):
    from confluent_kafka.admin import NewTopic
    admin = ck_admin(bootstrap)
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                       config=config or {})], request_timeout=timeout)
    fs[name].result(timeout=timeout)
    wait_until(lambda: _ck_topic_ready(admin, name, partitions), timeout=timeout,
               what=f"topic {name} with {partitions} partitions in metadata")


def _ck_topic_ready(admin, name: str, partitions: int) -> bool:
    md = admin.list_topics(topic=name, timeout=10)
    t = md.topics.get(name)
    return (t is not None and t.error is None and len(t.partitions) == partitions
            and all(p.leader >= 0 for p in t.partitions.values()))


@dataclass
class ProduceResult:
    offsets: dict  # i -> (partition, offset)
    errors: list


def ck_produce(producer, topic: str, gens: Iterable[Gen], partition_of: Callable[[int], int],
               flush_timeout: float = 120) -> ProduceResult:
    """Produces generated records with explicit partitions; waits for all delivery reports."""
    res = ProduceResult({}, [])

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                res.errors.append((i, err))
            else:
                res.offsets[i] = (msg.partition(), msg.offset())
        return cb

    for g in gens:
        kwargs = dict(topic=topic, partition=partition_of(g.i), key=g.key, value=g.value,
                      timestamp=g.timestamp, on_delivery=make_cb(g.i))
        if g.headers:
            kwargs["headers"] = list(g.headers)
        while True:
            try:
                producer.produce(**kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(flush_timeout)
    assert left == 0, f"{left} messages still undelivered after {flush_timeout}s"
    return res


def _ck_headers(h) -> tuple:
    if not h:
        return ()
    return tuple((k if isinstance(k, str) else k.decode(), v) for k, v in h)


def ck_watermarks(bootstrap: str, topic: str, partitions: Iterable[int]) -> dict:
    from confluent_kafka import TopicPartition
    c = ck_consumer(bootstrap)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
                for p in partitions}
    finally:
        c.close()


def ck_consume(bootstrap: str, topic: str, partitions: Iterable[int], start: Optional[dict] = None,
               end: Optional[dict] = None, timeout: float = 120, **extra) -> list:
    """Reads each partition from `start[p]` (default: beginning) up to `end[p]`
    (default: the current high watermark) with assign(); returns [Msg]."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
    partitions = list(partitions)
    c = ck_consumer(bootstrap, **extra)
    try:
        wm = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
              for p in partitions}
        if end is None:
            end = {p: wm[p][1] for p in partitions}
        start = start or {}
        c.assign([TopicPartition(topic, p, start.get(p, OFFSET_BEGINNING)) for p in partitions])
        out = []
        pos = {p: start.get(p, wm[p][0]) for p in partitions}
        pending = {p for p in partitions if pos[p] < end[p]}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"ck_consume timed out; positions {pos}, targets {end}")
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error: {m.error()}")
                p = m.partition()
                ts_type, ts = m.timestamp()
                out.append(Msg(p, m.offset(), m.key(), m.value(), _ck_headers(m.headers()), ts))
                pos[p] = m.offset() + 1
                if pos[p] >= end[p]:
                    pending.discard(p)
        return out
    finally:
        c.close()


# ---------------------------------------------------------------------------
# kafka-python wrappers
# ---------------------------------------------------------------------------
def kp_common(bootstrap: str) -> dict:
    return {"bootstrap_servers": bootstrap, "request_timeout_ms": 15000,
            "bootstrap_timeout_ms": 15000}


def kp_consumer(bootstrap: str, **extra):
    from kafka import KafkaConsumer
    conf = kp_common(bootstrap)
    conf.update({"group_id": None, "enable_auto_commit": False, "auto_offset_reset": "earliest"})
    conf.update(extra)
    return _track(KafkaConsumer(**conf))


def kp_producer(bootstrap: str, **extra):
    from kafka import KafkaProducer
    conf = kp_common(bootstrap)
    conf.update({"linger_ms": 5, "max_block_ms": 30000})
    conf.update(extra)
    return _track(KafkaProducer(**conf))


def kp_admin(bootstrap: str, **extra):
    from kafka import KafkaAdminClient
    conf = kp_common(bootstrap)
    conf.update(extra)
    return _track(KafkaAdminClient(**conf))


def _kp_headers(h) -> tuple:
    if not h:
        return ()
    return tuple((k if isinstance(k, str) else k.decode(), v) for k, v in h)


def kp_consume(bootstrap: str, topic: str, partitions: Iterable[int], start: Optional[dict] = None,
               end: Optional[dict] = None, timeout: float = 120, **extra) -> list:
    """kafka-python KafkaConsumer(group_id=None) + assign(); same contract as ck_consume."""
    from kafka import TopicPartition
    partitions = list(partitions)
    c = kp_consumer(bootstrap, **extra)
    try:
        tps = {p: TopicPartition(topic, p) for p in partitions}
        c.assign(list(tps.values()))
        if end is None:
            eo = c.end_offsets(list(tps.values()))
            end = {p: eo[tps[p]] for p in partitions}
        bo = c.beginning_offsets(list(tps.values()))
        start = start or {}
        for p, tp in tps.items():
            if p in start:
                c.seek(tp, start[p])
            else:
                c.seek_to_beginning(tp)
        out = []
        pos = {p: start.get(p, bo[tps[p]]) for p in partitions}
        pending = {p for p in partitions if pos[p] < end[p]}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"kp_consume timed out; positions {pos}, targets {end}")
            batch = c.poll(timeout_ms=500, max_records=10000)
            for tp, recs in batch.items():
                for m in recs:
                    out.append(Msg(tp.partition, m.offset, m.key, m.value, _kp_headers(m.headers),
                                   m.timestamp))
                    pos[tp.partition] = m.offset + 1
                if pos[tp.partition] >= end[tp.partition]:
                    pending.discard(tp.partition)
        return out
    finally:
        c.close()


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------
def by_partition(msgs: Iterable[Msg]) -> dict:
    out: dict = {}
    for m in msgs:
        out.setdefault(m.partition, []).append(m)
    return out


def assert_offsets_contiguous(msgs: list, start: int = 0, what: str = ""):
    for p, lst in by_partition(msgs).items():
        offs = [m.offset for m in lst]
        first = offs[0] if offs else start
        expect = list(range(first, first + len(offs)))
        if offs != expect:
            bad = next(k for k, (a, b) in enumerate(zip(offs, expect)) if a != b)
            raise AssertionError(f"{what} partition {p}: offsets not contiguous at index {bad}: "
                                 f"got {offs[max(0, bad - 2):bad + 3]}, expected {expect[max(0, bad - 2):bad + 3]}")


def assert_matches(msgs: list, gens: dict, offsets: Optional[dict] = None, what: str = ""):
    """Each consumed message must be the generated record named by its key order.

    `gens`: {partition: [Gen in produce order]}; `offsets`: optional {i: (partition, offset)}
    from delivery reports, checked exactly when given."""
    got = by_partition(msgs)
    assert set(got) <= set(gens), f"{what}: messages from unexpected partitions {set(got) - set(gens)}"
    for p, expected in gens.items():
        lst = got.get(p, [])
        assert len(lst) == len(expected), (
            f"{what} partition {p}: read {len(lst)} records, expected {len(expected)}")
        for m, g in zip(lst, expected):
            if m.content() != g.content():
                raise AssertionError(f"{what} partition {p} offset {m.offset}: record {g.i} differs\n"
                                     f"  got      {m.content()!r:.600}\n  expected {g.content()!r:.600}")
            if offsets is not None:
                assert offsets[g.i] == (p, m.offset), (
                    f"{what}: record {g.i} delivered at {offsets[g.i]} but read at {(p, m.offset)}")


# ---------------------------------------------------------------------------
# Tiered storage: raw ListOffsets v9 (-2/-4/-5) and a raw multi-topic Fetch v4
# ---------------------------------------------------------------------------
EARLIEST_TIMESTAMP = -2
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5
KAFKA_STORAGE_ERROR = 56


def list_offsets_v9(conn: RawConnection, topic: str, partition: int, timestamp: int) -> dict:
    """One partition of a ListOffsets v9 (flexible) request; returns
    {error_code, timestamp, offset, leader_epoch}."""
    part = i32(partition) + i32(-1) + i64(timestamp) + EMPTY_TAGS
    body = (i32(-1) + i8(0) + compact_array([compact_string(topic) + compact_array([part]) + EMPTY_TAGS])
            + EMPTY_TAGS)
    corr = conn.send_request(API_LIST_OFFSETS, 9, body, flexible_header=True)
    r = conn.recv_response(corr, flexible_header=True)
    r.i32()  # throttle

    def partition_entry(rr: Reader) -> dict:
        p = {"partition": rr.i32(), "error_code": rr.i16(), "timestamp": rr.i64(), "offset": rr.i64(),
             "leader_epoch": rr.i32()}
        rr.tagged_fields()
        return p

    def topic_entry(rr: Reader):
        name = rr.compact_string()
        parts = rr.compact_array(partition_entry)
        rr.tagged_fields()
        return name, parts

    topics = r.compact_array(topic_entry)
    (name, parts), = topics
    assert name == topic and len(parts) == 1, f"ListOffsets answered for {topics!r}"
    return parts[0]


def list_offset(host: str, port: int, topic: str, partition: int, timestamp: int) -> int:
    """The offset for `timestamp` (e.g. -2, -4, -5); asserts error_code 0."""
    with RawConnection(host, port) as c:
        p = list_offsets_v9(c, topic, partition, timestamp)
    assert p["error_code"] == NONE, f"ListOffsets {topic}-{partition} ts={timestamp}: {p}"
    return p["offset"]


def fetch_v4(conn: RawConnection, wants: list, max_wait_ms: int = 500, min_bytes: int = 1,
             max_bytes: int = 50 * 1024 * 1024, partition_max_bytes: int = 1024 * 1024) -> dict:
    """Fetch v4 for [(topic, partition, offset)]; returns
    {(topic, partition): {error_code, high_watermark, log_start_offset?, records}}."""
    by_topic: dict = {}
    for t, p, off in wants:
        by_topic.setdefault(t, []).append(i32(p) + i64(off) + i32(partition_max_bytes))
    body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0)
            + array([string(t) + array(ps) for t, ps in by_topic.items()]))
    corr = conn.send_request(API_FETCH, 4, body)
    r = conn.recv_response(corr)
    r.i32()  # throttle
    out = {}
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            p = {"partition": r.i32(), "error_code": r.i16(), "high_watermark": r.i64(),
                 "last_stable_offset": r.i64()}
            p["aborted"] = r.array(lambda rr: (rr.i64(), rr.i64()))
            p["records"] = r.kbytes() or b""
            out[(name, p["partition"])] = p
    return out


def batch_offsets(records: bytes) -> list:
    """(base_offset, last_offset) of each complete record batch in a Fetch `records` blob."""
    out = []
    pos = 0
    while pos + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        if pos + 12 + length > len(records):
            break
        last_delta = struct.unpack_from(">i", records, pos + 23)[0]
        out.append((base, base + last_delta))
        pos += 12 + length
    return out
