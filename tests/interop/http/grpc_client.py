#!/usr/bin/env python3
"""gRPC client (grpcio) for Strait's interop tests. Runs the chosen cases against
strait.interop.Interop at --target and prints ONE JSON summary line (same shape as
grpc-client.js):

    python3 grpc_client.py --target HOST:PORT [--cases unary,server_stream,client_stream,bidi,fail,deadline,large]
        [--authority HOST] [--stream-count 100] [--client-count 50] [--bidi-count 20]
        [--fail-code 9] [--fail-detail TEXT] [--slow-ms 5000] [--deadline-ms 300]
        [--large-bytes 1048576] [--timeout-ms 10000] [--load-count 1000] [--load-concurrency 20]

{"client":"grpcio","target":...,"cases":{CASE:{"code":"OK","code_num":0,"details":"",
  "initial_metadata":{x-*},"trailing_metadata":{x-*}, ...case fields}}}

Metadata maps keep keys starting with "x-" only; "-bin" values are lowercase hex.
Case fields: unary/large: reply {text,seq,server,metadata,payload_bytes}, payload_equal;
server_stream: replies, seqs_in_order, texts_ok, servers; client_stream: reply, sent;
bidi: sent, received, in_order (each reply received before the next request was sent),
servers; deadline: elapsed_ms; load: --load-count unary calls, --load-concurrency at a
time (Slow(N ms) calls with --load-slow-ms N): ok, errors {CODE: n}, servers {NAME: n}. Exit status 0 when the harness ran (call failures are in the
summary), 2 on bad usage.
"""

import argparse
import os
import queue
import sys
import time

from _common import HERE, emit

import grpc  # noqa: E402

os.chdir(HERE)
protos, services = grpc.protos_and_services("interop.proto")

CLIENT_BIN = bytes([0xDE, 0xAD, 0xBE, 0xEF])


def meta_map(md):
    out = {}
    for key, value in md or ():
        if not key.startswith("x-"):
            continue
        if isinstance(value, bytes):
            value = value.hex()
        out[key] = value if key not in out else out[key] + "," + value
    return out


def reply_doc(r):
    return {
        "text": r.text,
        "seq": r.seq,
        "server": r.server,
        "metadata": list(r.metadata),
        "count": r.count,
        "payload_bytes": r.payload_bytes,
    }


def status_of(call_or_error):
    code = call_or_error.code()
    return {
        "code": code.name,
        "code_num": code.value[0],
        "details": call_or_error.details() or "",
    }


def error_doc(e):
    doc = status_of(e)
    try:
        doc["initial_metadata"] = meta_map(e.initial_metadata())
        doc["trailing_metadata"] = meta_map(e.trailing_metadata())
    except Exception:  # noqa: BLE001 - some local errors carry no metadata
        doc["initial_metadata"] = {}
        doc["trailing_metadata"] = {}
    return doc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True)
    parser.add_argument("--cases", default="unary,server_stream,client_stream,bidi,fail,deadline")
    parser.add_argument("--authority")
    parser.add_argument("--stream-count", type=int, default=100)
    parser.add_argument("--client-count", type=int, default=50)
    parser.add_argument("--bidi-count", type=int, default=20)
    parser.add_argument("--fail-code", type=int, default=9)
    parser.add_argument("--fail-detail", default="precondition failed: ünïcode & 100%")
    parser.add_argument("--slow-ms", type=int, default=5000)
    parser.add_argument("--deadline-ms", type=int, default=300)
    parser.add_argument("--large-bytes", type=int, default=1 << 20)
    parser.add_argument("--timeout-ms", type=int, default=10000)
    parser.add_argument("--load-count", type=int, default=1000)
    parser.add_argument("--load-concurrency", type=int, default=20)
    parser.add_argument("--load-slow-ms", type=int, default=0, help="load calls Slow(N ms) instead of Unary")
    parser.add_argument("--tls-ca", help="connect over TLS, verifying against this CA")
    parser.add_argument("--tls-cert", help="client certificate chain (mTLS)")
    parser.add_argument("--tls-key", help="client certificate key (mTLS)")
    parser.add_argument("--tls-name", default="localhost", help="the name the server certificate must carry")
    parser.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="more metadata on every call (a traceparent...)")
    args = parser.parse_args()

    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.enable_retries", 0)]
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    if args.tls_ca:
        # TLS channel credentials (mTLS with --tls-cert and --tls-key).
        read = lambda path: open(path, "rb").read() if path else None
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(args.tls_ca),
            private_key=read(args.tls_key),
            certificate_chain=read(args.tls_cert),
        )
        options.append(("grpc.ssl_target_name_override", args.tls_name))
        channel = grpc.secure_channel(args.target, creds, options=options)
    else:
        channel = grpc.insecure_channel(args.target, options=options)
    stub = services.InteropStub(channel)
    timeout = args.timeout_ms / 1000.0
    md = [("x-client-meta", "hello-from-grpcio"), ("x-client-bin", CLIENT_BIN)]
    md += [tuple(kv.split("=", 1)) for kv in args.metadata]
    cases = {}

    def run(name, fn):
        started = time.monotonic()
        try:
            doc = fn()
        except grpc.RpcError as e:
            doc = error_doc(e)
        doc["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        cases[name] = doc

    def unary(payload=b""):
        reply, call = stub.Unary.with_call(
            protos.Req(text="hello", seq=7, payload=payload), metadata=md, timeout=timeout
        )
        doc = status_of(call)
        doc.update(
            initial_metadata=meta_map(call.initial_metadata()),
            trailing_metadata=meta_map(call.trailing_metadata()),
            reply=reply_doc(reply),
            payload_equal=reply.payload == payload,
        )
        return doc

    def server_stream():
        call = stub.ServerStream(protos.Req(text="item", count=args.stream_count), metadata=md, timeout=timeout)
        seqs, texts_ok, servers = [], True, set()
        for r in call:
            texts_ok = texts_ok and r.text == "item-%d" % r.seq
            seqs.append(r.seq)
            servers.add(r.server)
        doc = status_of(call)
        doc.update(
            initial_metadata=meta_map(call.initial_metadata()),
            trailing_metadata=meta_map(call.trailing_metadata()),
            replies=len(seqs),
            seqs_in_order=seqs == list(range(len(seqs))),
            texts_ok=texts_ok,
            servers=sorted(servers),
        )
        return doc

    def client_stream():
        reqs = (protos.Req(text="c%d" % i, seq=i, payload=b"x" * 1000) for i in range(args.client_count))
        reply, call = stub.ClientStream.with_call(reqs, metadata=md, timeout=timeout)
        doc = status_of(call)
        doc.update(
            initial_metadata=meta_map(call.initial_metadata()),
            trailing_metadata=meta_map(call.trailing_metadata()),
            reply=reply_doc(reply),
            sent=args.client_count,
        )
        return doc

    def bidi():
        q = queue.Queue()

        def requests():
            while True:
                item = q.get()
                if item is None:
                    return
                yield item

        call = stub.Bidi(requests(), metadata=md, timeout=timeout)
        received, in_order, servers = 0, True, set()
        for i in range(args.bidi_count):
            q.put(protos.Req(text="ping-%d" % i, seq=i))
            r = next(call)  # the reply to request i, before request i+1 is sent
            received += 1
            in_order = in_order and r.seq == i and r.text == "ping-%d" % i
            servers.add(r.server)
        q.put(None)
        for _extra in call:
            received += 1
            in_order = False
        doc = status_of(call)
        doc.update(
            initial_metadata=meta_map(call.initial_metadata()),
            trailing_metadata=meta_map(call.trailing_metadata()),
            sent=args.bidi_count,
            received=received,
            in_order=in_order,
            servers=sorted(servers),
        )
        return doc

    def fail():
        reply, call = stub.Fail.with_call(
            protos.Req(code=args.fail_code, detail=args.fail_detail), metadata=md, timeout=timeout
        )
        doc = status_of(call)
        doc["reply"] = reply_doc(reply)
        return doc

    def deadline():
        reply, call = stub.Slow.with_call(
            protos.Req(text="slow", sleep_ms=args.slow_ms), metadata=md, timeout=args.deadline_ms / 1000.0
        )
        doc = status_of(call)
        doc["reply"] = reply_doc(reply)
        return doc

    def load():
        # A window of --load-concurrency unary calls in flight until --load-count are done.
        ok, errors, servers = 0, {}, {}
        pending = []
        sent = 0
        while sent < args.load_count or pending:
            while sent < args.load_count and len(pending) < args.load_concurrency:
                if args.load_slow_ms:
                    req = protos.Req(text="load", seq=sent, sleep_ms=args.load_slow_ms)
                    pending.append(stub.Slow.future(req, timeout=timeout))
                else:
                    pending.append(stub.Unary.future(protos.Req(text="load", seq=sent), timeout=timeout))
                sent += 1
            call = pending.pop(0)
            try:
                reply = call.result()
                ok += 1
                servers[reply.server] = servers.get(reply.server, 0) + 1
            except grpc.RpcError as e:
                errors[e.code().name] = errors.get(e.code().name, 0) + 1
        return {"code": "OK", "code_num": 0, "details": "", "sent": sent, "ok": ok, "errors": errors, "servers": servers}

    table = {
        "load": load,
        "unary": unary,
        "server_stream": server_stream,
        "client_stream": client_stream,
        "bidi": bidi,
        "fail": fail,
        "deadline": deadline,
        "large": lambda: unary(bytes(i % 251 for i in range(args.large_bytes))),
    }
    for name in [c for c in args.cases.split(",") if c]:
        if name not in table:
            print("unknown case %r (known: %s)" % (name, ",".join(table)), file=sys.stderr)
            return 2
        run(name, table[name])
    channel.close()
    emit({"client": "grpcio", "target": args.target, "cases": cases})
    return 0


if __name__ == "__main__":
    sys.exit(main())
