#!/usr/bin/env python3
"""WebSocket client (the `websockets` library) for Strait's interop tests, against
backend.py's /ws echo (directly or through a proxy). Prints ONE JSON summary line:

    python3 ws_client.py --url ws://HOST:PORT/ws [--host HEADER] [--messages 20]

{"hello": {...backend's hello: name, path, headers...}, "sent": N, "echoed": N,
 "mismatches": 0, "text_sent", "binary_sent", "bytes_sent", "bytes_echoed",
 "close_code": 1000, "error": null}

Sends --messages text messages and, for each size of 0, 1, 125, 126, 65535, 65536 and
1 MiB, one binary message of that size; each echo must equal what was sent, in order
(one message in flight at a time). Exit status 0 when the harness ran (failures are in the
summary), 2 on bad usage.
"""

import argparse
import json
import os
import sys

from _common import emit, pattern_slice

from websockets.sync.client import connect  # noqa: E402

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--host", help="Host header to send (default: from the URL)")
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()

    summary = {
        "hello": None,
        "sent": 0,
        "echoed": 0,
        "mismatches": 0,
        "text_sent": 0,
        "binary_sent": 0,
        "bytes_sent": 0,
        "bytes_echoed": 0,
        "close_code": None,
        "error": None,
    }
    extra = {"Host": args.host} if args.host else None
    try:
        with connect(
            args.url,
            open_timeout=args.timeout,
            close_timeout=args.timeout,
            max_size=4 << 20,
            additional_headers=extra,
            compression=None,
        ) as ws:
            summary["hello"] = json.loads(ws.recv(timeout=args.timeout))
            messages = ["msg-%d %s" % (i, os.urandom(4).hex()) for i in range(args.messages)]
            messages += [pattern_slice(1000 * i, n) for i, n in enumerate(SIZES)]
            for m in messages:
                ws.send(m)
                summary["sent"] += 1
                summary["bytes_sent"] += len(m)
                summary["text_sent" if isinstance(m, str) else "binary_sent"] += 1
                back = ws.recv(timeout=args.timeout)
                summary["echoed"] += 1
                summary["bytes_echoed"] += len(back)
                if back != m:
                    summary["mismatches"] += 1
            ws.close()
            summary["close_code"] = ws.close_code
    except Exception as e:  # noqa: BLE001 - reported, the test asserts on it
        summary["error"] = "%s: %s" % (type(e).__name__, e)
    emit(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
