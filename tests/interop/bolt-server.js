#!/usr/bin/env node
'use strict';

// A real sofa-rpc-node RpcServer (no registry) serving test services over Bolt.
// Answers the protocol version it receives (v1, v2, v2+CRC).
//
//   node bolt-server.js --port P --name NAME [--services svc1,svc2] [--host 127.0.0.1]
//                       [--answer-oneway] [--log-requests] [--quiet] [--verbose]
//
// stdout (JSON lines): {"event":"listening","port":P,...} once ready, then
// {"event":"connection",...}, {"event":"oneway",...} per oneway request,
// {"event":"heartbeat",...} per heartbeat, {"event":"stopped","stats":{...}} on SIGTERM/SIGINT;
// with --log-requests also {"event":"request",...} per request as it arrives (so a test can
// wait until its calls reached the server instead of sleeping).

const { parseArgs, emit, makeLogger, installDecodeTap, splitService, flushAndExit } = require('./lib/common');

let opts;
try {
  opts = parseArgs(process.argv.slice(2), {
    port: 'int', name: 'string', services: 'string', host: 'string',
    'answer-oneway': 'bool', 'log-requests': 'bool', quiet: 'bool', verbose: 'bool',
  });
  if (opts.port === undefined) throw new Error('--port is required (0 = pick a free port)');
  if (!opts.name) throw new Error('--name is required');
} catch (err) {
  process.stderr.write('bolt-server: ' + err.message + '\n');
  process.exit(2);
}

const NAME = opts.name;
const HOST = opts.host || '127.0.0.1';
const SERVICES = (opts.services || 'com.alipay.test.TestService:1.0').split(',').map(s => s.trim()).filter(Boolean);
const logger = makeLogger('bolt-server ' + NAME, opts.verbose);

const stats = { name: NAME, requests: 0, oneway: 0, heartbeats: 0, connections: 0, byMethod: {} };

// The decode tap marks oneway requests (type byte 0x02); sofa-bolt-node's own
// decoder drops that information.
installDecodeTap();

const { RpcServer, RpcResponse, RpcConnection } = require('sofa-rpc-node').server;

class CountingConnection extends RpcConnection {
  _handleHeartbeat(hb) {
    stats.heartbeats++;
    if (!opts.quiet) {
      emit({ event: 'heartbeat', count: stats.heartbeats, id: hb.packetId, wire: hb.wire, remote: this.remoteAddress });
    }
    super._handleHeartbeat(hb);
  }
}

// sofa-rpc-node's RpcServer answers every request, oneway included. The Java
// server never answers a oneway request; we do the same unless --answer-oneway.
class OnewayAwareResponse extends RpcResponse {
  async send(res) {
    if (this.req.oneway && !opts['answer-oneway']) return;
    return super.send(res);
  }
}

class LoopbackRpcServer extends RpcServer {
  _startServer(port) {
    // same as RpcServer#_startServer but bound to HOST (loopback by default)
    const net = require('net');
    const server = net.createServer();
    server.once('error', err => { this.emit('error', err); });
    server.on('connection', socket => { this._handleSocket(socket); });
    server.listen(port, HOST, () => {
      this.publishPort = server.address().port;
    });
    return server;
  }
}

const server = new LoopbackRpcServer({
  appName: NAME,
  logger,
  port: opts.port,
  responseClass: OnewayAwareResponse,
  connectionClass: CountingConnection,
  killTimeout: 1000,
});

server.on('error', err => { logger.warn('server error: %s', err && err.message); });
server.on('connection', conn => {
  stats.connections++;
  if (!opts.quiet) emit({ event: 'connection', remote: conn.remoteAddress, count: stats.connections });
});
server.on('request', ({ req }) => {
  stats.requests++;
  const m = req.data.serverSignature + '#' + req.data.methodName;
  stats.byMethod[m] = (stats.byMethod[m] || 0) + 1;
  if (opts['log-requests']) emit({ event: 'request', count: stats.requests, method: m });
  if (req.oneway) {
    stats.oneway++;
    if (!opts.quiet) {
      emit({ event: 'oneway', count: stats.oneway, service: req.data.serverSignature, method: req.data.methodName, args: req.data.args, wire: req.wire });
    }
  }
});

function delegateFor(serviceId) {
  // methods must be async functions (RpcService checks is.asyncFunction)
  return {
    async plus(a, b) { return a + b; },
    async sayHello(name) { return 'hello ' + name + ' from ' + NAME; },
    async echo(x) { return x; },
    async whoami() { return NAME; },
    async where() { return NAME + '|' + serviceId; },
    async stats() { return JSON.stringify(stats); },
    async sleep(ms) {
      await new Promise(r => setTimeout(r, Number(ms) || 0));
      return 'slept ' + ms + ' from ' + NAME;
    },
    async fail(msg) { throw new Error('fail from ' + NAME + ': ' + msg); },
    async note(x) { return 'noted ' + x + ' by ' + NAME; }, // convenient oneway target
  };
}

for (const s of SERVICES) {
  const svc = splitService(s);
  const id = svc.uniqueId ? svc.interfaceName + ':' + svc.version + ':' + svc.uniqueId : svc.interfaceName + ':' + svc.version;
  server.addService({ interfaceName: svc.interfaceName, version: svc.version, uniqueId: svc.uniqueId }, delegateFor(id));
}

let stopping = false;
function stop(sig) {
  if (stopping) return;
  stopping = true;
  emit({ event: 'stopped', signal: sig, stats });
  // do not wait for client connections to drain: exit promptly
  flushAndExit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

server.start().then(() => {
  emit({ event: 'listening', port: server._servers[0].address().port, host: HOST, name: NAME, services: SERVICES, pid: process.pid });
}, err => {
  process.stderr.write('bolt-server: start failed: ' + (err && err.stack || err) + '\n');
  process.exit(1);
});
