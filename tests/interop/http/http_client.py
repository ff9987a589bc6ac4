#!/usr/bin/env python3
"""Concurrent HTTP client (httpx) for Strait's interop tests: --count requests to --url,
--concurrency at a time over ONE connection (HTTP/2 prior knowledge with --h2, else HTTP/1.1
keep-alive connections), each request carrying `x-seq: i` and a body of --body-bytes
pattern bytes when given. Prints ONE JSON summary line:

    python3 http_client.py --url http://HOST:PORT/path [--h2] [--count 100] [--concurrency 20]
        [--method GET] [--body-bytes 0] [--header k:v ...]

{"statuses": {"200": N}, "http_versions": {"HTTP/2": N}, "backends": {NAME: N},
 "backend_versions": {"1.1": N} (from the echo's http_version), "seq_echo_ok": N (echo
 bodies whose x-seq header is the request's), "body_ok": N (echoed body length/sha as sent),
 "errors": {ExceptionName: N}, "error_samples": {...}}
"""

import argparse
import asyncio
import hashlib
import json
import sys
from collections import Counter

from _common import emit, pattern_slice

import httpx  # noqa: E402


async def run(args):
    headers = dict(h.split(":", 1) for h in args.header)
    body = pattern_slice(0, args.body_bytes) if args.body_bytes else None
    digest = hashlib.sha256(body or b"").hexdigest()
    out = {
        "statuses": Counter(),
        "http_versions": Counter(),
        "backends": Counter(),
        "backend_versions": Counter(),
        "seq_echo_ok": 0,
        "body_ok": 0,
        "errors": Counter(),
        "error_samples": {},
    }
    limits = httpx.Limits(max_connections=1 if args.h2 else args.concurrency, max_keepalive_connections=args.concurrency)
    sem = asyncio.Semaphore(args.concurrency)
    async with httpx.AsyncClient(http1=not args.h2, http2=args.h2, limits=limits, timeout=args.timeout) as client:

        async def one(i):
            async with sem:
                try:
                    r = await client.request(args.method, args.url, headers={**headers, "x-seq": str(i)}, content=body)
                except Exception as e:  # noqa: BLE001 - counted
                    name = type(e).__name__
                    out["errors"][name] += 1
                    out["error_samples"].setdefault(name, str(e))
                    return
                out["statuses"][str(r.status_code)] += 1
                out["http_versions"][r.http_version] += 1
                name = r.headers.get("x-backend-name")
                if name:
                    out["backends"][name] += 1
                try:
                    doc = r.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return
                if isinstance(doc, dict):
                    if doc.get("http_version"):
                        out["backend_versions"][doc["http_version"]] += 1
                    if [["x-seq", str(i)]] == [h for h in doc.get("headers", []) if h[0] == "x-seq"]:
                        out["seq_echo_ok"] += 1
                    if doc.get("body_bytes") == len(body or b"") and doc.get("body_sha256") == digest:
                        out["body_ok"] += 1

        await asyncio.gather(*(one(i) for i in range(args.count)))
    return {k: dict(v) if isinstance(v, Counter) else v for k, v in out.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--h2", action="store_true", help="HTTP/2 with prior knowledge")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body-bytes", type=int, default=0)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    emit(asyncio.run(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
