#!/usr/bin/env node
'use strict';

// A small Dubbo 2 provider (hessian2 over TCP) for the interop tests. There is no
// maintained Dubbo 2 server on npm or PyPI, so this one is written here on top of
// hessian.js (third-party hessian2). It follows Apache Dubbo's ExchangeCodec /
// DubboCodec (wire-formats.md §2):
//   - frames: 16-byte header (da bb, flag, status, id i64, len i32) + body; many frames
//     per read and frames split across reads; bad magic or a length over 8 MiB closes;
//   - request body: dubbo version, path, version, method, parameter descriptor, one
//     value per parameter, attachments map (one hessian2 stream);
//   - two-way requests get status 20 with result flag 4 RESPONSE_VALUE_WITH_ATTACHMENTS
//     when the request's dubbo version is in 2.0.2..2.0.99 (Version.isSupportResponseAttachment),
//     else flag 1 RESPONSE_VALUE (flag 5 / 2 for a null result); oneway requests are never
//     answered;
//   - a two-way heartbeat (event bit, body `N`) is answered with flag 0x22, status 20,
//     body `N`; a oneway one is only counted; other events are counted, never answered.
//
//   node dubbo-server.js --port P --name NAME [--host 127.0.0.1] [--quiet] [--verbose]
//
// Every service and method is served. The answer is a JSON string describing the call:
//   {"backend","service","path","method","version","group","dubbo","attachments","args"}
// (service = the `interface` attachment, else path — the proxy's routing rule). Methods
// with special behaviour:
//   sleep(ms)   waits ms, then answers as above (timeout tests)
//   stats()     JSON string of the counters below
//   fail(msg)   status 70 SERVICE_ERROR, body = hessian string "fail from NAME: msg"
//   nothing()   null result (flag 5 / 2)
//
// stdout (JSON lines): {"event":"listening","port":P,...} once ready, then
// {"event":"connection"}, {"event":"heartbeat"}, {"event":"oneway"}, {"event":"event"},
// {"event":"bad_request"}, {"event":"sleeping"} (a sleep call started) as they happen (not with --quiet), and
// {"event":"stopped","stats":{...}} on SIGTERM/SIGINT.

const net = require('net');
const hessian = require('hessian.js');
const { parseArgs, emit, makeLogger, flushAndExit } = require('./lib/common');

let opts;
try {
  opts = parseArgs(process.argv.slice(2), { port: 'int', name: 'string', host: 'string', quiet: 'bool', verbose: 'bool' });
  if (opts.port === undefined) throw new Error('--port is required (0 = pick a free port)');
  if (!opts.name) throw new Error('--name is required');
} catch (err) {
  process.stderr.write('dubbo-server: ' + err.message + '\n');
  process.exit(2);
}

const NAME = opts.name;
const HOST = opts.host || '127.0.0.1';
const logger = makeLogger('dubbo-server ' + NAME, opts.verbose);

const HEADER = 16;
const MAX_PAYLOAD = 8 * 1024 * 1024; // Dubbo's DEFAULT_PAYLOAD
const FLAG_REQUEST = 0x80;
const FLAG_TWOWAY = 0x40;
const FLAG_EVENT = 0x20;
const HESSIAN2 = 2;
const STATUS = { OK: 20, BAD_REQUEST: 40, SERVICE_ERROR: 70 };
const RESULT = { VALUE: 1, NULL: 2, VALUE_WITH_ATTACHMENTS: 4, NULL_WITH_ATTACHMENTS: 5 };
const PROVIDER_DUBBO_VERSION = '2.0.2';

const stats = {
  name: NAME,
  requests: 0, // two-way, non-event requests
  oneway: 0, // oneway, non-event requests
  heartbeats: 0, // heartbeat events (two-way and oneway)
  heartbeats_oneway: 0,
  events: 0, // other events
  bad_requests: 0,
  connections: 0,
  responses: 0,
  byMethod: {}, // "service#method" -> n
  byVersion: {}, // request dubbo version -> n
};

// Java's Version.getIntVersion: up to 4 numeric parts, two decimal digits each.
function intVersion(v) {
  const parts = String(v).split('.').slice(0, 4).map(p => parseInt(p, 10));
  if (parts.some(p => !Number.isInteger(p) || p < 0 || p > 99)) return -1;
  while (parts.length < 4) parts.push(0);
  return parts.reduce((acc, p) => acc * 100 + p, 0);
}
// Version.isSupportResponseAttachment: 2.0.2 <= v <= 2.0.99
function supportsResponseAttachments(v) {
  if (!v) return false;
  const iv = intVersion(v);
  return iv >= 2000200 && iv <= 2009900;
}

// Arguments per JVM descriptor (MOSN's getArgumentCount; wire-formats §2.4).
function countArgs(desc) {
  let n = 0;
  for (let i = 0; i < desc.length; i++) {
    const c = desc[i];
    if (c === '[') continue;
    if (c === 'L') {
      const end = desc.indexOf(';', i);
      if (end < 0) throw new Error('bad parameter descriptor ' + JSON.stringify(desc));
      i = end;
      n++;
    } else if ('ZBCDFIJSV'.includes(c)) {
      n++;
    } else {
      throw new Error('bad parameter descriptor ' + JSON.stringify(desc));
    }
  }
  return n;
}

// Plain JSON for whatever hessian.js decoded (Long objects, Maps, Buffers).
function plain(v) {
  return JSON.parse(JSON.stringify(v, (k, x) => {
    if (typeof x === 'bigint') return x.toString();
    if (x instanceof Map) return Object.fromEntries(x);
    if (x && typeof x === 'object' && typeof x.high === 'number' && typeof x.low === 'number' && typeof x.toString === 'function' && x.constructor && x.constructor.name === 'Long') {
      return x.toString();
    }
    return x;
  }) || 'null');
}

function decodeRequestBody(body) {
  const d = new hessian.DecoderV2(body);
  const dubbo = d.read();
  const path = d.read();
  const version = d.read();
  const method = d.read();
  const desc = d.read();
  if (typeof path !== 'string' || typeof method !== 'string' || typeof desc !== 'string') {
    throw new Error('request body: path/method/descriptor are not strings');
  }
  const n = countArgs(desc);
  const args = [];
  for (let i = 0; i < n; i++) args.push(d.read());
  let attachments = d.read();
  if (attachments instanceof Map) attachments = Object.fromEntries(attachments);
  if (attachments === null || attachments === undefined) attachments = {};
  if (typeof attachments !== 'object') throw new Error('request body: attachments are not a map');
  if (d.byteBuffer.position() !== body.length) {
    throw new Error(`request body: ${body.length - d.byteBuffer.position()} bytes left after the attachments`);
  }
  return { dubbo, path, version, method, desc, args, attachments };
}

function frame(flag, status, id, body) {
  const h = Buffer.alloc(HEADER);
  h[0] = 0xda;
  h[1] = 0xbb;
  h[2] = flag;
  h[3] = status;
  id.copy(h, 4);
  h.writeInt32BE(body.length, 12);
  return Buffer.concat([ h, body ]);
}

function hessianString(s) {
  return new hessian.EncoderV2().write(s).get();
}

function okResponse(id, req, value) {
  const enc = new hessian.EncoderV2();
  const withAttachments = supportsResponseAttachments(req.dubbo);
  if (value === null || value === undefined) {
    enc.write(withAttachments ? RESULT.NULL_WITH_ATTACHMENTS : RESULT.NULL);
  } else {
    enc.write(withAttachments ? RESULT.VALUE_WITH_ATTACHMENTS : RESULT.VALUE);
    enc.write(value);
  }
  if (withAttachments) enc.write({ $class: 'java.util.HashMap', $: { dubbo: PROVIDER_DUBBO_VERSION } });
  return frame(HESSIAN2, STATUS.OK, id, enc.get());
}

function errorResponse(id, status, message) {
  return frame(HESSIAN2, status, id, hessianString(message));
}

function describe(req) {
  const service = typeof req.attachments.interface === 'string' ? req.attachments.interface : req.path;
  return {
    backend: NAME,
    service,
    path: req.path,
    method: req.method,
    version: req.version === undefined ? null : req.version,
    group: req.attachments.group === undefined ? null : req.attachments.group,
    dubbo: req.dubbo,
    attachments: plain(req.attachments),
    args: plain(req.args),
  };
}

// -> Promise<Buffer> (the response frame)
async function handle(id, req) {
  switch (req.method) {
    case 'sleep': {
      const ms = Number(req.args[0]) || 0;
      // a readiness signal for tests that act while calls are held by the backend
      if (!opts.quiet) emit({ event: 'sleeping', ms, id: idString(id) });
      await new Promise(r => setTimeout(r, ms));
      return okResponse(id, req, JSON.stringify(describe(req)));
    }
    case 'stats':
      return okResponse(id, req, JSON.stringify(stats));
    case 'fail':
      return errorResponse(id, STATUS.SERVICE_ERROR, 'fail from ' + NAME + ': ' + req.args[0]);
    case 'nothing':
      return okResponse(id, req, null);
    default:
      return okResponse(id, req, JSON.stringify(describe(req)));
  }
}

function idString(id) {
  return id.readBigInt64BE(0).toString();
}

function onFrame(conn, head, body) {
  const flag = head[2];
  const id = Buffer.from(head.subarray(4, 12));
  if (!(flag & FLAG_REQUEST)) {
    // Nothing of ours is pending; a response from the peer is unexpected.
    logger.warn('unexpected response frame id %s from %s', idString(id), conn.remote);
    return;
  }
  const twoWay = (flag & FLAG_TWOWAY) !== 0;
  if (flag & FLAG_EVENT) {
    // A heartbeat's body is the serialization's null, byte for byte (CodecSupport.isHeartBeat).
    if (body.length === 1 && body[0] === 0x4e) {
      stats.heartbeats++;
      if (!twoWay) stats.heartbeats_oneway++;
      if (!opts.quiet) emit({ event: 'heartbeat', id: idString(id), flag, twoWay, remote: conn.remote, count: stats.heartbeats });
      if (twoWay) conn.write(frame(FLAG_EVENT | HESSIAN2, STATUS.OK, id, Buffer.from([ 0x4e ])));
    } else {
      stats.events++;
      if (!opts.quiet) emit({ event: 'event', id: idString(id), flag, body: body.toString('hex'), remote: conn.remote });
    }
    return;
  }
  let req;
  try {
    if ((flag & 0x1f) !== HESSIAN2) throw new Error('unsupported serialization id ' + (flag & 0x1f));
    req = decodeRequestBody(body);
  } catch (err) {
    stats.bad_requests++;
    if (!opts.quiet) emit({ event: 'bad_request', id: idString(id), flag, error: err.message, remote: conn.remote });
    // Java marks the request broken and answers BAD_REQUEST (two-way only).
    if (twoWay) conn.write(errorResponse(id, STATUS.BAD_REQUEST, 'Fail to decode request due to: ' + err.message));
    return;
  }
  const key = ((req.attachments && typeof req.attachments.interface === 'string') ? req.attachments.interface : req.path) + '#' + req.method;
  stats.byMethod[key] = (stats.byMethod[key] || 0) + 1;
  stats.byVersion[String(req.dubbo)] = (stats.byVersion[String(req.dubbo)] || 0) + 1;
  if (!twoWay) {
    stats.oneway++;
    if (!opts.quiet) emit({ event: 'oneway', id: idString(id), count: stats.oneway, ...describe(req) });
    return; // never answered
  }
  stats.requests++;
  handle(id, req).then(buf => {
    stats.responses++;
    conn.write(buf);
  }, err => {
    logger.error('handler failed: %s', err && err.stack || err);
    conn.write(errorResponse(id, STATUS.SERVICE_ERROR, String(err && err.message || err)));
  });
}

const server = net.createServer(socket => {
  stats.connections++;
  const remote = socket.remoteAddress + ':' + socket.remotePort;
  if (!opts.quiet) emit({ event: 'connection', remote, count: stats.connections });
  socket.setNoDelay(true);
  const conn = {
    remote,
    write(buf) {
      if (!socket.destroyed) socket.write(buf);
    },
  };
  let buf = Buffer.alloc(0);
  socket.on('data', chunk => {
    buf = buf.length ? Buffer.concat([ buf, chunk ]) : chunk;
    // as many whole frames as the buffer holds; the rest waits for more bytes
    while (buf.length >= HEADER) {
      if (buf[0] !== 0xda || buf[1] !== 0xbb) {
        logger.warn('bad magic %s from %s: closing', buf.subarray(0, 2).toString('hex'), remote);
        socket.destroy();
        return;
      }
      const len = buf.readInt32BE(12);
      if (len < 0 || len > MAX_PAYLOAD) {
        logger.warn('bad body length %d from %s: closing', len, remote);
        socket.destroy();
        return;
      }
      if (buf.length < HEADER + len) break;
      const head = buf.subarray(0, HEADER);
      const body = buf.subarray(HEADER, HEADER + len);
      buf = buf.subarray(HEADER + len);
      try {
        onFrame(conn, head, body);
      } catch (err) {
        logger.error('frame handling failed: %s', err && err.stack || err);
      }
    }
  });
  socket.on('error', err => logger.info('socket error from %s: %s', remote, err.message));
});
server.on('error', err => {
  process.stderr.write('dubbo-server: ' + (err && err.stack || err) + '\n');
  process.exit(1);
});

let stopping = false;
function stop(sig) {
  if (stopping) return;
  stopping = true;
  emit({ event: 'stopped', signal: sig, stats });
  flushAndExit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

server.listen(opts.port, HOST, () => {
  emit({ event: 'listening', port: server.address().port, host: HOST, name: NAME, pid: process.pid });
});
