'use strict';

// Shared helpers for the interop peer programs: argument parsing, a stderr
// logger for sofa-rpc-node, a Bolt protocol wrapper that selects v1 / v2 /
// v2+CRC, and a decode tap that exposes the raw frame fields (response status,
// oneway type byte, ver1, switch) which sofa-bolt-node does not surface.

const bolt = require('sofa-bolt-node');
const boltProtocol = require('sofa-bolt-node/lib/protocol');
const boltUtils = require('sofa-bolt-node/lib/utils');

function parseArgs(argv, spec) {
  // spec: { name: 'string' | 'int' | 'bool' | 'list' (repeatable) }
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error('unexpected argument: ' + a);
    let key = a.slice(2);
    let val;
    const eq = key.indexOf('=');
    if (eq >= 0) {
      val = key.slice(eq + 1);
      key = key.slice(0, eq);
    }
    const type = spec[key];
    if (!type) throw new Error('unknown flag: --' + key);
    if (type === 'bool') {
      out[key] = val === undefined ? true : !/^(0|false|no)$/i.test(val);
      continue;
    }
    if (val === undefined) {
      if (i + 1 >= argv.length) throw new Error('flag --' + key + ' needs a value');
      val = argv[++i];
    }
    if (type === 'int') {
      const n = Number(val);
      if (!Number.isInteger(n)) throw new Error('flag --' + key + ' needs an integer, got ' + val);
      out[key] = n;
    } else if (type === 'list') {
      (out[key] = out[key] || []).push(val);
    } else {
      out[key] = val;
    }
  }
  return out;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function makeLogger(prefix, verbose) {
  const fmt = require('util').format;
  const write = level => (...args) => {
    process.stderr.write(`[${prefix}] ${level} ${fmt(...args)}\n`);
  };
  return {
    debug: verbose ? write('DEBUG') : () => {},
    info: verbose ? write('INFO') : () => {},
    warn: write('WARN'),
    error: write('ERROR'),
  };
}

// proto name -> encoder settings. sofa-bolt-node's encoder ignores these in its
// constructor options, so they are set on the instance (getters/setters exist).
const PROTOS = {
  v1: { protocolType: 'bolt', boltVersion: 1, crcEnable: false },
  v2: { protocolType: 'bolt2', boltVersion: 1, crcEnable: false },
  v2crc: { protocolType: 'bolt2', boltVersion: 2, crcEnable: true },
};

// A drop-in for require('sofa-bolt-node') as the `protocol` option of
// sofa-rpc-node's RpcClient: same encoder/decoder, but requests and heartbeats
// go out in the chosen Bolt version.
function protocolFor(protoName) {
  const p = PROTOS[protoName];
  if (!p) throw new Error('unknown --proto ' + protoName + ' (v1|v2|v2crc)');
  return {
    name: 'bolt',
    encoder(opts) {
      const enc = bolt.encoder(opts);
      enc.protocolType = p.protocolType;
      enc.boltVersion = p.boltVersion;
      enc.crcEnable = p.crcEnable;
      return enc;
    },
    decoder(opts) {
      return bolt.decoder(opts);
    },
  };
}

// Parse the fixed part of one complete Bolt frame (v1 or v2).
function frameInfo(buf) {
  const v2 = buf[0] === 0x02;
  const type = buf[v2 ? 2 : 1];
  const info = {
    proto: buf[0],
    type,
    cmdcode: buf.readUInt16BE(v2 ? 3 : 2),
    id: buf.readUInt32BE(v2 ? 6 : 5),
    codec: buf[v2 ? 10 : 9],
  };
  if (v2) {
    info.ver1 = buf[1];
    info.switch = buf[11];
  }
  let off = v2 ? 12 : 10;
  if (type === 0) {
    info.status = buf.readUInt16BE(off);
    off += 2;
  } else {
    info.timeout = buf.readInt32BE(off);
    off += 4;
  }
  info.classLen = buf.readUInt16BE(off);
  info.headerLen = buf.readUInt16BE(off + 2);
  info.contentLen = buf.readUInt32BE(off + 4);
  info.fixedLen = off + 8;
  // What follows the content is the v2 CRC32 trailer. Checked here with the peer's own
  // CRC (sofa-bolt-node's utils.crc32), so a test can prove a frame's version on the
  // wire instead of trusting the options it was written with.
  const end = info.fixedLen + info.classLen + info.headerLen + info.contentLen;
  info.length = buf.length;
  info.crc_trailer = buf.length > end;
  info.crc_ok = info.crc_trailer && buf.length === end + 4
    ? boltUtils.crc32(buf.slice(0, end)) === buf.readInt32BE(end)
    : null;
  return info;
}

let tapInstalled = false;
// Wrap sofa-bolt-node's frame decoder (decoder.js calls protocol.decode through
// the module object, so replacing the export takes effect for every decoder).
// Adds `wire` (frame fields) to each decoded packet, `oneway` to oneway
// requests, and `boltStatus` to the Error the library builds for a non-zero
// response status (the library itself drops the status number).
function installDecodeTap(onFrame) {
  if (tapInstalled) return;
  tapInstalled = true;
  const orig = boltProtocol.decode;
  boltProtocol.decode = (buf, options) => {
    const wire = frameInfo(buf);
    const ret = orig(buf, options);
    ret.wire = wire;
    if (wire.type === 2) ret.oneway = true;
    if (wire.type === 0 && wire.status && ret.data && ret.data.error) {
      ret.data.error.boltStatus = wire.status;
    }
    if (onFrame) onFrame(ret, buf);
    return ret;
  };
}

function splitService(s) {
  // "interface:version[:uniqueId]" -> { interfaceName, version, uniqueId }
  const parts = s.split(':');
  return {
    interfaceName: parts[0],
    version: parts.length > 1 ? parts[1] : '1.0',
    uniqueId: parts.length > 2 ? parts.slice(2).join(':') : undefined,
  };
}

function flushAndExit(code) {
  process.stdout.write('', () => process.exit(code));
}

module.exports = {
  parseArgs,
  emit,
  makeLogger,
  protocolFor,
  PROTOS,
  frameInfo,
  installDecodeTap,
  splitService,
  flushAndExit,
};
