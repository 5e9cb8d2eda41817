"""Pytest fixtures for the Shale end-to-end tests: a `Broker` process helper.

The broker binary comes from $SHALE_BIN (default: <repo>/target/release/shale).
Every test gets its own broker on free loopback ports with a data directory under
pytest's tmp_path; its stderr/stdout go to a log file that is attached to the
report of any failing test. Missing tools fail the test loudly; nothing is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

import kafka_helpers as kh

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerError(AssertionError):
    pass


class Broker:
    """One `shale` process. Ports and data dir are fixed at construction, so
    `restart()` brings the same broker back on the same address with its data."""

    def __init__(self, binary: Path, data_dir: Path, log_dir: Path, overrides: Optional[dict] = None,
                 name: str = "broker"):
        self.binary = binary
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.name = name
        self.host = "127.0.0.1"
        self.port = free_port()
        self.metrics_port = free_port()
        self.overrides = {
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "log.dirs": str(data_dir),
            "shale.metrics.address": f"{self.host}:{self.metrics_port}",
        }
        self.overrides.update(overrides or {})
        self.proc: Optional[subprocess.Popen] = None
        # Runs in the child before exec (e.g. resource.setrlimit for a lowered ulimit -n).
        self.preexec_fn = None
        # Environment changes for the broker process (a value of None removes the variable).
        self.env: dict = {}
        self.starts = 0
        self.log_paths: list[Path] = []
        self.expected_dead = False

    # -- addresses ---------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # -- lifecycle ---------------------------------------------------------
    def command(self) -> list:
        cmd = [str(self.binary)]
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    def start(self) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.starts += 1
        log_path = self.log_dir / f"{self.name}-run{self.starts}.log"
        self.log_paths.append(log_path)
        log = open(log_path, "wb")
        log.write(("$ " + " ".join(self.command()) + "\n").encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain log files
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.log_dir, env=env,
                                     preexec_fn=self.preexec_fn)
        log.close()
        self.expected_dead = False
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_DEADLINE_S):
        """Polls until an ApiVersions v0 request on the Kafka listener succeeds."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.expected_dead = True  # already reported here, not again at teardown
                raise BrokerError(f"shale exited with code {self.proc.returncode} during start-up\n"
                                  f"{self.log_tail()}")
            try:
                with kh.RawConnection(self.host, self.port, timeout=2.0) as c:
                    resp = kh.api_versions(c, 0)
                    if resp.error_code == 0 and resp.api_keys:
                        return
                    last = resp
            except (OSError, kh.ConnectionClosed, ValueError, AssertionError) as exc:
                last = exc
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.expected_dead = True
        raise BrokerError(f"shale not ready after {timeout}s (last: {last!r})\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_running(self):
        if not self.running():
            rc = None if self.proc is None else self.proc.returncode
            raise BrokerError(f"shale is not running (exit code {rc})\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_DEADLINE_S) -> int:
        """SIGTERM, wait, and require a clean exit (code 0)."""
        self.assert_running()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise BrokerError(f"shale did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        self.expected_dead = True
        if rc != 0:
            raise BrokerError(f"shale exited with code {rc} after SIGTERM (expected 0)\n{self.log_tail()}")
        return rc

    def kill(self):
        """SIGKILL: no chance to flush or write checkpoints."""
        self.assert_running()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.expected_dead = True

    def restart(self) -> "Broker":
        if self.running():
            self.stop()
        return self.start()

    # -- diagnostics -------------------------------------------------------
    def log_text(self) -> str:
        parts = []
        for p in self.log_paths:
            try:
                parts.append(f"----- {p.name} -----\n" + p.read_text(errors="replace"))
            except OSError as exc:
                parts.append(f"----- {p.name}: {exc}")
        return "\n".join(parts)

    def log_tail(self, lines: int = 150) -> str:
        text = self.log_text().splitlines()
        cut = text[-lines:]
        prefix = f"[... {len(text) - lines} earlier lines ...]\n" if len(text) > lines else ""
        return f"--- shale log ({self.name}) ---\n" + prefix + "\n".join(cut)

    def run_tool(self, *args, timeout: float = 60) -> subprocess.CompletedProcess:
        """Runs a `shale` subcommand (e.g. dump-log)."""
        return subprocess.run([str(self.binary), *map(str, args)], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def segment_codecs(self, topic: str, partition: int) -> set:
        """The compression codecs of every batch on disk for one partition, read with
        `shale dump-log` (Kafka's `compresscodec: NAME` field). Run it on a stopped broker."""
        codecs = set()
        for seg in sorted((self.data_dir / f"{topic}-{partition}").glob("*.log")):
            p = self.run_tool("dump-log", seg)
            assert p.returncode == 0, f"dump-log {seg}: {p.stderr.decode(errors='replace')}"
            codecs |= set(re.findall(r"compresscodec:\s*(\w+)", p.stdout.decode(errors="replace")))
        return codecs

    def teardown(self):
        """Called by the fixture: stops a live broker cleanly; complains if it died by itself."""
        if self.proc is None:
            return
        if self.running():
            self.stop()
        elif not self.expected_dead:
            raise BrokerError(f"shale died unexpectedly (exit code {self.proc.returncode})\n"
                              f"{self.log_tail()}")


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def shale_bin() -> Path:
    raw = os.environ.get("SHALE_BIN") or str(REPO / "target" / "release" / "shale")
    path = Path(raw)
    if not path.is_absolute():
        path = (REPO / path).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"shale binary not found or not executable at {path} "
                    f"(build it with `cargo build --release -p shale-broker` or set SHALE_BIN)",
                    pytrace=False)
    return path


@pytest.fixture
def broker_factory(shale_bin, tmp_path, request):
    """broker_factory(overrides=None, start=True, name=None) -> Broker."""
    brokers: list[Broker] = []
    request.node._shale_brokers = brokers

    def make(overrides: Optional[dict] = None, start: bool = True, name: Optional[str] = None) -> Broker:
        name = name or f"broker{len(brokers)}"
        data = tmp_path / f"{name}-data"
        data.mkdir()
        b = Broker(shale_bin, data, tmp_path, overrides, name=name)
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make
    kh.close_all_clients()
    errors = []
    for b in brokers:
        try:
            b.teardown()
        except BrokerError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("broker teardown failed:\n" + "\n\n".join(errors), pytrace=False)


@pytest.fixture
def broker(broker_factory) -> Broker:
    return broker_factory()


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool `{name}` not found on PATH (scripts/test.sh installs it)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def kcat_bin() -> str:
    return _require_tool("kcat")


@pytest.fixture(scope="session")
def rdk_dir() -> Path:
    """Directory holding librdkafka.so.1 from the confluent-kafka wheel, for LD_LIBRARY_PATH."""
    d = REPO / ".rdk"
    if not (d / "librdkafka.so.1").exists():
        pytest.fail(f"{d}/librdkafka.so.1 missing (scripts/test.sh creates it)", pytrace=False)
    return d


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in getattr(item, "_shale_brokers", []):
            rep.sections.append((f"shale log: {b.name} ({rep.when})", b.log_tail(200)))


# ---------------------------------------------------------------------------
# S3-compatible server (s3s-fs) for the tiered-storage tests
# ---------------------------------------------------------------------------
S3_ACCESS_KEY = "AKIDEXAMPLE"
S3_SECRET_KEY = "SECRETEXAMPLE"


class S3Server:
    """One s3s-fs process serving `root` (a bucket is a directory under it) on a fixed
    loopback port, so `stop()` + `start()` brings the same store back (outage tests)."""

    def __init__(self, binary: Path, root: Path, log_dir: Path):
        self.binary = binary
        self.root = root
        self.log_dir = log_dir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.log_paths: list[Path] = []

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "S3Server":
        assert not self.running(), "s3s-fs already running"
        self.starts += 1
        log_path = self.log_dir / f"s3s-fs-run{self.starts}.log"
        self.log_paths.append(log_path)
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "--host", self.host, "--port", str(self.port), "--access-key",
                 S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY, str(self.root)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"s3s-fs exited with {self.proc.returncode} at start:\n"
                                     + log_path.read_text(errors="replace")[-3000:])
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(f"s3s-fs not accepting connections on {self.port} "
                                         f"after {timeout}s")
                time.sleep(0.05)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM (SIGKILL after 10 s); afterwards the port refuses connections."""
        if not self.running():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=10)

    def make_bucket(self, name: str) -> str:
        os.makedirs(self.root / name, exist_ok=True)
        return name

    def objects(self, bucket: str, prefix: str = "") -> list:
        """Keys of the real objects in `bucket` under `prefix` (s3s-fs's `*.json`
        metadata sidecars and in-progress upload files excluded), sorted."""
        base = self.root / bucket
        out = []
        for p in base.rglob("*"):
            if not p.is_file():
                continue
            key = p.relative_to(base).as_posix()
            if key.endswith(".json") or "/." in "/" + key:
                continue
            if key.startswith(prefix):
                out.append(key)
        return sorted(out)

    def get_objects(self, bucket: str, keys: list) -> int:
        """GETs whole objects over one keep-alive HTTP connection with SigV4-signed requests
        (no SDK), for a raw-GET throughput figure; returns the bytes received."""
        import hashlib
        import hmac
        import http.client
        from datetime import datetime, timezone

        def hm(k: bytes, msg: str) -> bytes:
            return hmac.new(k, msg.encode(), hashlib.sha256).digest()

        empty = hashlib.sha256(b"").hexdigest()
        host = f"{self.host}:{self.port}"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        total = 0
        try:
            for key in keys:
                now = datetime.now(timezone.utc)
                amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
                path = f"/{bucket}/{key}"
                canonical = (f"GET\n{path}\n\nhost:{host}\nx-amz-content-sha256:{empty}\nx-amz-date:{amz}\n\n"
                             f"host;x-amz-content-sha256;x-amz-date\n{empty}")
                scope = f"{day}/us-east-1/s3/aws4_request"
                to_sign = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
                k = hm(hm(hm(hm(("AWS4" + S3_SECRET_KEY).encode(), day), "us-east-1"), "s3"), "aws4_request")
                sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
                conn.request("GET", path, headers={
                    "Host": host, "x-amz-date": amz, "x-amz-content-sha256": empty,
                    "Authorization": f"AWS4-HMAC-SHA256 Credential={S3_ACCESS_KEY}/{scope}, "
                                     f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"})
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200, f"GET {path}: {resp.status} {body[:300]!r}"
                total += len(body)
        finally:
            conn.close()
        return total

    def broker_overrides(self, bucket: str, prefix: Optional[str] = None) -> dict:
        """The broker settings that put its remote tier in `bucket` on this server."""
        o = {
            "rsm.config.storage.backend": "s3",
            "rsm.config.s3.bucket": bucket,
            "rsm.config.s3.endpoint": self.endpoint,
            "rsm.config.s3.region": "us-east-1",
            "rsm.config.s3.access.key.id": S3_ACCESS_KEY,
            "rsm.config.s3.secret.access.key": S3_SECRET_KEY,
            "rsm.config.s3.allow.http": "true",
        }
        if prefix is not None:
            o["rsm.config.prefix"] = prefix
        return o


@pytest.fixture(scope="session")
def s3s_fs_bin() -> Path:
    path = Path(os.environ.get("S3S_FS_BIN") or str(REPO / ".tools" / "bin" / "s3s-fs"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"s3s-fs not found at {path} (scripts/test.sh installs it: "
                    f"`cargo install s3s-fs@0.14.1 --features binary --locked`; or set S3S_FS_BIN)",
                    pytrace=False)
    return path


@pytest.fixture
def s3_server(s3s_fs_bin, tmp_path):
    """A running s3s-fs on a fresh directory; killed at teardown."""
    root = tmp_path / "s3-root"
    root.mkdir()
    server = S3Server(s3s_fs_bin, root, tmp_path)
    server.start()
    yield server
    server.kill()
