#!/usr/bin/env node
'use strict';

// Independent Bolt frame tap (does not use sofa-bolt-node's codec: own framing,
// own CRC-32, own header-map parser), used to check what the peers put on the wire.
//
//   relay mode: node bolt-tap.js --port P --target HOST:PORT [--hex]
//       forwards bytes unchanged both ways and prints one JSON line per frame:
//       {"event":"frame","dir":"c2s"|"s2c","proto":1|2,"ver1":..,"type":..,"cmdcode":..,"id":..,
//        "switch":..,"status"|"timeout":..,"header_map":{..},"crc":"ok"|"bad"|null,"len":..}
//   stub mode:  node bolt-tap.js --port P --reply-status N
//       answers every two-way request with a Bolt error response of status N and
//       empty class/header/content (what a proxy sends for no route / timeout),
//       in the request's protocol version, with the request's switch (CRC
//       recomputed when switch bit 0 is set and ver1 >= 2); acks heartbeats; never
//       answers oneway requests.
//
// Prints {"event":"listening","port":P} first; exits on SIGTERM/SIGINT.

const net = require('net');
const { parseArgs, emit, flushAndExit } = require('./lib/common');

let opts;
try {
  opts = parseArgs(process.argv.slice(2), { port: 'int', host: 'string', target: 'string', 'reply-status': 'int', hex: 'bool' });
  if (opts.port === undefined) throw new Error('--port is required');
  if (Boolean(opts.target) === (opts['reply-status'] !== undefined)) throw new Error('give exactly one of --target or --reply-status');
} catch (err) {
  process.stderr.write('bolt-tap: ' + err.message + '\n');
  process.exit(2);
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();
function crc32(buf) {
  let c = -1;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

// Returns the total frame length if buf holds a complete frame, 0 if more bytes
// are needed; throws on an unknown protocol byte.
function frameLength(buf) {
  if (buf.length < 1) return 0;
  const v2 = buf[0] === 2;
  if (buf[0] !== 1 && !v2) throw new Error('not a Bolt frame, first byte 0x' + buf[0].toString(16));
  const type = buf[v2 ? 2 : 1];
  const fixed = v2 ? (type === 0 ? 22 : 24) : (type === 0 ? 20 : 22);
  if (buf.length < fixed) return 0;
  const off = fixed - 8;
  let len = fixed + buf.readUInt16BE(off) + buf.readUInt16BE(off + 2) + buf.readUInt32BE(off + 4);
  if (v2 && buf[1] >= 2 && (buf[11] & 1)) len += 4;
  return buf.length >= len ? len : 0;
}

function parseHeaderMap(b) {
  const map = {};
  let o = 0;
  const str = () => {
    const n = b.readInt32BE(o);
    o += 4;
    if (n < 0) return null;
    const s = b.toString('utf8', o, o + n);
    o += n;
    return s;
  };
  while (o < b.length) {
    const k = str();
    const v = str();
    if (k !== null && v !== null) map[k] = v;
  }
  return map;
}

function describe(frame, dir) {
  const v2 = frame[0] === 2;
  const type = frame[v2 ? 2 : 1];
  const d = { event: 'frame', dir, len: frame.length, proto: frame[0] };
  if (v2) d.ver1 = frame[1];
  d.type = type;
  d.cmdcode = frame.readUInt16BE(v2 ? 3 : 2);
  d.id = frame.readUInt32BE(v2 ? 6 : 5);
  d.codec = frame[v2 ? 10 : 9];
  if (v2) d.switch = frame[11];
  let off = v2 ? 12 : 10;
  if (type === 0) { d.status = frame.readUInt16BE(off); off += 2; } else { d.timeout = frame.readInt32BE(off); off += 4; }
  const classLen = frame.readUInt16BE(off);
  const headerLen = frame.readUInt16BE(off + 2);
  const contentLen = frame.readUInt32BE(off + 4);
  off += 8;
  d.class = frame.toString('utf8', off, off + classLen);
  try {
    d.header_map = parseHeaderMap(frame.slice(off + classLen, off + classLen + headerLen));
  } catch (e) {
    d.header_map_error = e.message;
  }
  d.contentLen = contentLen;
  const body = off + classLen + headerLen + contentLen;
  d.crc = null;
  if (frame.length === body + 4) {
    d.crc = crc32(frame.slice(0, body)) === frame.readUInt32BE(body) ? 'ok' : 'bad';
  }
  if (opts.hex) d.hex = frame.slice(0, Math.min(frame.length, 64)).toString('hex');
  return d;
}

function framer(dir, onFrame) {
  let acc = Buffer.alloc(0);
  let broken = false;
  return chunk => {
    if (broken) return;
    acc = acc.length ? Buffer.concat([ acc, chunk ]) : chunk;
    try {
      for (;;) {
        const n = frameLength(acc);
        if (!n) break;
        onFrame(acc.slice(0, n));
        acc = acc.slice(n);
      }
    } catch (e) {
      broken = true;
      emit({ event: 'decode_error', dir, message: e.message, hex: acc.slice(0, 32).toString('hex') });
    }
  };
}

function errorResponse(req, status) {
  const v2 = req[0] === 2;
  const ver1 = v2 ? req[1] : 0;
  const sw = v2 ? req[11] : 0;
  const withCrc = v2 && ver1 >= 2 && (sw & 1);
  const cmdcode = req.readUInt16BE(v2 ? 3 : 2);
  const isHeartbeat = cmdcode === 0;
  const fixed = v2 ? 22 : 20;
  const out = Buffer.alloc(fixed + (withCrc ? 4 : 0));
  let o = 0;
  out[o++] = req[0];
  if (v2) out[o++] = ver1;
  out[o++] = 0; // RESPONSE
  out.writeUInt16BE(isHeartbeat ? 0 : 2, o); o += 2;
  out[o++] = 1; // ver2
  req.copy(out, o, v2 ? 6 : 5, v2 ? 10 : 9); o += 4; // request id
  out[o++] = req[v2 ? 10 : 9]; // codec
  if (v2) out[o++] = sw;
  out.writeUInt16BE(isHeartbeat ? 0 : status, o); o += 2;
  // class, header, content lengths: all zero
  if (withCrc) out.writeUInt32BE(crc32(out.slice(0, fixed)), fixed);
  return out;
}

const HOST = opts.host || '127.0.0.1';
const server = net.createServer(client => {
  if (opts.target) {
    const [ th, tp ] = [ opts.target.slice(0, opts.target.lastIndexOf(':')), Number(opts.target.slice(opts.target.lastIndexOf(':') + 1)) ];
    const upstream = net.connect(tp, th);
    const c2s = framer('c2s', f => emit(describe(f, 'c2s')));
    const s2c = framer('s2c', f => emit(describe(f, 's2c')));
    client.on('data', d => { c2s(d); upstream.write(d); });
    upstream.on('data', d => { s2c(d); client.write(d); });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', e => emit({ event: 'upstream_error', message: e.message }));
  } else {
    const status = opts['reply-status'];
    const c2s = framer('c2s', f => {
      const d = describe(f, 'c2s');
      emit(d);
      if (d.type === 2) return; // oneway: never answer
      client.write(errorResponse(f, status));
    });
    client.on('data', c2s);
    client.on('error', () => {});
  }
});
server.listen(opts.port, HOST, () => emit({ event: 'listening', port: server.address().port, host: HOST, pid: process.pid }));
process.on('SIGTERM', () => flushAndExit(0));
process.on('SIGINT', () => flushAndExit(0));
