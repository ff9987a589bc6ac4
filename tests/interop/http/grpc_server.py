#!/usr/bin/env python3
"""gRPC server (grpcio) for Strait's interop tests: service strait.interop.Interop of
interop.proto, loaded at run time (grpc.protos_and_services, no generated files).

    python3 grpc_server.py --port 0 --name NAME [--host 127.0.0.1]

stdout: {"event":"listening","port":P,"name":NAME,"impl":"grpcio","pid":N}, then
{"event":"stopped","reason":...,"stats":{...}}. Exits on SIGTERM/SIGINT or when stdin closes.
"""

import argparse
import os
import sys
import threading
import time
from concurrent import futures

from _common import HERE, emit, log, wait_for_stop

import grpc  # noqa: E402

os.chdir(HERE)
protos, services = grpc.protos_and_services("interop.proto")

NAME = "grpcio"
STATS = {"calls": {}, "cancelled": 0}
LOCK = threading.Lock()

CODES = {c.value[0]: c for c in grpc.StatusCode}
TRAILER_BIN = bytes([0, 1, 2, 255])
ERROR_BIN = b"\x00\xffstrait"


def count(method):
    with LOCK:
        STATS["calls"][method] = STATS["calls"].get(method, 0) + 1


def meta_list(context):
    out = []
    for key, value in context.invocation_metadata():
        # The test's own keys, and trace context (which a tracing proxy adds).
        if not (key.startswith("x-") or key in ("traceparent", "tracestate", "sw8")):
            continue
        if isinstance(value, bytes):
            value = value.hex()
        out.append("%s=%s" % (key, value))
    return sorted(out)


def meta_get(context, key):
    for k, v in context.invocation_metadata():
        if k == key:
            return v
    return None


class Interop(services.InteropServicer):
    def Unary(self, request, context):
        count("Unary")
        initial = [("x-server-name", NAME)]
        echo = meta_get(context, "x-client-meta")
        if echo is not None:
            initial.append(("x-echo-client-meta", echo))
        context.send_initial_metadata(initial)
        context.set_trailing_metadata([("x-trailer", "unary-done"), ("x-trailer-bin", TRAILER_BIN)])
        return protos.Reply(
            text=request.text,
            seq=request.seq,
            server=NAME,
            metadata=meta_list(context),
            payload_bytes=len(request.payload),
            payload=request.payload,
        )

    def ServerStream(self, request, context):
        count("ServerStream")
        context.send_initial_metadata([("x-server-name", NAME)])
        context.set_trailing_metadata([("x-trailer", "stream-done")])
        for i in range(request.count):
            yield protos.Reply(text="%s-%d" % (request.text, i), seq=i, server=NAME)

    def ClientStream(self, request_iterator, context):
        count("ClientStream")
        texts = []
        total = 0
        for request in request_iterator:
            texts.append(request.text)
            total += len(request.payload)
        context.set_trailing_metadata([("x-trailer", "client-stream-done")])
        return protos.Reply(
            text=",".join(texts), count=len(texts), server=NAME, metadata=meta_list(context), payload_bytes=total
        )

    def Bidi(self, request_iterator, context):
        count("Bidi")
        context.send_initial_metadata([("x-server-name", NAME)])
        context.set_trailing_metadata([("x-trailer", "bidi-done")])
        for request in request_iterator:
            yield protos.Reply(text=request.text, seq=request.seq, server=NAME)

    def Fail(self, request, context):
        count("Fail")
        context.set_trailing_metadata([("x-error-reason", "failed-on-purpose"), ("x-error-bin", ERROR_BIN)])
        context.set_code(CODES[request.code])
        context.set_details(request.detail)
        return protos.Reply()

    def Slow(self, request, context):
        count("Slow")
        deadline = time.monotonic() + request.sleep_ms / 1000.0
        while time.monotonic() < deadline:
            if not context.is_active():
                with LOCK:
                    STATS["cancelled"] += 1
                return protos.Reply()
            time.sleep(0.01)
        return protos.Reply(text=request.text, seq=request.seq, server=NAME, metadata=meta_list(context))


def main():
    global NAME
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="grpcio")
    args = parser.parse_args()
    NAME = args.name

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 64 << 20)],
    )
    services.add_InteropServicer_to_server(Interop(), server)
    # The standard health service (grpc.health.v1.Health/Check), answered SERVING for
    # any service: the proxy's `type: grpc` health check asks it. Raw protobuf bytes,
    # so no extra package is needed: HealthCheckResponse{status: SERVING} is 08 01.
    health = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                lambda request, context: b"\x08\x01",
                request_deserializer=lambda b: b,
                response_serializer=lambda b: b,
            )
        },
    )
    server.add_generic_rpc_handlers((health,))
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    if port == 0:
        log("grpc_server: cannot bind %s:%d" % (args.host, args.port))
        return 1
    server.start()
    emit({"event": "listening", "port": port, "host": args.host, "name": NAME, "impl": "grpcio", "pid": os.getpid()})
    reason = wait_for_stop()
    server.stop(grace=1).wait()
    emit({"event": "stopped", "reason": reason, "stats": STATS})
    return 0


if __name__ == "__main__":
    sys.exit(main())
