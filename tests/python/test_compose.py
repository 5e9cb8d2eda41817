"""minio-compose/ cannot be run on these machines (no Docker engine), so it is checked as well as
can be done without one: the compose file against the compose-spec JSON schema, the references
between services, the build context, and every broker setting it passes is one the broker knows."""

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "minio-compose" / "docker-compose.yml"


def load():
    return YAML(typ="safe").load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_spec_schema():
    exe = Path(sys.executable).with_name("check-jsonschema")
    res = subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_services_reference_each_other_consistently():
    doc = load()
    services = doc["services"]
    assert {"minio", "create-bucket", "shale"} <= set(services)
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert spec["condition"] in {"service_healthy", "service_completed_successfully",
                                         "service_started"}
    assert "healthcheck" in services["minio"], "create-bucket waits for minio to be healthy"
    for svc in services.values():
        for vol in svc.get("volumes", []):
            assert vol.split(":")[0] in doc["volumes"], vol
    build = services["shale"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).is_file()
    assert (REPO / ".dockerignore").read_text().splitlines()[0] == "target"


def overrides():
    cmd = load()["services"]["shale"]["command"]
    pairs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--override"]
    return dict(p.split("=", 1) for p in pairs)


def test_bucket_and_credentials_agree_between_services():
    doc = load()
    o = overrides()
    env = doc["services"]["minio"]["environment"]
    assert o["rsm.config.s3.access.key.id"] == env["MINIO_ROOT_USER"]
    assert o["rsm.config.s3.secret.access.key"] == env["MINIO_ROOT_PASSWORD"]
    mb = " ".join(doc["services"]["create-bucket"]["command"])
    assert f"local/{o['rsm.config.s3.bucket']}" in mb
    assert o["rsm.config.s3.endpoint"] == "http://minio:9000"


def test_every_broker_setting_is_known_to_the_broker(shale_bin, tmp_path):
    """Start the real binary with the compose settings (S3 swapped for the local remote tier,
    addresses for loopback ones) and require that no key is reported as unknown."""
    import socket
    local = dict(overrides())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    local.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "log.dirs": str(tmp_path / "data"),
        "shale.metrics.address": "",
        "rsm.config.storage.backend": "file",
    })
    args = [str(shale_bin)]
    for k, v in local.items():
        args += ["--override", f"{k}={v}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if " started" in line or "Error" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = "".join(lines)
    assert " started" in text, text
    assert "unknown configuration key" not in text, text
