"""The storage commands: `shale random-uuid` and `shale format`, like kafka-storage.sh, and a
broker started with a server.properties file on a formatted directory."""

import re
import subprocess

import kafka_helpers as kh


def run(shale_bin, *args):
    return subprocess.run([str(shale_bin), *map(str, args)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_random_uuid_is_a_kafka_uuid(shale_bin):
    seen = set()
    for _ in range(5):
        res = run(shale_bin, "random-uuid")
        assert res.returncode == 0, res.stderr
        uid = res.stdout.strip()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", uid), uid
        assert not uid.startswith("-")
        seen.add(uid)
    assert len(seen) == 5


def test_format_then_serve_with_that_cluster_id(shale_bin, broker_factory, tmp_path):
    cluster_id = run(shale_bin, "random-uuid").stdout.strip()
    data = tmp_path / "formatted"
    props = tmp_path / "server.properties"
    props.write_text(f"# a Kafka-style file\nnode.id=3\nlog.dirs={data}\nnum.partitions=2\n")

    res = run(shale_bin, "format", "--cluster-id", cluster_id, "--config", props)
    assert res.returncode == 0, res.stderr
    meta = (data / "meta.properties").read_text()
    assert f"cluster.id={cluster_id}" in meta and "node.id=3" in meta and "version=1" in meta
    assert (data / "bootstrap.checkpoint").is_file()

    # A second format of the same directory is refused, as kafka-storage.sh refuses it.
    again = run(shale_bin, "format", "--cluster-id", cluster_id, "--config", props)
    assert again.returncode != 0

    broker = broker_factory(overrides={"log.dirs": str(data), "node.id": "3"})
    md = kh.ck_admin(broker.bootstrap).list_topics(timeout=10)
    assert md.cluster_id == cluster_id
    assert list(md.brokers) == [3]


def test_invalid_config_value_stops_startup_naming_the_key(shale_bin, tmp_path):
    res = run(shale_bin, "--override", f"log.dirs={tmp_path}", "--override", "num.partitions=lots")
    assert res.returncode != 0
    assert "num.partitions" in res.stderr


def test_unknown_key_is_logged_and_ignored(broker_factory):
    broker = broker_factory(overrides={"no.such.setting": "1"})
    kh.ck_admin(broker.bootstrap).list_topics(timeout=10)
    broker.stop()
    log = "".join(p.read_text() for p in broker.log_paths)
    assert "ignoring unknown configuration key" in log and "no.such.setting" in log, log
