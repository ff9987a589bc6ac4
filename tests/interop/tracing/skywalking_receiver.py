"""A small SkyWalking OAP stand-in: the v3 TraceSegmentReportService on the protocol
stubs that ship in apache-skywalking (1.2.0).

Prints one JSON line per line of work on stdout:
  {"event": "listening", "port": N}
  {"event": "segment", "trace_id", "segment_id", "service", "instance",
   "spans": [{"span_id", "parent_span_id", "type" (Entry, Exit), "layer", "operation",
              "peer", "component", "error", "start_ms", "end_ms", "tags": {...},
              "refs": [{"trace_id", "parent_segment_id", "parent_span_id",
                        "parent_service", "parent_instance", "parent_endpoint",
                        "address"}]}]}
Stops on SIGTERM/SIGINT or when stdin closes.

  skywalking_receiver.py [--port 0] [--host 127.0.0.1]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _serve import emit, serve  # noqa: E402  (puts pydeps on sys.path)

from skywalking.protocol.common import Common_pb2  # noqa: E402
from skywalking.protocol.language_agent import Tracing_pb2, Tracing_pb2_grpc  # noqa: E402


def span_json(span):
    return {
        "span_id": span.spanId,
        "parent_span_id": span.parentSpanId,
        "type": Tracing_pb2.SpanType.Name(span.spanType),
        "layer": Tracing_pb2.SpanLayer.Name(span.spanLayer),
        "operation": span.operationName,
        "peer": span.peer,
        "component": span.componentId,
        "error": span.isError,
        "start_ms": span.startTime,
        "end_ms": span.endTime,
        "tags": {t.key: t.value for t in span.tags},
        "refs": [
            {
                "trace_id": r.traceId,
                "parent_segment_id": r.parentTraceSegmentId,
                "parent_span_id": r.parentSpanId,
                "parent_service": r.parentService,
                "parent_instance": r.parentServiceInstance,
                "parent_endpoint": r.parentEndpoint,
                "address": r.networkAddressUsedAtPeer,
            }
            for r in span.refs
        ],
    }


def emit_segment(segment):
    emit(
        {
            "event": "segment",
            "trace_id": segment.traceId,
            "segment_id": segment.traceSegmentId,
            "service": segment.service,
            "instance": segment.serviceInstance,
            "spans": [span_json(s) for s in segment.spans],
        }
    )


class Receiver(Tracing_pb2_grpc.TraceSegmentReportServiceServicer):
    def collect(self, request_iterator, context):
        for segment in request_iterator:
            emit_segment(segment)
        return Common_pb2.Commands()

    def collectInSync(self, request, context):
        for segment in request.segments:
            emit_segment(segment)
        return Common_pb2.Commands()


def main():
    return serve(
        "skywalking_receiver",
        __doc__,
        lambda server: Tracing_pb2_grpc.add_TraceSegmentReportServiceServicer_to_server(Receiver(), server),
    )


if __name__ == "__main__":
    sys.exit(main())
