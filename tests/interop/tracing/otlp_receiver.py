"""A small OTLP/gRPC trace receiver on the official opentelemetry-proto stubs.

Prints one JSON line per line of work on stdout:
  {"event": "listening", "port": N}
  {"event": "span", "trace_id", "span_id", "parent_span_id" (hex, "" when none), "name",
   "kind" (SERVER, CLIENT...), "service", "attributes": {...}, "start_ns", "end_ns",
   "status" (UNSET, OK, ERROR)}
Stops on SIGTERM/SIGINT or when stdin closes.

  otlp_receiver.py [--port 0] [--host 127.0.0.1] [--quiet]

--quiet accepts every export unread and prints no span: for benchmarks, where reading
and printing each span would take the load generator's core.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _serve import emit, serve  # noqa: E402  (puts pydeps on sys.path)

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402

QUIET = "--quiet" in sys.argv
if QUIET:
    sys.argv.remove("--quiet")


def value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind)


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        for rs in request.resource_spans:
            resource = {a.key: value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    emit(
                        {
                            "event": "span",
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": trace_pb2.Span.SpanKind.Name(span.kind).replace("SPAN_KIND_", ""),
                            "service": resource.get("service.name"),
                            "scope": ss.scope.name,
                            "attributes": {a.key: value(a.value) for a in span.attributes},
                            "start_ns": span.start_time_unix_nano,
                            "end_ns": span.end_time_unix_nano,
                            "status": trace_pb2.Status.StatusCode.Name(span.status.code).replace("STATUS_CODE_", ""),
                        }
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


def add_quiet(server):
    """Export accepted as raw bytes, never parsed: the least a receiver can cost."""
    import grpc

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        # No (de)serializers: the request stays bytes; b"" is an empty response.
        {"Export": grpc.unary_unary_rpc_method_handler(lambda request, context: b"")},
    )
    server.add_generic_rpc_handlers((handler,))


def main():
    if QUIET:
        return serve("otlp_receiver", __doc__, add_quiet)
    return serve("otlp_receiver", __doc__, lambda server: trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(), server))


if __name__ == "__main__":
    sys.exit(main())
