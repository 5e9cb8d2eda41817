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


def kafka4_quickstart(tmp_path, port, controller_port, extra="", name="server.properties"):
    """Kafka 4's quickstart server.properties: a combined node whose quorum is given by
    controller.quorum.bootstrap.servers (KIP-853), formatted with --standalone."""
    props = tmp_path / name
    props.write_text(
        "process.roles=broker,controller\nnode.id=1\n"
        f"controller.quorum.bootstrap.servers=localhost:{controller_port}\n"
        f"listeners=PLAINTEXT://localhost:{port},CONTROLLER://localhost:{controller_port}\n"
        f"advertised.listeners=PLAINTEXT://localhost:{port},CONTROLLER://localhost:{controller_port}\n"
        "controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n"
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n"
        f"log.dirs={tmp_path / 'data'}\nshale.metrics.address=\n"
        f"offsets.topic.replication.factor=1\n{extra}")
    return props


def test_kafka4_quickstart_format_standalone_then_serve(shale_bin, tmp_path, kcat_bin):
    from conftest import free_port
    port, controller_port = free_port(), free_port()
    props = kafka4_quickstart(tmp_path, port, controller_port)
    cluster_id = run(shale_bin, "random-uuid").stdout.strip()
    res = run(shale_bin, "format", "--standalone", "-t", cluster_id, "-c", props)
    assert res.returncode == 0, res.stderr
    # The dynamic quorum's bootstrap snapshot: header, KRaftVersion, the VotersRecord naming
    # this node's controller endpoint, footer (as kafka-storage.sh format --standalone writes).
    snapshot = tmp_path / "data" / "__cluster_metadata-0" / "00000000000000000000-0000000000.checkpoint"
    dump = run(shale_bin, "dump-log", "--print-data-log", snapshot).stdout
    assert dump.count("isControl: true") == 4, dump
    assert "CONTROLLER" in dump and "localhost" in dump, dump

    for attempt in range(2):  # a restart starts from what the first run wrote
        log = (tmp_path / f"run{attempt}.log").open("w")
        proc = subprocess.Popen([str(shale_bin), "-c", str(props)], stdout=log, stderr=subprocess.STDOUT)
        try:
            kh.wait_until(lambda: kh.raw_metadata("127.0.0.1", port)["cluster_id"] == cluster_id,
                          30, what="the broker serving")
            if attempt == 0:
                subprocess.run([kcat_bin, "-b", f"localhost:{port}", "-P", "-t", "qs"],
                               input=b"one\ntwo\n", check=True, timeout=30)
            out = subprocess.run([kcat_bin, "-b", f"localhost:{port}", "-C", "-t", "qs", "-e",
                                  "-o", "beginning", "-q"], capture_output=True, check=True,
                                 timeout=30).stdout
            assert out.split() == [b"one", b"two"]
        finally:
            proc.terminate()
            assert proc.wait(timeout=30) == 0


def test_dynamic_quorum_format_flags_follow_kafkas_rules(shale_bin, tmp_path):
    cluster_id = run(shale_bin, "random-uuid").stdout.strip()
    dir_id = run(shale_bin, "random-uuid").stdout.strip()

    def refused(props, *flags, why):
        res = run(shale_bin, "format", "-t", cluster_id, "-c", props, *flags)
        assert res.returncode != 0 and why in res.stderr, (flags, res.stderr)
        assert not (tmp_path / "data" / "meta.properties").exists()

    props = kafka4_quickstart(tmp_path, 19092, 19093)
    refused(props, "--standalone", "--no-initial-controllers", why="only one of")
    refused(props, "--no-initial-controllers", why="names no other controller")
    refused(props, "--initial-controllers", f"1@localhost:19093:{dir_id},2@h2:19093:{dir_id}",
            why="names no other controller")
    refused(props, "--initial-controllers", "1@localhost:19093", why="expected id@host:port")
    static = kafka4_quickstart(tmp_path, 19092, 19093, "controller.quorum.voters=1@localhost:19093\n",
                               name="static.properties")
    refused(static, "--standalone", why="controller.quorum.voters")
    broker_only = tmp_path / "broker.properties"
    broker_only.write_text("process.roles=broker\nnode.id=4\ncontroller.quorum.voters=1@localhost:19093\n"
                           "listeners=PLAINTEXT://localhost:19094\ncontroller.listener.names=CONTROLLER\n"
                           f"log.dirs={tmp_path / 'data'}\n")
    refused(broker_only, "--standalone", why="for controllers")

    # This node alone as --initial-controllers: its metadata dir takes the given directory id.
    res = run(shale_bin, "format", "-t", cluster_id, "-c", props,
              "--initial-controllers", f"1@localhost:19093:{dir_id}")
    assert res.returncode == 0, res.stderr
    assert f"directory.id={dir_id}" in (tmp_path / "data" / "meta.properties").read_text()
