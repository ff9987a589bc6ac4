#!/usr/bin/env python3
"""A second, independent Dubbo 2 consumer: dubbo-ssl-python's DubboClient, direct host:port.

    PYTHONPATH=tests/interop/pydeps python3 tests/interop/dubbo_client.py --target HOST:PORT
        [--service com.example.DemoService] [--method sayHello] [--version V] [--group G]
        [--dubbo-version 2.4.10] [--args JSON-array] [--attachment k=v ...]
        [--count 1] [--concurrency 1] [--timeout 3000] [--heartbeats 0] [--per-call]

The library keeps its default dubbo version 2.4.10: it only understands result flags 0/1/2,
and a Dubbo provider answers 2.4.10 with flag 1 (Version.isSupportResponseAttachment).
Calls run on `--concurrency` threads over the library's one connection per host.

--args: JSON values ("$i" in a string is the call index; exactly "$i" is the integer).
Default ["call-$i"]. --version / --group: sent as null when not given.
--heartbeats N: after the calls, lets the library send its own idle heartbeats (its
`_check_conn`, normally after 60 s idle: the driver lowers TIMEOUT_IDLE to 50 ms and seeds
the per-host miss counter the library forgets to create) until N replies came back.

Error statuses: the library raises DubboResponseException("\\n<body string>") and only logs
the status name; the driver reads the status from the response header (wrapping the pool's
`_parse_head`) and keys errors `status_<n>` with the decoded message. It also adds names for
statuses missing from the library's table (25, 35, 100), which would otherwise wedge its
reader. Other keys: `timeout` (DubboRequestTimeoutException), `wrong_answer`, or the
exception's class name.

The last stdout line is the JSON summary (same shape as dubbo-client.js). Exit 0 when the
harness ran, 2 on bad usage, 1 on an internal failure.
"""

import argparse
import json
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def parse_args(argv):
    p = argparse.ArgumentParser(prog='dubbo_client.py')
    p.add_argument('--target', required=True)
    p.add_argument('--service', default='com.example.DemoService')
    p.add_argument('--method', default='sayHello')
    p.add_argument('--version', default=None)
    p.add_argument('--group', default=None)
    p.add_argument('--dubbo-version', default='2.4.10')
    p.add_argument('--args', default=None)
    p.add_argument('--attachment', action='append', default=[])
    p.add_argument('--count', type=int, default=1)
    p.add_argument('--concurrency', type=int, default=1)
    p.add_argument('--timeout', type=int, default=3000)
    p.add_argument('--heartbeats', type=int, default=0)
    p.add_argument('--per-call', action='store_true')
    p.add_argument('--verbose', action='store_true')
    p.add_argument('--tls-ca', default=None, help='connect over TLS, verifying against this CA')
    try:
        o = p.parse_args(argv)
    except SystemExit as e:
        sys.exit(2 if e.code else 0)
    if ':' not in o.target:
        p.error('--target HOST:PORT')
    o.args_template = json.loads(o.args) if o.args is not None else ['call-$i']
    if not isinstance(o.args_template, list):
        p.error('--args must be a JSON array')
    o.attachments = {}
    for a in o.attachment:
        k, eq, v = a.partition('=')
        if not eq or not k:
            p.error('--attachment needs k=v, got ' + a)
        o.attachments[k] = v
    o.concurrency = max(1, o.concurrency)
    return o


def main():
    opts = parse_args(sys.argv[1:])
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if opts.verbose else logging.CRITICAL)

    from dubbo_ssl.client import DubboClient
    from dubbo_ssl.common import constants
    from dubbo_ssl.common.exceptions import DubboRequestTimeoutException, DubboResponseException
    from dubbo_ssl.connection import connections

    # Statuses the library's table lacks: an unknown one raises KeyError inside its reader.
    for status, name in ((25, 'SERIALIZATION_ERROR'), (35, 'CHANNEL_INACTIVE'),
                         (100, 'SERVER_THREADPOOL_EXHAUSTED_ERROR')):
        constants.response_status_message.setdefault(status, name)

    lock = threading.Lock()
    statuses_by_id = {}  # invoke id -> status of its (error) response
    heartbeat_replies = []  # headers of heartbeat replies seen
    heartbeat_sent = [0]

    pool_cls = type(connections.connection_pool)
    orig_parse_head = pool_cls._parse_head

    def parse_head(self, data, conn):
        flag, status = data[2], data[3]
        if flag & 0x20 and not flag & 0x80:
            with lock:
                heartbeat_replies.append({'flag': flag, 'status': status,
                                          'id': str(int.from_bytes(bytes(data[4:12]), 'big', signed=True)),
                                          'len': int.from_bytes(bytes(data[12:16]), 'big', signed=True)})
        elif status != 20 and not flag & 0x80:
            with lock:
                statuses_by_id[int.from_bytes(bytes(data[4:12]), 'big', signed=True)] = status
        return orig_parse_head(self, data, conn)

    pool_cls._parse_head = parse_head

    orig_write = connections.Connection.write

    def write(self, data):
        if len(data) >= 3 and data[0] == 0xda and data[1] == 0xbb and data[2] & 0x20:
            with lock:
                heartbeat_sent[0] += 1
        return orig_write(self, data)

    connections.Connection.write = write

    # The library's Request draws its id from util.get_invoke_id: wrap it to learn each
    # call's id (threads call it under the library's lock; we keep it per thread).
    from dubbo_ssl.codec import encoder as encoder_mod
    tls = threading.local()
    orig_get_id = encoder_mod.get_invoke_id

    def get_invoke_id():
        i = orig_get_id()
        tls.last_id = i
        return i

    encoder_mod.get_invoke_id = get_invoke_id

    client = DubboClient(opts.service, opts.group, version=opts.version,
                         dubbo_version=opts.dubbo_version, host=opts.target,
                         verify=opts.tls_ca)

    summary = {
        'ok': 0, 'errors': {}, 'error_samples': {}, 'statuses': {}, 'backends': {},
        'sent': 0, 'count': opts.count, 'target': opts.target, 'service': opts.service,
        'method': opts.method, 'version': opts.version, 'group': opts.group,
        'dubbo_version': opts.dubbo_version, 'elapsed_ms': 0, 'calls_per_sec': 0,
    }
    results = []

    def args_for(i):
        def subst(v):
            if v == '$i':
                return i
            if isinstance(v, str):
                return v.replace('$i', str(i))
            if isinstance(v, list):
                return [subst(x) for x in v]
            return v
        return [subst(v) for v in opts.args_template]

    def count_error(key, message):
        summary['errors'][key] = summary['errors'].get(key, 0) + 1
        summary['error_samples'].setdefault(key, message)

    def verify(i, args, answer):
        if opts.method in ('stats', 'nothing'):
            return None
        try:
            d = json.loads(answer)
        except Exception:
            return 'not a JSON description: %r' % (answer,)
        want = {'service': opts.service, 'method': opts.method, 'version': opts.version,
                'group': opts.group, 'args': args}
        for k, v in want.items():
            if d.get(k) != v:
                return 'call %d: %s is %r, sent %r' % (i, k, d.get(k), v)
        return None

    def one(i):
        args = args_for(i)
        r = {'i': i}
        try:
            answer = client.call(opts.method, args, context=dict(opts.attachments) or None,
                                 timeout=opts.timeout / 1000.0)
        except DubboResponseException as e:
            call_id = getattr(tls, 'last_id', None)
            with lock:
                status = statuses_by_id.pop(call_id, None)
            message = str(e).lstrip('\n')
            key = 'status_%d' % status if status is not None else 'DubboResponseException'
            with lock:
                count_error(key, message)
                if status is not None:
                    summary['statuses'][str(status)] = summary['statuses'].get(str(status), 0) + 1
            r.update(error=key, status=status, message=message)
        except DubboRequestTimeoutException as e:
            with lock:
                count_error('timeout', str(e))
            r.update(error='timeout', error_message=str(e))
        except Exception as e:  # noqa: BLE001 - every failure goes in the summary
            key = type(e).__name__
            with lock:
                count_error(key, str(e)[:300])
            r.update(error=key, error_message=str(e)[:300])
        else:
            bad = verify(i, args, answer)
            with lock:
                if bad:
                    count_error('wrong_answer', bad)
                    r['error'] = 'wrong_answer'
                else:
                    summary['ok'] += 1
                try:
                    d = json.loads(answer)
                    if isinstance(d, dict) and d.get('backend'):
                        summary['backends'][d['backend']] = summary['backends'].get(d['backend'], 0) + 1
                except Exception:
                    pass
            r['answer'] = answer
        return r

    start = time.time()
    summary['sent'] = opts.count
    with ThreadPoolExecutor(max_workers=opts.concurrency) as ex:
        for r in ex.map(one, range(opts.count)):
            if opts.per_call:
                results.append(r)
    summary['elapsed_ms'] = int((time.time() - start) * 1000)
    summary['calls_per_sec'] = int(opts.count * 1000 / summary['elapsed_ms']) if summary['elapsed_ms'] else opts.count

    if opts.heartbeats > 0:
        # Let the library's own idle check send heartbeats (TIMEOUT_IDLE is imported by
        # name into the connections module; the per-host miss counter is never created by
        # the library for direct connections, so seed it).
        pool = connections.connection_pool
        pool._get_connection(opts.target, None)
        pool.client_heartbeats.setdefault(opts.target, 0)
        connections.TIMEOUT_IDLE = 0.05
        deadline = time.time() + opts.timeout / 1000.0
        while time.time() < deadline:
            with lock:
                if len(heartbeat_replies) >= opts.heartbeats:
                    break
            time.sleep(0.01)
        connections.TIMEOUT_IDLE = 60
        with lock:
            summary['heartbeat_sent'] = heartbeat_sent[0]
            summary['heartbeat_acks'] = list(heartbeat_replies)

    if opts.per_call:
        summary['results'] = results
    return summary


if __name__ == '__main__':
    try:
        out = main()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print(json.dumps({'harness_error': str(e)}), flush=True)
        sys.exit(1)
    print(json.dumps(out), flush=True)
    sys.exit(0)
