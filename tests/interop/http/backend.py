#!/usr/bin/env python3
"""HTTP backend for Strait's interop tests: an ASGI app served by hypercorn on one cleartext
port speaking HTTP/1.1, h2c via `Upgrade: h2c`, and HTTP/2 with prior knowledge.

    python3 backend.py --port 0 --name NAME [--host 127.0.0.1] [--keep-alive 600]

stdout (JSON lines): {"event":"listening","port":P,"name":NAME,"pid":N} once the socket is
listening; {"event":"stopped","reason":...,"stats":{...}} on exit. Exits on SIGTERM/SIGINT or
when stdin closes. Every response carries `x-backend-name: NAME`.

Endpoints (any other path is the echo):
  *            echo: JSON {name, method, path, raw_path, query (pairs), http_version, scheme,
               headers (pairs, lowercase, in arrival order), client, body_bytes, body_sha256, body}
  /download    ?bytes=N[&chunk=K][&chunked=1]: N bytes of the pattern (see _common.py),
               streamed in K-byte pieces (default 65536), Content-Length unless chunked=1;
               HEAD answers the same headers with no body
  /upload      POST/PUT: hashes the streamed body; JSON {name, bytes, sha256, pattern_ok,
               chunks, content_length, transfer_encoding, http_version}
  /slow        ?ms=N: waits N ms, then the echo
  /status/N    status N, body "status N from NAME\n" (none for 1xx/204/304)
  /respond-headers  ?k=v...: the echo, plus every query pair as a response header
  /trailers    body in two pieces, then trailers x-trailer-one: one, x-trailer-two: two
               (HTTP/2 requests carrying `te: trailers` only; `x-trailers-sent` says 1 or 0)
  /ws          WebSocket: first sends a JSON hello {name, path, query, headers, http_version},
               then echoes every message (text as text, binary as binary)
"""

import argparse
import asyncio
import hashlib
import json
import os
import socket
import sys
from urllib.parse import parse_qsl

from _common import BLOCK, emit, log, pattern_block, pattern_slice, stop_event

from hypercorn.asyncio import serve  # noqa: E402 (after _common sets sys.path)
from hypercorn.config import Config  # noqa: E402

NAME = "backend"
STATS = {"requests": 0, "by_version": {}, "by_endpoint": {}, "websockets": 0}


def _count(version, endpoint):
    STATS["requests"] += 1
    STATS["by_version"][version] = STATS["by_version"].get(version, 0) + 1
    STATS["by_endpoint"][endpoint] = STATS["by_endpoint"].get(endpoint, 0) + 1


def _text(b):
    return b.decode("latin-1")


def _headers(scope):
    return [[_text(k).lower(), _text(v)] for k, v in scope["headers"]]


def _query(scope):
    return parse_qsl(_text(scope["query_string"]), keep_blank_values=True)


async def _read_body(receive, on_chunk=None):
    total = 0
    digest = hashlib.sha256()
    head = bytearray()
    chunks = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected")
        body = message.get("body", b"")
        if body:
            chunks += 1
            if on_chunk is not None:
                on_chunk(total, body)
            digest.update(body)
            if len(head) < 65536:
                head += body[: 65536 - len(head)]
            total += len(body)
        if not message.get("more_body", False):
            return total, digest.hexdigest(), bytes(head), chunks


def _echo_doc(scope, body_bytes, body_sha, head):
    return {
        "name": NAME,
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": _text(scope.get("raw_path") or b""),
        "query": [list(p) for p in _query(scope)],
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "headers": _headers(scope),
        "client": "%s:%s" % tuple(scope["client"]) if scope.get("client") else None,
        "body_bytes": body_bytes,
        "body_sha256": body_sha,
        "body": head.decode("utf-8", "replace"),
    }


async def _send_simple(send, status, body, headers=(), content_type=b"application/json"):
    hdrs = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-backend-name", NAME.encode()),
    ]
    hdrs.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _json(send, doc, status=200, headers=()):
    await _send_simple(send, status, json.dumps(doc, sort_keys=True).encode(), headers)


async def http_app(scope, receive, send):
    path = scope["path"]
    method = scope["method"]
    version = scope["http_version"]
    query = dict(_query(scope))

    if path == "/download":
        _count(version, "download")
        total = int(query.get("bytes", "0"))
        chunk = int(query.get("chunk", str(BLOCK)))
        chunked = query.get("chunked") == "1"
        await _read_body(receive)
        headers = [(b"content-type", b"application/octet-stream"), (b"x-backend-name", NAME.encode())]
        if not chunked:
            headers.append((b"content-length", str(total).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if method != "HEAD":
            sent = 0
            while sent < total:
                n = min(chunk, total - sent)
                if chunk == BLOCK and sent % BLOCK == 0 and n == BLOCK:
                    piece = pattern_block(sent // BLOCK)
                else:
                    piece = pattern_slice(sent, n)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                sent += n
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return

    if path == "/upload":
        _count(version, "upload")
        state = {"ok": True}

        def check(offset, body):
            if state["ok"] and body != pattern_slice(offset, len(body)):
                state["ok"] = False

        total, digest, _head, chunks = await _read_body(receive, check)
        hdrs = dict(_headers(scope))
        await _json(
            send,
            {
                "name": NAME,
                "bytes": total,
                "sha256": digest,
                "pattern_ok": state["ok"],
                "chunks": chunks,
                "content_length": hdrs.get("content-length"),
                "transfer_encoding": hdrs.get("transfer-encoding"),
                "http_version": version,
            },
        )
        return

    if path.startswith("/status/"):
        _count(version, "status")
        await _read_body(receive)
        status = int(path[len("/status/") :])
        body = b"" if status < 200 or status in (204, 304) else ("status %d from %s\n" % (status, NAME)).encode()
        if body:
            await _send_simple(send, status, body, content_type=b"text/plain")
        else:
            await send({"type": "http.response.start", "status": status, "headers": [(b"x-backend-name", NAME.encode())]})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return

    if path == "/trailers":
        _count(version, "trailers")
        await _read_body(receive)
        wants = any(k == b"te" and v == b"trailers" for k, v in scope["headers"])
        can = wants and "http.response.trailers" in scope.get("extensions", {})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"x-backend-name", NAME.encode()),
                    (b"x-trailers-sent", b"1" if can else b"0"),
                ],
                "trailers": can,
            }
        )
        await send({"type": "http.response.body", "body": b"body before ", "more_body": True})
        await send({"type": "http.response.body", "body": b"trailers\n", "more_body": False})
        if can:
            await send(
                {
                    "type": "http.response.trailers",
                    "headers": [(b"x-trailer-one", b"one"), (b"x-trailer-two", b"two")],
                    "more_trailers": False,
                }
            )
        return

    if path == "/slow":
        _count(version, "slow")
        await asyncio.sleep(int(query.get("ms", "1000")) / 1000.0)
        total, digest, head, _ = await _read_body(receive)
        await _json(send, _echo_doc(scope, total, digest, head))
        return

    if path == "/respond-headers":
        _count(version, "respond-headers")
        total, digest, head, _ = await _read_body(receive)
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in _query(scope)]
        await _json(send, _echo_doc(scope, total, digest, head), headers=extra)
        return

    _count(version, "echo")
    total, digest, head, _ = await _read_body(receive)
    await _json(send, _echo_doc(scope, total, digest, head))


async def ws_app(scope, receive, send):
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 1008})
        return
    STATS["websockets"] += 1
    await send({"type": "websocket.accept"})
    hello = {
        "name": NAME,
        "path": scope["path"],
        "query": [list(p) for p in _query(scope)],
        "headers": _headers(scope),
        "http_version": scope.get("http_version"),
    }
    await send({"type": "websocket.send", "text": json.dumps(hello, sort_keys=True)})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "websocket":
        await ws_app(scope, receive, send)
    else:
        try:
            await http_app(scope, receive, send)
        except ConnectionResetError:
            pass


async def main_async(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    port = sock.getsockname()[1]

    config = Config()
    config.bind = ["fd://%d" % sock.fileno()]
    if args.certfile:
        # TLS, with client certificates required when a CA is given (mTLS).
        import ssl
        config.certfile, config.keyfile = args.certfile, args.keyfile
        if args.ca_certs:
            config.ca_certs = args.ca_certs
            config.verify_mode = ssl.CERT_REQUIRED
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    config.keep_alive_timeout = args.keep_alive
    config.graceful_timeout = 1.0
    config.h2_max_concurrent_streams = 256
    config.include_server_header = False

    stop = stop_event(asyncio.get_running_loop())
    emit({"event": "listening", "port": port, "host": args.host, "name": NAME, "pid": os.getpid()})
    await serve(app, config, shutdown_trigger=stop.wait)
    emit({"event": "stopped", "reason": stop.reason, "stats": STATS})


def main():
    global NAME
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="backend")
    parser.add_argument("--keep-alive", type=float, default=600.0, help="idle keep-alive timeout, seconds")
    parser.add_argument("--certfile", help="serve TLS with this certificate chain")
    parser.add_argument("--keyfile", help="the certificate's key")
    parser.add_argument("--ca-certs", help="require client certificates signed by this CA")
    args = parser.parse_args()
    NAME = args.name
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    log("backend %s: exit" % NAME)


if __name__ == "__main__":
    sys.exit(main())
