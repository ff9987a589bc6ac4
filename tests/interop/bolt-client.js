#!/usr/bin/env node
'use strict';

// A real sofa-rpc-node RpcClient (direct address, no registry) making Bolt calls.
//
//   node bolt-client.js --target HOST:PORT [--proto v1|v2|v2crc]
//        [--service com.alipay.test.TestService:1.0] [--method plus] [--args JSON]
//        [--count N] [--concurrency C] [--timeout ms] [--oneway] [--oneway-wait ms]
//        [--heartbeat] [--heartbeats H] [--java-headers] [--target-app APP]
//        [--header k=v ...] [--then-calls N] [--verbose]
//
// --then-calls N: after the oneway phase, N two-way `plus` calls through the same
// consumer, so on the same connection (summary: then_ok, then_errors).
//
// The last stdout line is the JSON summary. Exit 0 when the harness ran (call
// failures are in the summary), 2 on bad usage, 1 on an internal failure.

const { parseArgs, emit, makeLogger, protocolFor, installDecodeTap, splitService, flushAndExit } = require('./lib/common');

let opts;
try {
  opts = parseArgs(process.argv.slice(2), {
    target: 'string', proto: 'string', service: 'string', method: 'string', args: 'string',
    count: 'int', concurrency: 'int', timeout: 'int', oneway: 'bool', 'oneway-wait': 'int',
    heartbeat: 'bool', heartbeats: 'int', 'java-headers': 'bool', 'target-app': 'string',
    header: 'list', verbose: 'bool', 'then-calls': 'int',
    'tls-ca': 'string', 'tls-cert': 'string', 'tls-key': 'string', 'tls-name': 'string',
  });
  if (!opts.target || !/^[^:]+:\d+$/.test(opts.target)) throw new Error('--target HOST:PORT is required');
  opts.proto = opts.proto || 'v1';
  protocolFor(opts.proto); // validates
  opts.service = opts.service || 'com.alipay.test.TestService:1.0';
  opts.method = opts.method || 'plus';
  opts.count = opts.count === undefined ? 1 : opts.count;
  opts.concurrency = Math.max(1, opts.concurrency || 1);
  opts.timeout = opts.timeout || 3000;
  opts.heartbeats = opts.heartbeats === undefined ? 5 : opts.heartbeats;
  if (opts.args !== undefined) {
    opts.argsTemplate = JSON.parse(opts.args);
    if (!Array.isArray(opts.argsTemplate)) throw new Error('--args must be a JSON array');
  }
  opts.extraHeaders = {};
  for (const h of opts.header || []) {
    const eq = h.indexOf('=');
    if (eq <= 0) throw new Error('--header needs k=v, got ' + h);
    opts.extraHeaders[h.slice(0, eq)] = h.slice(eq + 1);
  }
  if (opts.header && !opts['java-headers']) throw new Error('--header only takes effect with --java-headers');
} catch (err) {
  process.stderr.write('bolt-client: ' + err.message + '\n');
  process.exit(2);
}

const logger = makeLogger('bolt-client', opts.verbose);

// --tls-ca: the client's connections go through tls.connect (verifying the server's
// certificate against the CA, for --tls-name, default localhost; --tls-cert and
// --tls-key add a client certificate). sofa-rpc-node opens its sockets with
// net.connect(port, host) and waits for 'connect': a TLS socket stands in, and says
// 'connect' once its handshake is done.
if (opts['tls-ca']) {
  const net = require('net');
  const tls = require('tls');
  const fs = require('fs');
  const plainConnect = net.connect;
  net.connect = function(port, host) {
    if (typeof port === 'object') return plainConnect.apply(net, arguments);
    const socket = tls.connect({
      port: Number(port),
      host,
      servername: opts['tls-name'] || 'localhost',
      ca: fs.readFileSync(opts['tls-ca']),
      cert: opts['tls-cert'] ? fs.readFileSync(opts['tls-cert']) : undefined,
      key: opts['tls-key'] ? fs.readFileSync(opts['tls-key']) : undefined,
    });
    socket.once('secureConnect', () => socket.emit('connect'));
    return socket;
  };
}

// Record the first request frame's fixed header as it left the encoder, and
// every response/heartbeat ack status, via the decode tap.
installDecodeTap();

// Java-style header map. sofa-bolt-node (hessian2) writes only {service}; the
// Java SOFARPC client (SofaRpcSerialization.serializeHeader) writes
// sofa_head_method_name, sofa_head_target_service, sofa_head_target_app and the
// request props flattened (which include `service`).
if (opts['java-headers']) {
  const RpcRequestCommand = require('sofa-bolt-node/lib/protocol/rpc_req_cmd');
  const SimpleMapSerializer = require('sofa-bolt-node/lib/simple_map_serializer');
  const { flatCopyTo } = require('sofa-bolt-node/lib/utils');
  RpcRequestCommand.prototype.serializeHeader = function(byteBuffer) {
    const o = this.obj;
    const headers = {};
    headers.sofa_head_method_name = o.methodName;
    headers.sofa_head_target_service = o.serverSignature;
    if (o.targetAppName) headers.sofa_head_target_app = o.targetAppName;
    if (o.requestProps) flatCopyTo('', o.requestProps, headers);
    if (!headers.service) headers.service = o.serverSignature;
    byteBuffer.put(SimpleMapSerializer.encode(headers));
  };
}

const DynamicConfig = require('sofa-rpc-node/lib/client/dynamic_config');
// The client-side circuit breaker would turn a run of error responses into
// local RpcCircuitBreakerError after 20 calls; fault isolation would drop the
// address. Both hide what the proxy answered, so switch them off.
DynamicConfig.instance.circuitBreaker.forceClosed = true;
DynamicConfig.instance.faultTolerance.regulationEffective = false;
DynamicConfig.instance.faultTolerance.degradeEffective = false;

const { RpcClient } = require('sofa-rpc-node').client;
const nextId = require('sofa-rpc-node/lib/client/utils').nextId;

const svc = splitService(opts.service);
const MAX_ANSWER_KEYS = 50;

const summary = {
  ok: 0,
  errors: {},
  error_samples: {},
  answers: {},
  backends: {},
  sent: 0,
  count: opts.count,
  proto: opts.proto,
  target: opts.target,
  service: opts.service,
  method: opts.method,
  elapsed_ms: 0,
  calls_per_sec: 0,
};

function argsFor(i) {
  if (opts.argsTemplate) {
    const subst = v => {
      if (v === '$i') return i;
      if (typeof v === 'string') return v.split('$i').join(String(i));
      if (Array.isArray(v)) return v.map(subst);
      return v;
    };
    return opts.argsTemplate.map(subst);
  }
  switch (opts.method) {
    case 'plus': return [ i, i + 1 ];
    case 'sayHello': return [ 'strait' ];
    case 'echo': return [ 'echo-' + i ];
    case 'sleep': return [ 10 ];
    case 'note': return [ 'n' + i ];
    case 'fail': return [ 'boom' ];
    default: return [];
  }
}

// returns null if the answer is right, else a description
function verify(args, answer) {
  switch (opts.method) {
    case 'plus':
      return answer === args[0] + args[1] ? null : `plus(${args[0]},${args[1]}) returned ${JSON.stringify(answer)}`;
    case 'sayHello':
      return typeof answer === 'string' && answer.startsWith('hello ' + args[0] + ' from ') ? null : 'sayHello returned ' + JSON.stringify(answer);
    case 'echo':
      return JSON.stringify(answer) === JSON.stringify(args[0]) ? null : `echo(${JSON.stringify(args[0])}) returned ${JSON.stringify(answer)}`;
    case 'whoami':
      return typeof answer === 'string' && answer ? null : 'whoami returned ' + JSON.stringify(answer);
    default:
      return null;
  }
}

function backendOf(answer) {
  if (typeof answer !== 'string') return null;
  if (opts.method === 'whoami') return answer;
  if (opts.method === 'where') return answer.split('|')[0];
  const m = / (?:from|by) (\S+)$/.exec(answer);
  return m ? m[1] : null;
}

function countError(key, message) {
  summary.errors[key] = (summary.errors[key] || 0) + 1;
  if (!summary.error_samples[key]) summary.error_samples[key] = message;
}

function errorKey(err) {
  if (err && err.boltStatus) return 'status_' + err.boltStatus;
  return (err && err.name) || 'Error';
}

// plus/echo answers differ on every call and are verified one by one: count
// them under "<verified per call>" instead of listing thousands of keys.
const PER_CALL = opts.argsTemplate ? false : (opts.method === 'plus' || opts.method === 'echo');
function recordAnswer(answer) {
  if (PER_CALL) {
    summary.answers['<verified per call>'] = (summary.answers['<verified per call>'] || 0) + 1;
    return;
  }
  let key = typeof answer === 'string' ? answer : JSON.stringify(answer);
  if (key === undefined) key = 'undefined';
  if (!(key in summary.answers) && Object.keys(summary.answers).length >= MAX_ANSWER_KEYS) key = '<other>';
  summary.answers[key] = (summary.answers[key] || 0) + 1;
  const b = backendOf(answer);
  if (b) summary.backends[b] = (summary.backends[b] || 0) + 1;
}

async function main() {
  const client = new RpcClient({ logger, protocol: protocolFor(opts.proto) });
  client.on('error', err => logger.warn('client error: %s', err && err.message));
  const consumer = client.createConsumer({
    interfaceName: svc.interfaceName,
    version: svc.version,
    serverHost: opts.target,
    targetAppName: opts['target-app'] || (opts['java-headers'] ? 'strait-interop' : undefined),
    responseTimeout: opts.timeout,
  });
  await consumer.ready();

  const requestProps = opts['java-headers'] ? Object.assign({ service: consumer.id }, opts.extraHeaders) : undefined;

  // One connection per address: get it up front (heartbeats and oneway go on it).
  let conn;
  try {
    conn = await consumer.getConnection(consumer.createRequest(opts.method, [], {}));
  } catch (err) {
    countError(err.name || 'ConnectError', err.message);
  }
  if (!conn) {
    if (!Object.keys(summary.errors).length) countError('RpcNoProviderError', 'no connection to ' + opts.target);
    return;
  }

  const oneway = { ids: new Set(), responses: 0 };
  conn._decoder.on('response', res => {
    if (oneway.ids.has(res.packetId)) oneway.responses++;
  });

  if (opts.heartbeat) {
    const sentIds = new Set();
    let acks = 0;
    let foreign = 0;
    const wires = [];
    let resolveAll;
    const allAcked = new Promise(r => { resolveAll = r; });
    conn._decoder.on('heartbeat_ack', hb => {
      if (sentIds.delete(hb.packetId)) {
        acks++;
        if (wires.length < 1) wires.push(hb.wire);
        if (acks === opts.heartbeats) resolveAll();
      } else {
        foreign++;
      }
    });
    for (let k = 0; k < opts.heartbeats; k++) {
      const id = nextId();
      sentIds.add(id);
      conn._encoder.writeHeartbeat(id, { timeout: 3000, clientUrl: conn._clientUrl });
    }
    if (opts.heartbeats > 0) {
      await Promise.race([ allAcked, new Promise(r => setTimeout(r, opts.timeout)) ]);
    }
    // Frames the encoder produced, not --heartbeats: a test's "heartbeats were sent"
    // is then evidence rather than this script's default.
    summary.heartbeat_sent = heartbeatsEncoded;
    summary.heartbeat_wire = firstHeartbeatWire;
    summary.heartbeat_acks = acks;
    summary.heartbeat_unmatched_acks = foreign;
    summary.heartbeat_ack_wire = wires[0] || null;
  }

  const start = Date.now();
  let next = 0;

  if (opts.oneway) {
    // sofa-rpc-node's consumer has no oneway API: build the request the same way
    // and hand it to the connection's sofa-bolt-node encoder with oneway=true
    // (the encoder then writes type 0x02 REQUEST_ONEWAY).
    summary.oneway_sent = 0;
    await new Promise(resolve => {
      let pending = 0;
      const pump = () => {
        while (next < opts.count && pending < opts.concurrency) {
          const i = next++;
          const req = consumer.createRequest(opts.method, argsFor(i), { requestProps });
          req.oneway = true;
          const id = nextId();
          oneway.ids.add(id);
          pending++;
          summary.sent++;
          conn._encoder.writeRequest(id, req, err => {
            pending--;
            if (err) countError(err.name || 'WriteError', err.message);
            else summary.oneway_sent++;
            if (next >= opts.count && pending === 0) resolve();
            else pump();
          });
        }
        if (opts.count === 0) resolve();
      };
      pump();
    });
    summary.elapsed_ms = Date.now() - start;
    // wait a little for (unexpected) answers to the oneway requests
    await new Promise(r => setTimeout(r, opts['oneway-wait'] === undefined ? 500 : opts['oneway-wait']));
    summary.oneway_responses = oneway.responses;
    if (opts['then-calls']) {
      // The consumer keeps one connection per address: these go over `conn`.
      summary.then_ok = 0;
      summary.then_errors = {};
      for (let i = 0; i < opts['then-calls']; i++) {
        try {
          const answer = await consumer.invoke('plus', [ i, 1 ], { requestProps });
          if (answer === i + 1) summary.then_ok++;
          else summary.then_errors.wrong_answer = (summary.then_errors.wrong_answer || 0) + 1;
        } catch (err) {
          const k = errorKey(err);
          summary.then_errors[k] = (summary.then_errors[k] || 0) + 1;
        }
      }
      const again = await consumer.getConnection(consumer.createRequest('plus', [], {}));
      summary.then_same_connection = again === conn;
    }
  } else {
    const worker = async () => {
      while (next < opts.count) {
        const i = next++;
        const args = argsFor(i);
        summary.sent++;
        try {
          const answer = await consumer.invoke(opts.method, args, { requestProps });
          const bad = verify(args, answer);
          if (bad) {
            countError('wrong_answer', bad);
          } else {
            summary.ok++;
          }
          recordAnswer(answer);
        } catch (err) {
          countError(errorKey(err), (err && err.message || String(err)).slice(0, 300));
        }
      }
    };
    const workers = [];
    for (let w = 0; w < opts.concurrency; w++) workers.push(worker());
    await Promise.all(workers);
    summary.elapsed_ms = Date.now() - start;
  }
  summary.calls_per_sec = summary.elapsed_ms > 0 ? Math.round(summary.sent * 1000 / summary.elapsed_ms) : summary.sent;
  summary.request_wire = firstRequestWire;
}

// Capture the fixed header of the first request and heartbeat frames written (proves
// ver1/switch and the CRC trailer).
let firstRequestWire = null;
let firstHeartbeatWire = null;
let heartbeatsEncoded = 0;
{
  const { frameInfo } = require('./lib/common');
  const ProtocolEncoder = require('sofa-bolt-node/lib/encoder');
  const origEncode = ProtocolEncoder.prototype._requestEncode;
  ProtocolEncoder.prototype._requestEncode = function(packet) {
    const buf = origEncode.call(this, packet);
    if (!firstRequestWire) {
      firstRequestWire = frameInfo(buf);
      firstRequestWire.header_map = require('sofa-bolt-node/lib/simple_map_serializer').decode(
        buf.slice(firstRequestWire.fixedLen + firstRequestWire.classLen, firstRequestWire.fixedLen + firstRequestWire.classLen + firstRequestWire.headerLen));
    }
    return buf;
  };
  const origHeartbeat = ProtocolEncoder.prototype._heartbeatEncode;
  ProtocolEncoder.prototype._heartbeatEncode = function(packet) {
    const buf = origHeartbeat.call(this, packet);
    heartbeatsEncoded++;
    if (!firstHeartbeatWire) firstHeartbeatWire = frameInfo(buf);
    return buf;
  };
}

main().then(() => {
  emit(summary);
  flushAndExit(0);
}, err => {
  process.stderr.write('bolt-client: internal failure: ' + (err && err.stack || err) + '\n');
  summary.harness_error = String(err && err.message || err);
  emit(summary);
  flushAndExit(1);
});
