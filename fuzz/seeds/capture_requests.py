"""Regenerates client_requests.hex: whole request frames (header + body, no size prefix) that
real clients send, captured by a fake broker on 127.0.0.1 that answers only ApiVersions and
Metadata (v0/v1) and never answers anything else, so each client's first request of every kind
is recorded as it was sent.

Clients: librdkafka (confluent-kafka: producers of every codec, idempotent producer, assigned
consumer, admin client) and kafka-python (producer, admin client).
Run with a Python that has confluent-kafka and kafka-python:  python capture_requests.py
"""
import socket
import struct
import threading
import time

# Ranges advertised to the clients: what Shale serves (requests are never answered, so the
# clients pick their newest version).
APIS = {0: (3, 12), 1: (0, 1), 2: (0, 9), 3: (0, 1), 8: (2, 9), 9: (1, 9), 10: (0, 6),
        11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 5), 16: (0, 5), 17: (0, 1),
        18: (0, 3), 19: (2, 7), 20: (1, 6), 21: (0, 2), 22: (0, 5), 23: (2, 4), 32: (1, 4),
        33: (0, 2), 35: (1, 4), 37: (0, 3), 42: (0, 2), 44: (0, 1), 47: (0, 0), 60: (0, 1),
        61: (0, 0), 75: (0, 0)}


def s16(s):
    b = s.encode()
    return struct.pack('>h', len(b)) + b


def read_exact(c, n):
    b = b''
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b


def api_versions(ver):
    if ver >= 3:
        body = struct.pack('>h', 0) + bytes([len(APIS) + 1])
        for k, (lo, hi) in APIS.items():
            body += struct.pack('>hhh', k, lo, hi) + b'\x00'
        return body + struct.pack('>i', 0) + b'\x00'
    body = struct.pack('>hi', 0, len(APIS))
    for k, (lo, hi) in APIS.items():
        body += struct.pack('>hhh', k, lo, hi)
    return body + (struct.pack('>i', 0) if ver >= 1 else b'')


def metadata(ver, port):
    body = struct.pack('>ii', 1, 1) + s16('127.0.0.1') + struct.pack('>i', port)
    if ver >= 1:
        body += struct.pack('>hi', -1, 1)
    body += struct.pack('>ih', 1, 0) + s16('fx') + (b'\x00' if ver >= 1 else b'')
    return body + struct.pack('>ihii', 1, 0, 0, 1) + struct.pack('>iiii', 1, 1, 1, 1)


class FakeBroker:
    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(('127.0.0.1', 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.frames = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, conn):
        try:
            while True:
                req = read_exact(conn, struct.unpack('>i', read_exact(conn, 4))[0])
                key, ver, corr = struct.unpack('>hhi', req[:8])
                with self.lock:
                    self.frames.append(req)
                    print('F', req.hex(), flush=True)
                if key not in (3, 18):
                    continue
                body = api_versions(ver) if key == 18 else metadata(ver, self.port)
                resp = struct.pack('>i', corr) + body
                conn.sendall(struct.pack('>i', len(resp)) + resp)
        except (EOFError, OSError):
            pass


def librdkafka(b):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
    boot = {'bootstrap.servers': f'127.0.0.1:{b.port}', 'broker.address.family': 'v4'}
    for codec in ['none', 'gzip', 'snappy', 'lz4', 'zstd']:
        p = Producer({**boot, 'acks': 0, 'linger.ms': 5, 'compression.type': codec,
                      'enable.idempotence': False})
        p.produce('fx', key=b'k', value=b'v' * 50, headers=[('h', b'1')], partition=0)
        p.flush(3)
    p = Producer({**boot, 'enable.idempotence': True})
    p.produce('fx', value=b'x', partition=0)
    p.poll(1.5)
    c = Consumer({**boot, 'group.id': 'g1', 'enable.auto.commit': False})
    c.assign([TopicPartition('fx', 0, 5)])
    c.poll(1.5)
    c.close()
    a = AdminClient(boot)
    calls = [
        lambda: a.create_topics([NewTopic('t1', 3, 1, config={'cleanup.policy': 'compact'})],
                                operation_timeout=1, request_timeout=1),
        lambda: a.delete_topics(['t1'], operation_timeout=1, request_timeout=1),
        lambda: a.create_partitions([NewPartitions('t1', 5)], request_timeout=1),
        lambda: a.describe_configs([ConfigResource('topic', 'fx')], request_timeout=1),
        lambda: a.list_consumer_groups(request_timeout=1),
        lambda: a.describe_consumer_groups(['g1'], request_timeout=1),
        lambda: a.delete_consumer_groups(['g1'], request_timeout=1),
        lambda: a.describe_cluster(request_timeout=1),
    ]
    for call in calls:
        try:
            futs = call()
            for f in (futs.values() if isinstance(futs, dict) else [futs]):
                try:
                    f.result(timeout=2)
                except Exception:
                    pass
        except Exception:
            pass


def kafka_python(b):
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic, ConfigResource, ConfigResourceType
    boot = f'127.0.0.1:{b.port}'
    try:
        p = KafkaProducer(bootstrap_servers=boot, acks=0, compression_type='gzip',
                          request_timeout_ms=1500, max_block_ms=2000)
        p.send('fx', key=b'k', value=b'v' * 40, partition=0)
        p.flush(timeout=2)
        p.close(timeout=1)
    except Exception:
        pass
    try:
        a = KafkaAdminClient(bootstrap_servers=boot, request_timeout_ms=1000)
        for call in [lambda: a.create_topics([NewTopic('t2', 2, 1)], timeout_ms=500),
                     lambda: a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, 'fx')]),
                     lambda: a.list_consumer_groups(),
                     lambda: a.delete_topics(['t2'], timeout_ms=500)]:
            try:
                call()
            except Exception:
                pass
        a.close()
    except Exception:
        pass


def phase(name):
    b = FakeBroker()
    if name == 'librdkafka':
        librdkafka(b)
    else:
        kafka_python(b)
    time.sleep(0.5)


def main():
    # Each client runs in a process of its own: librdkafka's admin client may crash when its
    # requests are never answered; the frames printed before that are kept.
    import subprocess
    import sys
    frames = []
    for name in ['librdkafka', 'kafka-python']:
        r = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True,
                           timeout=300)
        frames += [bytes.fromhex(l[2:]) for l in r.stdout.splitlines() if l.startswith('F ')]
    seen = {}
    for f in frames:
        key, ver = struct.unpack('>hh', f[:4])
        seen.setdefault((key, ver), [])
        if len(seen[(key, ver)]) < 3 and f not in seen[(key, ver)]:
            seen[(key, ver)].append(f)
    with open('client_requests.hex', 'w') as out:
        out.write('# Request frames captured from librdkafka 2.16 and kafka-python 3.0 by\n')
        out.write('# capture_requests.py; see fuzz/src/targets/captures.rs.\n')
        for (key, ver), fs in sorted(seen.items()):
            out.write(f'# api key {key} v{ver}\n')
            for f in fs:
                out.write(f.hex() + '\n')
    print(sorted((k, v, len(f)) for (k, v), f in seen.items()))


if __name__ == '__main__':
    import sys
    if len(sys.argv) > 1:
        phase(sys.argv[1])
    else:
        main()
