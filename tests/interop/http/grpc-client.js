#!/usr/bin/env node
// gRPC client (@grpc/grpc-js + @grpc/proto-loader) for Strait's interop tests; same options
// and the same one-line JSON summary as grpc_client.py (see there), with "client":"grpc-js".
//
//   node grpc-client.js --target HOST:PORT [--cases unary,server_stream,client_stream,bidi,fail,deadline,large]
//        [--authority HOST] [--stream-count 100] [--client-count 50] [--bidi-count 20]
//        [--fail-code 9] [--fail-detail TEXT] [--slow-ms 5000] [--deadline-ms 300]
//        [--large-bytes 1048576] [--timeout-ms 10000]
'use strict';

const { load, emit, parseArgs } = require('./grpc-common');

const args = parseArgs(process.argv.slice(2), {
  target: '', cases: 'unary,server_stream,client_stream,bidi,fail,deadline', authority: '',
  'stream-count': '100', 'client-count': '50', 'bidi-count': '20', 'fail-code': '9',
  'fail-detail': 'precondition failed: ünïcode & 100%', 'slow-ms': '5000', 'deadline-ms': '300',
  'large-bytes': String(1 << 20), 'timeout-ms': '10000',
});
if (!args.target) { console.error('--target is required'); process.exit(2); }
const n = (k) => parseInt(args[k], 10);

const { grpc, Interop } = load();
const NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));
const CLIENT_BIN = Buffer.from([0xde, 0xad, 0xbe, 0xef]);

const options = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.enable_retries': 0 };
if (args.authority) options['grpc.default_authority'] = args.authority;
const client = new Interop(args.target, grpc.credentials.createInsecure(), options);

function metaMap(md) {
  const out = {};
  if (!md) return out;
  for (const [key, values] of Object.entries(md.toJSON())) {
    if (!key.startsWith('x-')) continue;
    out[key] = [].concat(values).map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : String(v))).join(',');
  }
  return out;
}

function requestMeta() {
  const m = new grpc.Metadata();
  m.add('x-client-meta', 'hello-from-grpc-js');
  m.add('x-client-bin', CLIENT_BIN);
  return m;
}

const deadlineIn = (ms) => new Date(Date.now() + ms);

function replyDoc(r) {
  if (!r) return null;
  return {
    text: r.text, seq: r.seq, server: r.server, metadata: r.metadata || [], count: r.count,
    payload_bytes: Number(r.payload_bytes),
  };
}

function statusDoc(status) {
  return { code: NAMES[status.code] || String(status.code), code_num: status.code, details: status.details || '' };
}

// Tracks a call's initial metadata and final status; resolves `done` with the status.
function track(call) {
  const t = { initial: null };
  call.on('metadata', (md) => { t.initial = md; });
  t.done = new Promise((resolve) => call.on('status', resolve));
  return t;
}

function finish(t, status, extra) {
  return { ...statusDoc(status), initial_metadata: metaMap(t.initial), trailing_metadata: metaMap(status.metadata), ...extra };
}

function unaryLike(method, req, deadlineMs) {
  return new Promise((resolve) => {
    let reply = null;
    const call = client[method](req, requestMeta(), { deadline: deadlineIn(deadlineMs) }, (err, r) => { reply = err ? null : r; });
    const t = track(call);
    t.done.then((status) => resolve({ t, status, reply }));
  });
}

async function unary(payload) {
  const { t, status, reply } = await unaryLike('Unary', { text: 'hello', seq: 7, payload }, n('timeout-ms'));
  const extra = {};
  if (reply) {
    extra.reply = replyDoc(reply);
    extra.payload_equal = Buffer.compare(Buffer.from(reply.payload), payload) === 0;
  }
  return finish(t, status, extra);
}

function serverStream() {
  return new Promise((resolve) => {
    const call = client.ServerStream({ text: 'item', count: n('stream-count') }, requestMeta(), { deadline: deadlineIn(n('timeout-ms')) });
    const t = track(call);
    const seqs = []; const servers = new Set(); let textsOk = true;
    call.on('data', (r) => { textsOk = textsOk && r.text === `item-${r.seq}`; seqs.push(r.seq); servers.add(r.server); });
    call.on('error', () => {});
    t.done.then((status) => resolve(finish(t, status, {
      replies: seqs.length, seqs_in_order: seqs.every((s, i) => s === i), texts_ok: textsOk, servers: [...servers].sort(),
    })));
  });
}

function clientStream() {
  return new Promise((resolve) => {
    let reply = null;
    const call = client.ClientStream(requestMeta(), { deadline: deadlineIn(n('timeout-ms')) }, (err, r) => { reply = err ? null : r; });
    const t = track(call);
    for (let i = 0; i < n('client-count'); i++) call.write({ text: `c${i}`, seq: i, payload: Buffer.alloc(1000, 'x') });
    call.end();
    t.done.then((status) => resolve(finish(t, status, reply ? { reply: replyDoc(reply), sent: n('client-count') } : { sent: n('client-count') })));
  });
}

function bidi() {
  return new Promise((resolve) => {
    const call = client.Bidi(requestMeta(), { deadline: deadlineIn(n('timeout-ms')) });
    const t = track(call);
    const total = n('bidi-count');
    let received = 0; let inOrder = true; const servers = new Set(); let next = 0;
    const send = () => { call.write({ text: `ping-${next}`, seq: next }); next++; };
    call.on('data', (r) => {
      // the reply to request `received`, before request received+1 is sent
      inOrder = inOrder && r.seq === received && r.text === `ping-${received}`;
      received++; servers.add(r.server);
      if (next < total) send(); else if (received === total) call.end();
    });
    call.on('error', () => {});
    if (total > 0) send(); else call.end();
    t.done.then((status) => resolve(finish(t, status, { sent: next, received, in_order: inOrder && received === total, servers: [...servers].sort() })));
  });
}

async function fail() {
  const { t, status, reply } = await unaryLike('Fail', { code: n('fail-code'), detail: args['fail-detail'] }, n('timeout-ms'));
  return finish(t, status, reply ? { reply: replyDoc(reply) } : {});
}

async function deadline() {
  const { t, status, reply } = await unaryLike('Slow', { text: 'slow', sleep_ms: n('slow-ms') }, n('deadline-ms'));
  return finish(t, status, reply ? { reply: replyDoc(reply) } : {});
}

const table = {
  unary: () => unary(Buffer.alloc(0)),
  server_stream: serverStream,
  client_stream: clientStream,
  bidi,
  fail,
  deadline,
  large: () => unary(Buffer.from(Array.from({ length: n('large-bytes') }, (_, i) => i % 251))),
};

(async () => {
  const cases = {};
  for (const name of args.cases.split(',').filter(Boolean)) {
    if (!table[name]) { console.error(`unknown case ${name} (known: ${Object.keys(table).join(',')})`); process.exit(2); }
    const started = Date.now();
    const doc = await table[name]();
    doc.elapsed_ms = Date.now() - started;
    cases[name] = doc;
  }
  client.close();
  emit({ client: 'grpc-js', target: args.target, cases });
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
