#!/usr/bin/env python3
"""Memory per idle HTTP/1.1 keep-alive connection held by a proxy (bench/run).

    idle_conns.py ADDR N PID [PID...] [--settle SECS]

Reads the summed VmRSS of PIDs (the proxy's processes), then opens N connections to ADDR
one after the other, sends one GET on each and reads its whole response (Content-Length
or chunked), and keeps every connection open and idle. After --settle seconds (default
1) it reads the summed VmRSS again, closes everything and prints one JSON line:
{"n","ok","errors","rss_before_kb","rss_after_kb","kib_per_conn","rss_half_kb",
"kib_per_conn_marginal"}. Requests are sent one at a time so the proxy needs a single
upstream connection: the delta is what N idle downstream connections cost.

kib_per_conn is the whole growth over N (the issue's measure, as a new user would see
it): it includes what the first requests fault in once (code pages, allocator pages).
kib_per_conn_marginal is the growth from N/2 to N idle connections (read after the same
settle at N/2) over N/2: what one more idle connection costs.
"""
import json
import socket
import sys
import time


def rss_kb(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before headers")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower()] = v.strip().lower()
    if b"content-length" in headers:
        need = int(headers[b"content-length"])
        while len(body) < need:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed in body")
            body += chunk
    elif headers.get(b"transfer-encoding") == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed in chunked body")
            body += chunk
    if headers.get(b"connection") == b"close":
        raise ConnectionError("proxy closed the keep-alive connection")
    return status


def main():
    args = sys.argv[1:]
    settle = 1.0
    if "--settle" in args:
        i = args.index("--settle")
        settle = float(args[i + 1])
        del args[i : i + 2]
    addr, n, pids = args[0], int(args[1]), [int(p) for p in args[2:]]
    host, port = addr.rsplit(":", 1)
    request = f"GET / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: strait-bench-idle\r\n\r\n".encode()

    time.sleep(settle)
    before = rss_kb(pids)
    socks, errors = [], 0
    half = None
    for i in range(n):
        if i == n // 2:
            time.sleep(settle)
            half = rss_kb(pids)
        s = socket.create_connection((host, int(port)), timeout=10)
        try:
            s.sendall(request)
            if read_response(s) != 200:
                errors += 1
        except (OSError, ValueError, IndexError):
            errors += 1
        socks.append(s)
    time.sleep(settle)
    after = rss_kb(pids)
    # Every connection must still be open (a proxy that closed idle ones would look cheap).
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                errors += 1
        except BlockingIOError:
            pass
        except OSError:
            errors += 1
    for s in socks:
        s.close()
    print(json.dumps({
        "n": n, "ok": n - errors, "errors": errors,
        "rss_before_kb": before, "rss_after_kb": after,
        "kib_per_conn": round((after - before) / n, 2),
        "rss_half_kb": half,
        "kib_per_conn_marginal": round((after - half) / (n - n // 2), 2) if half else None,
    }))


if __name__ == "__main__":
    main()
