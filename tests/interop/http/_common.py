"""Shared plumbing for the HTTP/gRPC interop peers.

- puts `tests/interop/pydeps` (where `scripts/install-test-peers` installs the pinned Python
  packages) on `sys.path`, unless PYTHONPATH already names a directory holding them;
- `emit(obj)`: one JSON line on stdout (stdout carries JSON lines only; logs go to stderr);
- `stop_event(loop)` / `wait_for_stop()`: servers stop on SIGTERM/SIGINT or when stdin closes;
- the deterministic byte pattern used by the streamed download/upload endpoints.
"""

import json
import os
import signal
import struct
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
PYDEPS = os.path.normpath(os.path.join(HERE, "..", "pydeps"))
if os.path.isdir(PYDEPS) and PYDEPS not in sys.path:
    sys.path.insert(1, PYDEPS)


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def _watch_stdin(on_close):
    def run():
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except Exception:  # noqa: BLE001 - any failure means the harness is gone
            pass
        on_close("stdin-closed")

    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


def stop_event(loop):
    """An asyncio.Event set on SIGTERM/SIGINT or when stdin reaches EOF; `.reason` says which."""
    import asyncio

    event = asyncio.Event()
    event.reason = None

    def fire(reason):
        if event.reason is None:
            event.reason = reason
        event.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, fire, signal.Signals(sig).name)
    _watch_stdin(lambda reason: loop.call_soon_threadsafe(fire, reason))
    return event


def wait_for_stop():
    """Blocks the calling (main) thread until SIGTERM/SIGINT or stdin EOF; returns the reason."""
    done = threading.Event()
    reason = []

    def fire(why):
        if not reason:
            reason.append(why)
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: fire(signal.Signals(s).name))
    _watch_stdin(fire)
    while not done.wait(0.2):
        pass
    return reason[0]


# --- the byte pattern --------------------------------------------------------
# Byte `o` of a pattern stream: blocks of 65536 bytes; the first 8 bytes of block i are i as a
# big-endian u64, the others are ((o % 65536) * 31 + 7) % 251. Reordered, dropped or
# duplicated blocks and flipped bytes are all detected; the Rust tests implement the same.
BLOCK = 65536
_BASE = bytes(((k * 31 + 7) % 251) for k in range(BLOCK))


def pattern_block(i):
    return struct.pack(">Q", i) + _BASE[8:]


def pattern_slice(offset, length):
    out = bytearray()
    while length > 0:
        i, k = divmod(offset, BLOCK)
        take = min(BLOCK - k, length)
        out += pattern_block(i)[k : k + take]
        offset += take
        length -= take
    return bytes(out)
