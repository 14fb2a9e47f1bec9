"""An OTLP/HTTP receiver for `cargo xtask interop`: the collector end of Compactor's OTLP sink.

Usage: python receiver.py PORT

It serves on 127.0.0.1:PORT, with the standard library's HTTP server:

- `POST /v1/traces` and `POST /v1/metrics` take protobuf export requests (OTLP/HTTP), decode
  them with the OpenTelemetry project's own message definitions (the `opentelemetry-proto`
  package), and keep them, together with the request's headers;
- `GET /received` answers every request kept so far as JSON, in arrival order:
  `{"requests": [{"signal": "traces"|"metrics", "headers": {...}, "body": {...}}]}`, where `body`
  is the decoded message in protobuf's JSON mapping (field names as in the .proto files, 64-bit
  integers as strings, ids as base64);
- `POST /reset` forgets them; `GET /health` answers 200 once it serves.

A body that does not decode is answered 400 and kept as `{"signal": ..., "error": ...}`, so the
test sees it.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SIGNALS = {
    "/v1/traces": ("traces", ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": ("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}

LOCK = threading.Lock()
RECEIVED = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, b"ok", "text/plain")
        elif self.path == "/received":
            with LOCK:
                body = json.dumps({"requests": RECEIVED}).encode()
            self.answer(200, body, "application/json")
        else:
            self.answer(404, b"not found", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if self.path == "/reset":
            with LOCK:
                RECEIVED.clear()
            self.answer(200, b"", "text/plain")
            return
        if self.path not in SIGNALS:
            self.answer(404, b"not found", "text/plain")
            return
        signal, request_type, response_type = SIGNALS[self.path]
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            if headers.get("content-type") != "application/x-protobuf":
                raise ValueError("content-type is %r" % headers.get("content-type"))
            request = request_type()
            request.ParseFromString(data)
            entry = {
                "signal": signal,
                "headers": headers,
                "body": MessageToDict(request, preserving_proto_field_name=True),
            }
        except Exception as err:  # noqa: BLE001 - any decoding failure is reported to the test
            with LOCK:
                RECEIVED.append({"signal": signal, "headers": headers, "error": str(err)})
            self.answer(400, str(err).encode(), "text/plain")
            return
        with LOCK:
            RECEIVED.append(entry)
        self.answer(200, response_type().SerializeToString(), "application/x-protobuf")

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        sys.stderr.write("otlp receiver: " + (format % args) + "\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: receiver.py PORT")
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
