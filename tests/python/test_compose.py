"""minio-compose/ (the single node with MinIO, and the three-node cluster) cannot be run on these
machines (no Docker engine), so it is checked as well as can be done without one: each compose
file against the compose-spec JSON schema, the references between services, the build context,
and the broker settings each passes (the real binary starts with the single node's and formats
each cluster node's directory with its properties)."""

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


# ---------------------------------------------------------------------------
# docker-compose.cluster.yml: three combined nodes, settings in cluster/node-N.properties
# ---------------------------------------------------------------------------
CLUSTER = REPO / "minio-compose" / "docker-compose.cluster.yml"


def read_properties(path: Path) -> dict:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_cluster_compose_file_matches_the_compose_spec_schema():
    exe = Path(sys.executable).with_name("check-jsonschema")
    res = subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(CLUSTER)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_cluster_nodes_agree_and_the_broker_accepts_their_settings(shale_bin, tmp_path):
    """Each service mounts its node's properties; the voters are the services on their
    controller port; every node's external listener is published; every node tiers into the
    one bucket the compose file creates on MinIO; and the real binary formats each node's
    directory with those settings (twice: the second start skips it)."""
    doc = YAML(typ="safe").load(CLUSTER.read_text())
    services = doc["services"]
    assert set(services) == {"minio", "create-bucket", "shale-1", "shale-2", "shale-3"}
    minio = services["minio"]["environment"]
    mb = " ".join(services["create-bucket"]["command"])
    voters, remote = set(), set()
    for n in (1, 2, 3):
        svc = services[f"shale-{n}"]
        assert svc["hostname"] == f"shale-{n}"
        mount, data = svc["volumes"]
        source, target = mount.split(":")[:2]
        assert target == "/etc/shale/server.properties"
        assert data.split(":")[0] in doc["volumes"]
        path = (CLUSTER.parent / source).resolve()
        props = read_properties(path)
        assert props["node.id"] == str(n)
        # Every node tiers into the bucket the compose file creates, with MinIO's credentials.
        assert props["remote.log.storage.system.enable"] == "true"
        assert props["rsm.config.s3.endpoint"] == "http://minio:9000"
        assert props["rsm.config.s3.access.key.id"] == minio["MINIO_ROOT_USER"]
        assert props["rsm.config.s3.secret.access.key"] == minio["MINIO_ROOT_PASSWORD"]
        assert f"local/{props['rsm.config.s3.bucket']}" in mb
        remote.add(tuple(sorted((k, v) for k, v in props.items() if k.startswith("rsm.config."))))
        voters.add(props["controller.quorum.voters"])
        for entry in props["controller.quorum.voters"].split(","):
            host, port = entry.split("@")[1].split(":")
            assert host in services and f"CONTROLLER://0.0.0.0:{port}" in props["listeners"]
        external = next(l for l in props["advertised.listeners"].split(",")
                        if l.startswith("EXTERNAL://"))
        port = external.rsplit(":", 1)[1]
        assert f"{port}:{port}" in svc["ports"], svc["ports"]
        command = svc["command"][0]
        cluster_id = command.split("--cluster-id ")[1].split()[0]
        args = [str(shale_bin), "format", "--ignore-formatted", "--cluster-id", cluster_id,
                "--config", str(path), "--override", f"log.dirs={tmp_path / f'node{n}'}"]
        first = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0 and "Formatted" in first.stdout, first.stdout + first.stderr
        again = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already formatted" in again.stdout, again.stderr
    assert len(voters) == 1, voters
    assert len(remote) == 1, "the nodes must share one remote store"
    build = services["shale-1"]["build"]
    assert (CLUSTER.parent / build["context"] / build["dockerfile"]).resolve().is_file()
