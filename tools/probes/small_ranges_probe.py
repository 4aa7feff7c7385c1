#!/usr/bin/env python3
"""Small and odd-sized port ranges, as distributions (issue 11 item 19). Python 3 stdlib only.

For ranges of 2..13 ports (40000..40000+n-1) and four ways of taking ports, run many trials,
each in a fresh network namespace, and record the ports each call got:
  bind0        n+1 x socket(AF_INET) + bind(127.0.0.1:0)
  bind0_reuse  the same with SO_REUSEADDR set before the bind
  listen       n+1 x socket(AF_INET) + listen(8) with no bind (inet_autobind)
  connect      a listener on 127.0.0.1:D (D unique per trial, outside the range, so trials do not
               share a table_perturb cell), then n+1 blocking connects to it
One process: for every trial it fork()s a child that unshare(CLONE_NEWNET)s through libc,
checks it has only `lo`, sets lo up (ioctl), writes ip_local_port_range in its own namespace,
runs the calls and sends back one JSON line through a pipe. Nothing is written in the host
namespace. Needs root.

  python3 tools/probes/small_ranges_probe.py [--trials 200] [--out tests/live/small_ranges.json]
"""
import argparse
import ctypes
import errno
import fcntl
import json
import os
import socket
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
LOW = 40000
KINDS = ('bind0', 'bind0_reuse', 'listen', 'connect')


def enter_fresh_netns():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), 'unshare(CLONE_NEWNET)')
    with open('/proc/net/dev') as f:
        ifaces = {line.split(':')[0].strip() for line in f.readlines()[2:]}
    if not ifaces <= {'lo', 'tunl0', 'sit0', 'ip6tnl0', 'gre0', 'gretap0', 'erspan0', 'ip6gre0',
                      'ip_vti0', 'ip6_vti0'}:
        raise SystemExit('not in a fresh namespace: %s' % sorted(ifaces))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = struct.pack('16sH14s', b'lo', 0, b'')
    flags = struct.unpack('16sH14s', fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack('16sH14s', b'lo', flags | IFF_UP, b''))
    s.close()


def trial(kind, n, dport):
    with open('/proc/sys/net/ipv4/ip_local_port_range', 'w') as f:
        f.write('%d %d' % (LOW, LOW + n - 1))
    keep, out = [], []
    if kind == 'connect':
        l = socket.socket()
        l.bind(('127.0.0.1', dport))
        l.listen(64)
        keep.append(l)
    for _ in range(n + 1):
        s = socket.socket()
        keep.append(s)
        try:
            if kind == 'bind0':
                s.bind(('127.0.0.1', 0))
            elif kind == 'bind0_reuse':
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(('127.0.0.1', 0))
            elif kind == 'listen':
                s.listen(8)
            else:
                s.connect(('127.0.0.1', dport))
            out.append(s.getsockname()[1])
        except OSError as e:
            out.append(errno.errorcode.get(e.errno, str(e.errno)))
    return out


def run_one(kind, n, dport):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            enter_fresh_netns()
            res = trial(kind, n, dport)
            os.write(w, json.dumps(res).encode())
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - report and leave the child
            os.write(w, json.dumps({'error': repr(e)}).encode())
            os._exit(1)
    os.close(w)
    data = b''
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    res = json.loads(data)
    if isinstance(res, dict):
        raise SystemExit('%s n=%d: %s' % (kind, n, res['error']))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--trials', type=int, default=200)
    ap.add_argument('--sizes', default='2-13')
    ap.add_argument('--kinds', default=','.join(KINDS))
    ap.add_argument('--out', default='tests/live/small_ranges.json')
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit('needs root (unshare)')
    lo, hi = (int(x) for x in a.sizes.split('-'))
    t0 = time.time()
    doc = {'kernel': os.uname().release, 'date': time.strftime('%Y-%m-%d', time.gmtime()),
           'probe': 'tools/probes/small_ranges_probe.py', 'range_low': LOW, 'trials': a.trials,
           'note': 'each trial in a fresh netns; calls[i] = port the i-th call got, or its errno; '
                   'connect trials use destination 127.0.0.1:(10000 + a per-trial counter)',
           'runs': {}}
    dport = 10000
    for kind in a.kinds.split(','):
        for n in range(lo, hi + 1):
            runs = []
            for _ in range(a.trials):
                dport += 1
                runs.append(run_one(kind, n, dport))
            doc['runs']['%s/%d' % (kind, n)] = runs
            print('%s n=%d done (%.0f s)' % (kind, n, time.time() - t0), file=sys.stderr, flush=True)
    with open(a.out, 'w') as f:
        f.write('{\n')
        items = [(k, v) for k, v in doc.items() if k != 'runs']
        for k, v in items:
            f.write('  %s: %s,\n' % (json.dumps(k), json.dumps(v)))
        f.write('  "runs": {\n')
        keys = list(doc['runs'])
        for i, k in enumerate(keys):
            f.write('    %s: [%s]%s\n' % (json.dumps(k), ', '.join(json.dumps(r, separators=(',', ':'))
                                                              for r in doc['runs'][k]),
                                       ',' if i + 1 < len(keys) else ''))
        f.write('  }\n}\n')


if __name__ == '__main__':
    main()
