#!/usr/bin/env python3
"""Negative HTTP/2 (h2c, prior knowledge) cases written with the Python h2 library (h2 drives
the well-formed part of the connection; the violations are built with its hyperframe/hpack
layers and written raw). Reports exactly what the server answered, one JSON line per case.

    python3 h2neg.py --target HOST:PORT [--authority HOST] [--path /] [--wait-ms 3000] CASE...

Cases (RFC 9113 expectation in brackets):
  bad_preface               garbled client magic "PRI * HTTP/2.0\\r\\n\\r\\nXX\\r\\n\\r\\n"
                            [connection error PROTOCOL_ERROR, GOAWAY may be omitted (3.4)]
  preface_without_settings  valid magic, then PING instead of SETTINGS [PROTOCOL_ERROR (3.4)]
  invalid_pseudo_header     stream 1 carries an undefined pseudo-header ":bogus"
                            [malformed: stream error PROTOCOL_ERROR (8.1.1, 8.3)], then a valid
                            GET on stream 3 on the same connection
  missing_path              stream 1 lacks ":path" [as above]
  uppercase_header_name     stream 1 carries "X-Upper" [as above]
  headers_on_closed_stream  GET on stream 1 answered and closed, then HEADERS on stream 1 again
                            [connection error: STREAM_CLOSED (5.1) or PROTOCOL_ERROR (5.1.1)]
  data_on_closed_stream     GET on stream 1 answered and closed, then DATA on stream 1
                            [STREAM_CLOSED (5.1)]
  window_overflow_connection  WINDOW_UPDATE on stream 0 with increment 2^31-1 on top of 65535
                            [connection error FLOW_CONTROL_ERROR (6.9.1)]
  window_overflow_stream    POST on stream 1 without END_STREAM, WINDOW_UPDATE on stream 1 with
                            increment 2^31-1 [stream error FLOW_CONTROL_ERROR (6.9.1)], then a
                            valid GET on stream 3
  zero_window_increment     WINDOW_UPDATE on stream 0 with increment 0 [connection error
                            PROTOCOL_ERROR (6.9)]
  oversized_headers_frame   a HEADERS frame over the server's SETTINGS_MAX_FRAME_SIZE (16384
                            unless it announced more) [connection error FRAME_SIZE_ERROR (4.2)]
  ok                        a plain GET on stream 1 (control case)

Each line: {"case", "goaway": null | {"error_code": NAME, "error_code_num", "last_stream_id",
"debug"}, "resets": [{"stream", "error_code", "error_code_num"}], "responses": {"<stream>":
{"status", "body_bytes", "ended"}}, "closed": bool (EOF or reset within --wait-ms after the
case), "reset_by_peer": bool, "http1_status_line": str | null (when the server answered with
HTTP/1), "frames": [compact log of received frames], "followup_status": status of the
valid request on stream 3, when the case sends one (null if it got none)}
"""

import argparse
import socket
import sys
import time

from _common import emit

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.errors  # noqa: E402
import h2.events  # noqa: E402
from hpack import NeverIndexedHeaderTuple  # noqa: E402
from hyperframe.frame import (  # noqa: E402
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_WINDOW = 2**31 - 1


def code_name(num):
    try:
        return h2.errors.ErrorCodes(num).name
    except ValueError:
        return "UNKNOWN_%d" % num


class Probe:
    def __init__(self, target, authority, path, wait):
        host, port = target.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.authority = authority or target
        self.path = path
        self.wait = wait
        self.buf = b""
        self.closed = False
        self.reset_by_peer = False
        self.frames = []
        self.goaway = None
        self.resets = []
        self.responses = {}
        self.http1 = None
        self.server_max_frame_size = None
        self.synced = True  # whether h2's state machine still follows the connection
        cfg = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=cfg)

    # --- output ---------------------------------------------------------------
    def send_raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            self.reset_by_peer = True

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.send_raw(data)

    def request_headers(self, method="GET", path=None, extra=()):
        return [
            (b":method", method.encode()),
            (b":scheme", b"http"),
            (b":path", (path or self.path).encode()),
            (b":authority", self.authority.encode()),
        ] + list(extra)

    def start(self):
        self.conn.initiate_connection()
        self.flush()

    # --- input ----------------------------------------------------------------
    def pump(self, until, timeout=None):
        """Reads and handles input until `until()` is true, EOF, or the timeout."""
        deadline = time.monotonic() + (self.wait if timeout is None else timeout)
        while not until() and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return until()
            except ConnectionResetError:
                self.closed = True
                self.reset_by_peer = True
                break
            if not data:
                self.closed = True
                break
            self.observe(data)
            if self.synced:
                try:
                    for event in self.conn.receive_data(data):
                        self.on_event(event)
                    self.flush()
                except Exception as e:  # noqa: BLE001 - h2 lost track after a violation
                    self.synced = False
                    self.frames.append({"note": "h2 state machine stopped: %s" % type(e).__name__})
        return until()

    def observe(self, data):
        """Independent frame log of everything the server sent (hyperframe)."""
        self.buf += data
        if not self.frames and self.http1 is None and self.buf.startswith(b"HTTP/1."):
            self.http1 = self.buf.split(b"\r\n", 1)[0].decode("latin-1")
        if self.http1 is not None:
            return
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            frame.parse_body(memoryview(self.buf[9 : 9 + length]))
            self.buf = self.buf[9 + length :]
            entry = {"type": type(frame).__name__.replace("Frame", "").upper(), "stream": frame.stream_id}
            if frame.flags:
                entry["flags"] = sorted(frame.flags)
            if isinstance(frame, GoAwayFrame):
                entry["error_code"] = code_name(frame.error_code)
                self.goaway = {
                    "error_code": code_name(frame.error_code),
                    "error_code_num": frame.error_code,
                    "last_stream_id": frame.last_stream_id,
                    "debug": frame.additional_data.decode("utf-8", "replace"),
                }
            elif isinstance(frame, RstStreamFrame):
                entry["error_code"] = code_name(frame.error_code)
                self.resets.append(
                    {"stream": frame.stream_id, "error_code": code_name(frame.error_code), "error_code_num": frame.error_code}
                )
            elif isinstance(frame, DataFrame):
                entry["length"] = len(frame.data)
            elif isinstance(frame, WindowUpdateFrame):
                entry["increment"] = frame.window_increment
            elif isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                entry["settings"] = {str(k): v for k, v in frame.settings.items()}
                self.server_max_frame_size = frame.settings.get(SettingsFrame.MAX_FRAME_SIZE, 16384)
            self.frames.append(entry)

    def on_event(self, event):
        if isinstance(event, h2.events.ResponseReceived):
            status = dict(event.headers).get(b":status", b"").decode()
            self.responses.setdefault(event.stream_id, {"status": status, "body_bytes": 0, "ended": False})
        elif isinstance(event, h2.events.DataReceived):
            self.responses.setdefault(event.stream_id, {"status": None, "body_bytes": 0, "ended": False})
            self.responses[event.stream_id]["body_bytes"] += len(event.data)
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.responses.setdefault(event.stream_id, {"status": None, "body_bytes": 0, "ended": False})
            self.responses[event.stream_id]["ended"] = True

    # --- helpers ----------------------------------------------------------------
    def ended(self, stream):
        return lambda: self.responses.get(stream, {}).get("ended", False) or any(
            r["stream"] == stream for r in self.resets
        )

    def get(self, stream, path=None):
        self.conn.send_headers(stream, self.request_headers(path=path), end_stream=True)
        self.flush()

    def wait_close(self):
        self.pump(lambda: False)

    def report(self, case, followup=None):
        doc = {
            "case": case,
            "goaway": self.goaway,
            "resets": self.resets,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "closed": self.closed,
            "reset_by_peer": self.reset_by_peer,
            "http1_status_line": self.http1,
            "frames": self.frames[:40],
        }
        if followup is not None:
            doc["followup_status"] = self.responses.get(followup, {}).get("status")
        return doc


def raw_headers(probe, stream, headers, end_stream=True):
    """A HEADERS frame encoded with the connection's own HPACK encoder (keeps the server's
    dynamic table in step), written without h2's state checks."""
    block = probe.conn.encoder.encode(headers)
    frame = HeadersFrame(stream, data=block)
    frame.flags.add("END_HEADERS")
    if end_stream:
        frame.flags.add("END_STREAM")
    probe.send_raw(frame.serialize())


def case_bad_preface(p):
    p.send_raw(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
    p.wait_close()
    return p.report("bad_preface")


def case_preface_without_settings(p):
    p.synced = False
    p.send_raw(PREFACE + PingFrame(0, opaque_data=b"strait!!").serialize())
    p.wait_close()
    return p.report("preface_without_settings")


def malformed_then_valid(p, name, headers):
    p.start()
    p.conn.send_headers(1, headers, end_stream=True)
    p.flush()
    p.pump(p.ended(1))
    if not p.closed:
        try:
            p.get(3)
            p.pump(p.ended(3))
        except Exception as e:  # noqa: BLE001
            p.frames.append({"note": "could not send the follow-up: %s" % type(e).__name__})
    return p.report(name, followup=3)


def case_invalid_pseudo_header(p):
    return malformed_then_valid(p, "invalid_pseudo_header", p.request_headers(extra=[(b":bogus", b"1")]))


def case_missing_path(p):
    hdrs = [h for h in p.request_headers() if h[0] != b":path"]
    return malformed_then_valid(p, "missing_path", hdrs)


def case_uppercase_header_name(p):
    return malformed_then_valid(p, "uppercase_header_name", p.request_headers(extra=[(b"X-Upper", b"1")]))


def closed_stream(p, name, violate):
    p.start()
    p.get(1)
    p.pump(p.ended(1))
    violate()
    p.wait_close()
    return p.report(name)


def case_headers_on_closed_stream(p):
    return closed_stream(p, "headers_on_closed_stream", lambda: raw_headers(p, 1, p.request_headers()))


def case_data_on_closed_stream(p):
    def violate():
        frame = DataFrame(1, data=b"late data")
        frame.flags.add("END_STREAM")
        p.send_raw(frame.serialize())

    return closed_stream(p, "data_on_closed_stream", violate)


def case_window_overflow_connection(p):
    p.start()
    p.pump(lambda: any(f.get("type") == "SETTINGS" for f in p.frames), timeout=2)
    p.send_raw(WindowUpdateFrame(0, window_increment=MAX_WINDOW).serialize())
    p.wait_close()
    return p.report("window_overflow_connection")


def case_window_overflow_stream(p):
    p.start()
    p.conn.send_headers(1, p.request_headers(method="POST", path="/upload"), end_stream=False)
    p.flush()
    p.send_raw(WindowUpdateFrame(1, window_increment=MAX_WINDOW).serialize())
    p.pump(lambda: any(r["stream"] == 1 for r in p.resets) or p.goaway is not None)
    if not p.closed and p.goaway is None:
        p.synced = True
        try:
            p.conn.reset_stream(1)  # h2's view: stream 1 is gone (the server reset it)
        except Exception:  # noqa: BLE001
            pass
        p.conn.data_to_send()  # do not send our own RST_STREAM: the server already reset it
        p.get(3)
        p.pump(p.ended(3))
    return p.report("window_overflow_stream", followup=3)


def case_zero_window_increment(p):
    p.start()
    p.pump(lambda: any(f.get("type") == "SETTINGS" for f in p.frames), timeout=2)
    # hyperframe refuses to serialize a zero increment: header + 4 zero bytes by hand
    p.send_raw(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x00")
    p.wait_close()
    return p.report("zero_window_increment")


def case_oversized_headers_frame(p):
    p.start()
    p.pump(lambda: p.server_max_frame_size is not None, timeout=2)
    limit = p.server_max_frame_size or 16384
    # never-indexed literals: the block is as long as the filler, and the encoder's dynamic
    # table stays untouched
    filler = [NeverIndexedHeaderTuple(b"x-filler-%d" % i, b"v" * 1000) for i in range(limit // 1000 + 2)]
    block = p.conn.encoder.encode(p.request_headers() + filler, huffman=False)
    frame = HeadersFrame(1, data=block)
    frame.flags.add("END_HEADERS")
    frame.flags.add("END_STREAM")
    p.send_raw(frame.serialize())
    p.wait_close()
    doc = p.report("oversized_headers_frame")
    doc["frame_length"] = len(block)
    doc["server_max_frame_size"] = limit
    return doc


def case_ok(p):
    p.start()
    p.get(1)
    p.pump(p.ended(1))
    return p.report("ok")


CASES = {
    "bad_preface": case_bad_preface,
    "preface_without_settings": case_preface_without_settings,
    "invalid_pseudo_header": case_invalid_pseudo_header,
    "missing_path": case_missing_path,
    "uppercase_header_name": case_uppercase_header_name,
    "headers_on_closed_stream": case_headers_on_closed_stream,
    "data_on_closed_stream": case_data_on_closed_stream,
    "window_overflow_connection": case_window_overflow_connection,
    "window_overflow_stream": case_window_overflow_stream,
    "zero_window_increment": case_zero_window_increment,
    "oversized_headers_frame": case_oversized_headers_frame,
    "ok": case_ok,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True)
    parser.add_argument("--authority")
    parser.add_argument("--path", default="/h2neg")
    parser.add_argument("--wait-ms", type=int, default=3000)
    parser.add_argument("cases", nargs="+")
    args = parser.parse_args()
    for name in args.cases:
        if name not in CASES:
            print("unknown case %r (known: %s)" % (name, ", ".join(CASES)), file=sys.stderr)
            return 2
    for name in args.cases:
        probe = Probe(args.target, args.authority, args.path, args.wait_ms / 1000.0)
        try:
            emit(CASES[name](probe))
        finally:
            probe.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
