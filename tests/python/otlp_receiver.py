"""A minimal OTLP trace receiver for the tests: a separate process serving OTLP/HTTP
(POST /v1/traces, protobuf, optionally gzip) and OTLP/gRPC (TraceService/Export).

Every span of every export request is decoded with opentelemetry-proto and appended to the
output file as one JSON object per line:

    {"transport": "http"|"grpc", "service": str, "trace_id": hex, "span_id": hex,
     "parent_span_id": hex ("" for a root), "name": str, "kind": int,
     "attributes": {key: value}, "status": int, "start": ns, "end": ns}

Usage: python otlp_receiver.py --http-port N --grpc-port M --out FILE [--host 127.0.0.1]
It prints "ready" on stdout once both ports listen, and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

_lock = threading.Lock()
_out = None


def _value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def record(request: trace_service_pb2.ExportTraceServiceRequest, transport: str) -> int:
    lines = []
    for rs in request.resource_spans:
        res = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                lines.append(json.dumps({
                    "transport": transport,
                    "service": res.get("service.name"),
                    "resource": res,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": s.kind,
                    "attributes": {kv.key: _value(kv.value) for kv in s.attributes},
                    "status": s.status.code,
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                }))
    with _lock:
        for line in lines:
            _out.write(line + "\n")
        _out.flush()
    return len(lines)


class HttpHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if not self.headers.get("Content-Type", "").startswith("application/x-protobuf"):
            self.send_error(415, "expected application/x-protobuf")
            return
        record(trace_service_pb2.ExportTraceServiceRequest.FromString(body), "http")
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, fmt, *args):
        sys.stderr.write("http: " + (fmt % args) + "\n")


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        record(request, "grpc")
        return trace_service_pb2.ExportTraceServiceResponse()


def main() -> None:
    global _out
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    _out = open(args.out, "a", encoding="utf-8")

    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), grpc_server)
    if grpc_server.add_insecure_port(f"{args.host}:{args.grpc_port}") == 0:
        sys.exit(f"cannot listen on {args.host}:{args.grpc_port} (gRPC)")
    grpc_server.start()
    http_server = ThreadingHTTPServer((args.host, args.http_port), HttpHandler)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    http_server.shutdown()
    grpc_server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
