#!/usr/bin/env node
// gRPC server (@grpc/grpc-js + @grpc/proto-loader) for Strait's interop tests: service
// strait.interop.Interop of interop.proto, same behaviour as grpc_server.py.
//
//   node grpc-server.js --port 0 --name NAME [--host 127.0.0.1]
//
// stdout: {"event":"listening","port":P,"name":NAME,"impl":"grpc-js","pid":N}, then
// {"event":"stopped","reason":...,"stats":{...}}. Exits on SIGTERM/SIGINT or when stdin closes.
'use strict';

const { load, emit, parseArgs, onStop } = require('./grpc-common');

const args = parseArgs(process.argv.slice(2), { port: '0', host: '127.0.0.1', name: 'grpc-js' });
const NAME = args.name;
const { grpc, Interop } = load();

const stats = { calls: {}, cancelled: 0 };
const count = (m) => { stats.calls[m] = (stats.calls[m] || 0) + 1; };
const TRAILER_BIN = Buffer.from([0, 1, 2, 255]);
const ERROR_BIN = Buffer.from('\x00\xffstrait', 'latin1');

function metaList(md) {
  const out = [];
  for (const [key, values] of Object.entries(md.toJSON ? md.toJSON() : md.getMap())) {
    if (!key.startsWith('x-')) continue;
    for (const v of [].concat(values)) {
      out.push(`${key}=${Buffer.isBuffer(v) ? v.toString('hex') : v}`);
    }
  }
  return out.sort();
}

function md(pairs) {
  const m = new grpc.Metadata();
  for (const [k, v] of pairs) m.add(k, v);
  return m;
}

const impl = {
  Unary(call, callback) {
    count('Unary');
    const initial = [['x-server-name', NAME]];
    const echo = call.metadata.get('x-client-meta');
    if (echo.length) initial.push(['x-echo-client-meta', String(echo[0])]);
    call.sendMetadata(md(initial));
    const r = call.request;
    callback(null, {
      text: r.text, seq: r.seq, server: NAME, metadata: metaList(call.metadata),
      payload_bytes: r.payload.length, payload: r.payload,
    }, md([['x-trailer', 'unary-done'], ['x-trailer-bin', TRAILER_BIN]]));
  },

  ServerStream(call) {
    count('ServerStream');
    call.sendMetadata(md([['x-server-name', NAME]]));
    const r = call.request;
    for (let i = 0; i < r.count; i++) {
      call.write({ text: `${r.text}-${i}`, seq: i, server: NAME });
    }
    call.end(md([['x-trailer', 'stream-done']]));
  },

  ClientStream(call, callback) {
    count('ClientStream');
    const texts = [];
    let total = 0;
    call.on('data', (r) => { texts.push(r.text); total += r.payload.length; });
    call.on('end', () => {
      callback(null, {
        text: texts.join(','), count: texts.length, server: NAME,
        metadata: metaList(call.metadata), payload_bytes: total,
      }, md([['x-trailer', 'client-stream-done']]));
    });
  },

  Bidi(call) {
    count('Bidi');
    call.sendMetadata(md([['x-server-name', NAME]]));
    call.on('data', (r) => call.write({ text: r.text, seq: r.seq, server: NAME }));
    call.on('end', () => call.end(md([['x-trailer', 'bidi-done']])));
  },

  Fail(call, callback) {
    count('Fail');
    callback({
      code: call.request.code,
      details: call.request.detail,
      metadata: md([['x-error-reason', 'failed-on-purpose'], ['x-error-bin', ERROR_BIN]]),
    });
  },

  Slow(call, callback) {
    count('Slow');
    const r = call.request;
    const timer = setTimeout(() => {
      callback(null, { text: r.text, seq: r.seq, server: NAME, metadata: metaList(call.metadata) });
    }, r.sleep_ms);
    call.on('cancelled', () => { clearTimeout(timer); stats.cancelled++; });
  },
};

const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20 });
server.addService(Interop.service, impl);
server.bindAsync(`${args.host}:${args.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`grpc-server: bind failed: ${err.message}`);
    process.exit(1);
  }
  emit({ event: 'listening', port, host: args.host, name: NAME, impl: 'grpc-js', pid: process.pid });
});

onStop((reason) => {
  server.tryShutdown(() => {
    emit({ event: 'stopped', reason, stats });
    process.exit(0);
  });
  setTimeout(() => { server.forceShutdown(); emit({ event: 'stopped', reason, stats }); process.exit(0); }, 1000).unref();
});

