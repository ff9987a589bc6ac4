"""Serving for the tracing receivers: a gRPC server on --host/--port with one servicer,
{"event": "listening", "port": N} on stdout, stopped by SIGTERM/SIGINT or stdin EOF."""

import argparse
import os
import sys
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from _common import emit, log, wait_for_stop  # noqa: E402,F401  (puts pydeps on sys.path)


def serve(name, doc, add_servicer):
    """Runs `add_servicer(server)` on a new gRPC server until told to stop; returns the exit code."""
    import grpc

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    add_servicer(server)
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    if port == 0:
        log("%s: cannot bind %s:%d" % (name, args.host, args.port))
        return 1
    server.start()
    emit({"event": "listening", "port": port})
    wait_for_stop()
    server.stop(grace=1).wait()
    return 0
