"""A network partition of the active controller of three combined nodes, on loopback.

Every node's controller listener is reached through a TCP proxy of its own: the voters in
`controller.quorum.voters` name the proxies' addresses (127.0.0.2-4, same ports), the nodes bind
127.0.0.1. Cutting a proxy drops every connection into that node's quorum listener and refuses
new ones, so no voter can fetch from it and no broker can heartbeat to it.

Cut off the active controller: a topic created on it right after the cut is never created (it
can append but not commit), the other two elect a new controller and keep committing, and once
healed the old controller follows the new one with exactly the majority's metadata.
"""

import socket
import threading
import time

import pytest

import kafka_helpers as kh
from conftest import free_port
from test_cluster import Node, active_controller, create, live_brokers, stop_all, voters_of
from test_quorum import describe_quorum


class Proxy:
    """Forwards connections on (host, port) to 127.0.0.1:port until cut."""

    def __init__(self, host: str, port: int):
        self.target = ("127.0.0.1", port)
        self.server = socket.create_server((host, port))
        self.lock = threading.Lock()
        self.conns: list = []
        self.is_cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                if self.is_cut:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.is_cut = True
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns.clear()

    def heal(self):
        with self.lock:
            self.is_cut = False

    def close(self):
        self.cut()
        self.server.close()


@pytest.fixture
def proxied_cluster(shale_bin, tmp_path):
    ports = [free_port() for _ in range(3)]
    hosts = [f"127.0.0.{i + 2}" for i in range(3)]
    proxies = [Proxy(h, p) for h, p in zip(hosts, ports)]
    voters = voters_of(ports, hosts)
    nodes = [Node(shale_bin, tmp_path, i + 1, free_port(), ports[i], voters) for i in range(3)]
    for n in nodes:
        n.start()
    kh.wait_until(lambda: live_brokers(nodes[0]) == {1, 2, 3}, 30, what="three unfenced brokers")
    yield nodes, proxies
    kh.close_all_clients()
    stop_all(nodes)
    for p in proxies:
        p.close()
    for n in nodes:
        print(f"--- node {n.node_id} log tail ---\n" + "\n".join(n.log.read_text().splitlines()[-30:]))


def topics_on(node: Node) -> set:
    return set(kh.raw_metadata("127.0.0.1", node.port)["topics"])


def test_a_cut_off_controller_commits_nothing_and_rejoins_the_majority(proxied_cluster):
    nodes, proxies = proxied_cluster
    create(nodes[0], "before", 1)
    old = kh.wait_until(lambda: active_controller(nodes), 10, what="a controller")
    cut_off = nodes[old - 1]
    majority = [n for n in nodes if n is not cut_off]

    proxies[old - 1].cut()
    cut_at = time.monotonic()
    # Straight to the cut-off controller's broker, raw (no client retries): it still leads, so it
    # handles the request itself; it can append the records but never commit them.
    answer = {}

    def minority_write():
        with kh.RawConnection("127.0.0.1", cut_off.port, timeout=30) as conn:
            answer.update(kh.create_topics_v2(conn, [("minority-write", 1, 1, None)]))

    writer = threading.Thread(target=minority_write)
    writer.start()

    def new_controller():
        answers = [describe_quorum(n.controller_port) for n in majority]
        return next((a[0] for a in answers if a is not None and a[0] != old), None)

    new = kh.wait_until(new_controller, 30, what="a controller elected by the majority")
    print(f"\nnode {old} cut off; node {new} leads {time.monotonic() - cut_at:.2f} s after the cut")
    create(majority[0], "majority-write", 1)
    writer.join(timeout=30)
    print(f"create on the cut-off controller: {answer}")
    assert answer["minority-write"][0] != 0, answer

    proxies[old - 1].heal()
    healed = time.monotonic()
    kh.wait_until(lambda: "majority-write" in topics_on(cut_off), 30,
                  what="the healed node following the new controller")
    print(f"healed node caught up {time.monotonic() - healed:.2f} s after the heal")
    for n in nodes:
        names = topics_on(n)
        assert {"before", "majority-write"} <= names and "minority-write" not in names, \
            (n.node_id, names)
    kh.wait_until(lambda: live_brokers(majority[0]) == {1, 2, 3}, 30, what="every broker unfenced")
