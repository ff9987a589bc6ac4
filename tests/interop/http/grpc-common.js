'use strict';
// Shared by grpc-server.js and grpc-client.js: loads interop.proto with @grpc/proto-loader
// (from tests/interop/node_modules), JSON-lines output, argument parsing, stop handling.

const path = require('path');

const MODULES = path.join(__dirname, '..', 'node_modules');

function load() {
  const grpc = require(path.join(MODULES, '@grpc/grpc-js'));
  const protoLoader = require(path.join(MODULES, '@grpc/proto-loader'));
  const def = protoLoader.loadSync(path.join(__dirname, 'interop.proto'), {
    keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def);
  return { grpc, Interop: pkg.strait.interop.Interop };
}

function emit(obj) {
  const sorted = (v) => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
    }
    return v;
  };
  process.stdout.write(JSON.stringify(sorted(obj)) + '\n');
}

// --key value / --flag; `defaults` gives the known keys (string values).
function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { console.error(`unexpected argument ${a}`); process.exit(2); }
    const key = a.slice(2);
    if (!(key in defaults)) { console.error(`unknown option ${a}`); process.exit(2); }
    out[key] = argv[++i];
    if (out[key] === undefined) { console.error(`${a} needs a value`); process.exit(2); }
  }
  return out;
}

// Calls `fn(reason)` once, on SIGTERM/SIGINT or when stdin closes.
function onStop(fn) {
  let fired = false;
  const fire = (reason) => { if (!fired) { fired = true; fn(reason); } };
  process.on('SIGTERM', () => fire('SIGTERM'));
  process.on('SIGINT', () => fire('SIGINT'));
  process.stdin.on('end', () => fire('stdin-closed'));
  process.stdin.on('error', () => fire('stdin-closed'));
  process.stdin.resume();
}

module.exports = { load, emit, parseArgs, onStop };
