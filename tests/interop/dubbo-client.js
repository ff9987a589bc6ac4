#!/usr/bin/env node
'use strict';

// A real dubbo2.js consumer (`DirectlyDubbo`: host:port, no registry, one TCP
// connection) making Dubbo 2 calls.
//
//   node dubbo-client.js --target HOST:PORT [--service com.example.DemoService]
//        [--method sayHello] [--version 1.0.0] [--group G] [--dubbo-version 2.0.2]
//        [--args JSON-array] [--attachment k=v ...] [--count 1] [--concurrency 1]
//        [--timeout 3000] [--heartbeats 0] [--per-call] [--verbose]
//
// --args: JSON values, each sent as the matching Java type (string → java.lang.String,
// integer → int, other number → double, boolean → boolean); "$i" inside a string is the
// call index, exactly "$i" becomes the integer index. Default: ["call-$i"].
// --version / --group: omitted when not given (dubbo2.js then writes a null version field
// and `version: 0.0.0` in the attachments, and no `group`).
// --timeout: ms until dubbo2.js gives up on a call ("remote invoke timeout").
// --heartbeats N: before the calls, writes N heartbeats built by dubbo2.js's own
// HeartBeat.encode() (flag 0xe2, id 0, body N) on the client's connection, one at a time,
// and counts the event frames that come back (dubbo2.js's decode buffer swallows them;
// the client taps HeartBeat.isHeartBeat to see them).
//
// Every answer of the test server (dubbo-server.js) is a JSON description of the call it
// received; the client checks that it is the call it made (service, method, version,
// group, args) — so each response is matched against its own request — and counts the
// backend that answered. The last stdout line is the JSON summary:
//   {"ok","errors":{key:n},"error_samples":{key:msg},"statuses":{status:n},
//    "backends":{name:n},"sent","count","elapsed_ms","calls_per_sec",
//    "heartbeat_sent","heartbeat_acks":[{flag,status,id,len}], "results":[...] (--per-call)}
// Error keys: `status_<n>` for a response with status n ≠ 20 (dubbo2.js itself only gives
// the raw body bytes as the message: the client reads the status from the frame and
// decodes the body as a hessian2 string, see `message`), `wrong_answer`, `timeout`
// (dubbo2.js's "remote invoke timeout"), `socket_closed`, or the error's name.
// Exit 0 when the harness ran (call failures are in the summary), 2 on bad usage, 1 on an
// internal failure.

process.env.NODE_ENV = process.env.NODE_ENV || 'production'; // dubbo2.js JSON-logs every request otherwise

const { parseArgs, emit, flushAndExit } = require('./lib/common');

let opts;
try {
  opts = parseArgs(process.argv.slice(2), {
    target: 'string', service: 'string', method: 'string', version: 'string', group: 'string',
    'dubbo-version': 'string', args: 'string', attachment: 'list', count: 'int', concurrency: 'int',
    timeout: 'int', heartbeats: 'int', 'per-call': 'bool', verbose: 'bool',
  });
  if (!opts.target || !/^[^:]+:\d+$/.test(opts.target)) throw new Error('--target HOST:PORT is required');
  opts.service = opts.service || 'com.example.DemoService';
  opts.method = opts.method || 'sayHello';
  opts['dubbo-version'] = opts['dubbo-version'] || '2.0.2';
  opts.count = opts.count === undefined ? 1 : opts.count;
  opts.concurrency = Math.max(1, opts.concurrency || 1);
  opts.timeout = opts.timeout || 3000;
  opts.heartbeats = opts.heartbeats || 0;
  opts.argsTemplate = opts.args === undefined ? [ 'call-$i' ] : JSON.parse(opts.args);
  if (!Array.isArray(opts.argsTemplate)) throw new Error('--args must be a JSON array');
  opts.attachments = {};
  for (const a of opts.attachment || []) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new Error('--attachment needs k=v, got ' + a);
    opts.attachments[a.slice(0, eq)] = a.slice(eq + 1);
  }
} catch (err) {
  process.stderr.write('dubbo-client: ' + err.message + '\n');
  process.exit(2);
}

if (opts.verbose) process.env.DEBUG = process.env.DEBUG || 'dubbo*,directly-dubbo';

const hessian = require('hessian.js');
const java = require('js-to-java');
const { DirectlyDubbo, Context } = require('dubbo2.js');
const decodeModule = require('dubbo2.js/es7/decode');
const HeartBeat = require('dubbo2.js/es7/heartbeat').default;

// --- taps ------------------------------------------------------------------
// dubbo2.js turns a non-20 status into DubboDecodeError(body bytes as a string) and drops
// the status; socket-worker calls decode through the module object, so wrapping the
// export exposes the status and the decoded message.
const origDecode = decodeModule.decode;
decodeModule.decode = bytes => {
  const out = origDecode(bytes);
  const status = bytes[3];
  if (status !== 20 && out.err) {
    out.err.dubboStatus = status;
    out.err.rawBody = bytes.subarray(16).toString('hex');
    try {
      out.err.dubboMessage = new hessian.DecoderV2(bytes.subarray(16)).read();
    } catch (e) {
      out.err.dubboMessage = null;
    }
  }
  return out;
};

// Heartbeat replies never reach the decoder (decode-buffer drops event frames after
// asking HeartBeat.isHeartBeat(header)): record the headers it sees.
const heartbeatFrames = [];
let onHeartbeatFrame = () => {};
const origIsHeartBeat = HeartBeat.isHeartBeat;
HeartBeat.isHeartBeat = header => {
  const yes = origIsHeartBeat.call(HeartBeat, header);
  if (yes) {
    const f = {
      flag: header[2],
      status: header[3],
      id: header.readBigInt64BE(4).toString(),
      len: header.readInt32BE(12),
    };
    heartbeatFrames.push(f);
    onHeartbeatFrame(f);
  }
  return yes;
};

// Extra attachments go through dubbo2.js's own Context#attachments (merged into the
// attachments map by its encoder).
if (Object.keys(opts.attachments).length) {
  const origCreate = Context.create;
  Context.create = function () {
    const ctx = origCreate.call(this);
    ctx.attachments = opts.attachments;
    return ctx;
  };
}

// --- calls -----------------------------------------------------------------
function argsFor(i) {
  const subst = v => {
    if (v === '$i') return i;
    if (typeof v === 'string') return v.split('$i').join(String(i));
    if (Array.isArray(v)) return v.map(subst);
    return v;
  };
  return opts.argsTemplate.map(subst);
}

function toJava(v) {
  if (typeof v === 'string') return java.String(v);
  if (typeof v === 'boolean') return java.boolean(v);
  if (Number.isInteger(v)) return java.int(v);
  if (typeof v === 'number') return java.double(v);
  throw new Error('unsupported argument ' + JSON.stringify(v));
}

const summary = {
  ok: 0,
  errors: {},
  error_samples: {},
  statuses: {},
  backends: {},
  sent: 0,
  count: opts.count,
  target: opts.target,
  service: opts.service,
  method: opts.method,
  version: opts.version === undefined ? null : opts.version,
  group: opts.group === undefined ? null : opts.group,
  dubbo_version: opts['dubbo-version'],
  elapsed_ms: 0,
  calls_per_sec: 0,
};
const results = [];

function countError(key, message) {
  summary.errors[key] = (summary.errors[key] || 0) + 1;
  if (!summary.error_samples[key]) summary.error_samples[key] = message;
}

// null if `answer` is the test server's description of exactly this call, else why not
function verify(i, args, answer) {
  if (opts.method === 'stats' || opts.method === 'nothing') return null;
  let d;
  try {
    d = JSON.parse(answer);
  } catch (e) {
    return 'not a JSON description: ' + JSON.stringify(answer);
  }
  const want = {
    service: opts.service,
    method: opts.method,
    version: opts.version === undefined ? null : opts.version,
    group: opts.group === undefined ? null : opts.group,
    args,
  };
  for (const k of Object.keys(want)) {
    if (JSON.stringify(d[k]) !== JSON.stringify(want[k])) {
      return `call ${i}: ${k} is ${JSON.stringify(d[k])}, sent ${JSON.stringify(want[k])}`;
    }
  }
  return null;
}

async function main() {
  const dubbo = DirectlyDubbo.from({
    dubboAddress: opts.target,
    dubboVersion: opts['dubbo-version'],
    dubboInvokeTimeout: opts.timeout / 1000,
  });
  const service = dubbo.proxyService({
    dubboInterface: opts.service,
    version: opts.version,
    group: opts.group,
    methods: {
      [opts.method]: (...args) => args.map(toJava),
    },
  });

  if (opts.heartbeats > 0) {
    const worker = dubbo._socketWorker;
    const deadline = Date.now() + opts.timeout;
    while (!worker.isAvaliable && Date.now() < deadline) await new Promise(r => setTimeout(r, 10));
    summary.heartbeat_sent = 0;
    summary.heartbeat_acks = [];
    if (worker.isAvaliable) {
      // one at a time: dubbo2.js's decode buffer stops at an event frame until more bytes arrive
      for (let k = 0; k < opts.heartbeats; k++) {
        const got = new Promise(resolve => {
          onHeartbeatFrame = resolve;
          setTimeout(() => resolve(null), opts.timeout);
        });
        worker._socket.write(HeartBeat.encode());
        summary.heartbeat_sent++;
        const f = await got;
        onHeartbeatFrame = () => {};
        if (!f) break;
        summary.heartbeat_acks.push(f);
      }
    } else {
      countError('not_connected', 'no connection to ' + opts.target + ' within ' + opts.timeout + ' ms');
    }
  }

  const start = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < opts.count) {
      const i = next++;
      const args = argsFor(i);
      summary.sent++;
      const { res, err } = await service[opts.method](...args);
      const r = { i };
      if (err) {
        let key;
        if (err.dubboStatus !== undefined) {
          key = 'status_' + err.dubboStatus;
          summary.statuses[err.dubboStatus] = (summary.statuses[err.dubboStatus] || 0) + 1;
          r.status = err.dubboStatus;
          r.message = err.dubboMessage;
        } else if (/remote invoke timeout/.test(err.message)) {
          key = 'timeout';
        } else if (/socket-?worker (was|had) closed/i.test(err.message)) {
          key = 'socket_closed';
        } else {
          key = err.name || 'Error';
        }
        r.error = key;
        r.error_message = err.message;
        countError(key, err.dubboStatus !== undefined ? String(err.dubboMessage) : String(err.message).slice(0, 300));
      } else {
        const bad = verify(i, args, res);
        if (bad) {
          countError('wrong_answer', bad);
          r.error = 'wrong_answer';
        } else {
          summary.ok++;
        }
        r.answer = res;
        try {
          const d = JSON.parse(res);
          if (d && d.backend) summary.backends[d.backend] = (summary.backends[d.backend] || 0) + 1;
        } catch (e) { /* not a description */ }
      }
      if (opts['per-call']) results.push(r);
    }
  };
  const workers = [];
  for (let w = 0; w < opts.concurrency; w++) workers.push(worker());
  await Promise.all(workers);
  summary.elapsed_ms = Date.now() - start;
  summary.calls_per_sec = summary.elapsed_ms > 0 ? Math.round(summary.sent * 1000 / summary.elapsed_ms) : summary.sent;
  summary.heartbeat_frames_seen = heartbeatFrames.length;
  if (opts['per-call']) summary.results = results.sort((a, b) => a.i - b.i);
}

main().then(() => {
  emit(summary);
  flushAndExit(0);
}, err => {
  process.stderr.write('dubbo-client: internal failure: ' + (err && err.stack || err) + '\n');
  summary.harness_error = String(err && err.message || err);
  emit(summary);
  flushAndExit(1);
});
