"""An OpenTelemetry SDK client and server (Python) for a connected trace through a proxy.

  otel_peers.py server --collector http://127.0.0.1:PORT [--port 0]
      An HTTP server that continues the caller's W3C context (the SDK's propagator), records
      a SERVER span per request, answers 200 with the trace id it saw. Prints
      {"event": "listening", "port": N}; stops on SIGTERM/SIGINT or stdin EOF.
  otel_peers.py client --collector http://127.0.0.1:PORT --url http://PROXY/path
      Records a CLIENT span, injects its context (traceparent) into one GET through the
      proxy, prints {"event": "called", "status", "trace_id", "span_id", "seen_trace_id"}.

Both export their spans with the SDK's OTLP/gRPC exporter to --collector.
"""

import argparse
import json
import os
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from _common import emit, wait_for_stop  # noqa: E402

from opentelemetry import propagate, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402


def tracer(name, collector):
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporter = OTLPSpanExporter(endpoint=collector, insecure=True)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, provider.get_tracer(name)


def serve(args):
    provider, tr = tracer("otel-server", args.collector)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            ctx = propagate.extract(dict(self.headers.items()))
            with tr.start_as_current_span("GET " + self.path, context=ctx, kind=trace.SpanKind.SERVER) as span:
                seen = format(span.get_span_context().trace_id, "032x")
                body = json.dumps({"trace_id": seen, "traceparent": self.headers.get("traceparent")}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    emit({"event": "listening", "port": httpd.server_address[1]})
    wait_for_stop()
    httpd.shutdown()
    provider.shutdown()
    return 0


def call(args):
    provider, tr = tracer("otel-client", args.collector)
    with tr.start_as_current_span("call", kind=trace.SpanKind.CLIENT) as span:
        headers = {}
        propagate.inject(headers)
        req = urllib.request.Request(args.url, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            status = resp.status
            seen = json.loads(resp.read())
        sc = span.get_span_context()
    provider.shutdown()
    emit(
        {
            "event": "called",
            "status": status,
            "trace_id": format(sc.trace_id, "032x"),
            "span_id": format(sc.span_id, "016x"),
            "seen_trace_id": seen["trace_id"],
            "seen_traceparent": seen["traceparent"],
        }
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["server", "client"])
    parser.add_argument("--collector", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--url")
    args = parser.parse_args()
    return serve(args) if args.mode == "server" else call(args)


if __name__ == "__main__":
    sys.exit(main())
