#!/usr/bin/env python3
"""bind_zero_order.py -- live-kernel probe: which ports bind(addr:0) and connect() pick,
and in what order, in small local port ranges (IPv4 TCP, loopback).

Experiments (every run in its own fresh netns via unshare -n; runs are sequential so
connect() sequences toward 127.0.0.1:5000 do not interleave):
  bind0_plain       range 40000-40011: bind(127.0.0.1:0) on new sockets (kept open) until
                    failure -> port sequence + final errno; 20 runs
  bind0_reuseaddr   same, every socket with SO_REUSEADDR; 20 runs
  autobind_reuse    range 40000-40000, ip_autobind_reuse 0 and 1: two sockets bind(127.0.0.1:0)
                    (both SO_REUSEADDR; variants: first one listening, both also SO_REUSEPORT,
                    second without SO_REUSEADDR, first bound 0.0.0.0)
  connects_hold     range 40000-40009: 10 connects to 127.0.0.1:5000, an 11th, then bind(0)
                    on 127.0.0.1 / 0.0.0.0 / 127.0.0.2 (+SO_REUSEADDR variant); 5 runs
  bind3_connect     range 40000-40009: 3 x bind(127.0.0.1:0) kept (variant: 127.0.0.2:0),
                    then connect to 127.0.0.1:5000 until failure -> count; 5 runs each
  plain_connect     range 40000-40009: connect() to 127.0.0.1:5000 until failure; 10 runs
  no_port_connect   same, each socket first bind(127.0.0.1:0) with IP_BIND_ADDRESS_NO_PORT
                    (getsockname port recorded, expected 0); 10 runs
  sockrange_connect netns range 40000-40011, IP_LOCAL_PORT_RANGE 40002-40005 on each socket:
                    connect() until failure; 10 runs
  sockrange_bind0   same socket range: bind(127.0.0.1:0) until failure, plain and
                    SO_REUSEADDR; 20 runs each
Summary per sequence: fraction of odd ports in the first half of the sequence, whether the
first half lies entirely in the lower half of the (effective) range, parity of the first
half, consecutive differences.

Run (as root; ~10 s; writes tests/live/bind_zero_order.json):
    python3 tools/probes/bind_zero_order.py [--out FILE]
One run by hand:  unshare -n python3 tools/probes/bind_zero_order.py --child EXPERIMENT
"""
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsprobe as N  # noqa: E402

DST = ('127.0.0.1', 5000)
MAXN = 30  # hard bound on any loop


def rng(lo, hi):
    N.sysctl('net.ipv4.ip_local_port_range', '%d %d' % (lo, hi))


def listener():
    lst = socket.socket()
    lst.bind(DST)
    lst.listen(128)
    return lst


def bind0_loop(addr, opts=(), sockrange=None):
    keep, seq, err = [], [], None
    for _ in range(MAXN):
        s = socket.socket()
        N.set_opts(s, list(opts))
        if sockrange:
            s.setsockopt(socket.SOL_IP, N.IP_LOCAL_PORT_RANGE,
                         struct.pack('=I', sockrange[0] | sockrange[1] << 16))
        r = N.try_call(s.bind, (addr, 0))
        if r != 'OK':
            err = r
            s.close()
            break
        seq.append(s.getsockname()[1])
        keep.append(s)
    return seq, err, keep


def connect_loop(prep=None):
    keep, seq, err, extra = [], [], None, []
    for _ in range(MAXN):
        s = socket.socket()
        s.settimeout(3)
        if prep:
            extra.append(prep(s))
        r = N.try_call(s.connect, DST)
        if r != 'OK':
            err = r
            s.close()
            break
        seq.append(s.getsockname()[1])
        keep.append(s)
    return seq, err, keep, extra


def x_bind0(opts):
    rng(40000, 40011)
    seq, err, keep = bind0_loop('127.0.0.1', opts)
    return dict(range=[40000, 40011], seq=seq, final_errno=err)


def x_autobind_reuse():
    rng(40000, 40000)
    res = []
    variants = [
        ('both SO_REUSEADDR', ['SO_REUSEADDR'], ['SO_REUSEADDR'], '127.0.0.1', False),
        ('both SO_REUSEADDR, first listening', ['SO_REUSEADDR'], ['SO_REUSEADDR'], '127.0.0.1', True),
        ('both SO_REUSEADDR+SO_REUSEPORT', ['SO_REUSEADDR', 'SO_REUSEPORT'],
         ['SO_REUSEADDR', 'SO_REUSEPORT'], '127.0.0.1', False),
        ('first SO_REUSEADDR, second none', ['SO_REUSEADDR'], [], '127.0.0.1', False),
        ('first none, second SO_REUSEADDR', [], ['SO_REUSEADDR'], '127.0.0.1', False),
        ('both SO_REUSEADDR, first on 0.0.0.0', ['SO_REUSEADDR'], ['SO_REUSEADDR'], '0.0.0.0', False),
    ]
    for val in (0, 1):
        N.sysctl('net.ipv4.ip_autobind_reuse', val)
        for name, o1, o2, a1, lis in variants:
            a = socket.socket()
            N.set_opts(a, o1)
            r1 = N.try_call(a.bind, (a1, 0))
            p1 = a.getsockname()[1]
            if lis:
                a.listen(4)
            b = socket.socket()
            N.set_opts(b, o2)
            r2 = N.try_call(b.bind, ('127.0.0.1', 0))
            p2 = b.getsockname()[1]
            row = dict(ip_autobind_reuse=val, variant=name, first=r1, first_port=p1,
                       second=r2, second_port=p2)
            if r2 == 'OK' and not lis:
                row['listen_first'] = N.try_call(a.listen, 4)
                row['listen_second'] = N.try_call(b.listen, 4)
            a.close()
            b.close()
            res.append(row)
    return dict(range=[40000, 40000], rows=res)


def x_connects_hold():
    rng(40000, 40009)
    lst = listener()
    seq, err, keep, _ = connect_loop()
    out = dict(range=[40000, 40009], connect_seq=seq, connect_final_errno=err)
    for addr, opts in (('127.0.0.1', []), ('127.0.0.1', ['SO_REUSEADDR']), ('0.0.0.0', []),
                       ('127.0.0.2', [])):
        s = socket.socket()
        N.set_opts(s, opts)
        r = N.try_call(s.bind, (addr, 0))
        key = 'bind0_%s%s' % (addr, '_reuseaddr' if opts else '')
        out[key] = r if r != 'OK' else 'OK port %d' % s.getsockname()[1]
        s.close()
    return out


def x_bind3_connect(addr):
    rng(40000, 40009)
    lst = listener()
    bseq, berr, bkeep = [], None, []
    for _ in range(3):
        s = socket.socket()
        s.bind((addr, 0))
        bseq.append(s.getsockname()[1])
        bkeep.append(s)
    seq, err, keep, _ = connect_loop()
    return dict(range=[40000, 40009], bind_addr=addr, bound_ports=bseq, connect_seq=seq,
                n_connects=len(seq), final_errno=err,
                overlap=sorted(set(seq) & set(bseq)))


def x_plain_connect():
    rng(40000, 40009)
    lst = listener()
    seq, err, keep, _ = connect_loop()
    return dict(range=[40000, 40009], seq=seq, final_errno=err)


def x_no_port_connect():
    rng(40000, 40009)
    lst = listener()

    def prep(s):
        s.setsockopt(socket.SOL_IP, N.IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    seq, err, keep, pre = connect_loop(prep)
    return dict(range=[40000, 40009], seq=seq, final_errno=err, getsockname_ports_after_bind=pre)


def x_sockrange_connect():
    rng(40000, 40011)
    lst = listener()

    def prep(s):
        s.setsockopt(socket.SOL_IP, N.IP_LOCAL_PORT_RANGE, struct.pack('=I', 40002 | 40005 << 16))
        v = struct.unpack('=I', s.getsockopt(socket.SOL_IP, N.IP_LOCAL_PORT_RANGE, 4))[0]
        return [v & 0xffff, v >> 16]
    seq, err, keep, pre = connect_loop(prep)
    return dict(range=[40002, 40005], netns_range=[40000, 40011], seq=seq, final_errno=err,
                sockopt_readback=pre[:1])


def x_sockrange_bind0(opts):
    rng(40000, 40011)
    seq, err, keep = bind0_loop('127.0.0.1', opts, sockrange=(40002, 40005))
    return dict(range=[40002, 40005], netns_range=[40000, 40011], seq=seq, final_errno=err)


EXPERIMENTS = {
    'bind0_plain': (20, lambda: x_bind0([])),
    'bind0_reuseaddr': (20, lambda: x_bind0(['SO_REUSEADDR'])),
    'autobind_reuse': (1, x_autobind_reuse),
    'connects_hold': (5, x_connects_hold),
    'bind3_connect': (5, lambda: x_bind3_connect('127.0.0.1')),
    'bind3_connect_127.0.0.2': (5, lambda: x_bind3_connect('127.0.0.2')),
    'plain_connect': (10, x_plain_connect),
    'no_port_connect': (10, x_no_port_connect),
    'sockrange_connect': (10, x_sockrange_connect),
    'sockrange_bind0_plain': (20, lambda: x_sockrange_bind0([])),
    'sockrange_bind0_reuseaddr': (20, lambda: x_sockrange_bind0(['SO_REUSEADDR'])),
}


def seq_summary(seq, lo, hi):
    n = len(seq)
    first = seq[:n // 2]
    mid = lo + (hi - lo + 1) / 2.0
    return dict(
        n=n,
        odd_frac_first_half=round(sum(p % 2 for p in first) / len(first), 3) if first else None,
        lower_half_first=all(p < mid for p in first) if first else None,
        first_half_parity=('odd' if all(p % 2 for p in first) else 'even'
                           if all(p % 2 == 0 for p in first) else 'mixed') if first else None,
        diffs=[b - a for a, b in zip(seq, seq[1:])],
        all_in_range=all(lo <= p <= hi for p in seq),
        distinct=len(set(seq)) == n,
    )


def child(name):
    N.require_private_netns()
    print(json.dumps(EXPERIMENTS[name][1]()))


def driver(path):
    script = os.path.abspath(__file__)
    t0 = time.time()
    out = {}
    summary = {}
    for name, (runs, _) in EXPERIMENTS.items():
        rs = [N.spawn_in_netns(script, [name]) for _ in range(runs)]
        for r in rs:
            s = r.get('seq', r.get('connect_seq'))
            if s is not None:
                r['summary'] = seq_summary(s, *r['range'])
        out[name] = rs
        summ = {'runs': runs}
        with_s = [r['summary'] for r in rs if 'summary' in r]
        if with_s:
            summ['lengths'] = sorted(set(x['n'] for x in with_s))
            summ['final_errnos'] = sorted(set(str(r.get('final_errno', r.get(
                'connect_final_errno'))) for r in rs))
            summ['odd_frac_first_half'] = [x['odd_frac_first_half'] for x in with_s]
            summ['lower_half_first'] = [x['lower_half_first'] for x in with_s]
            summ['first_half_parity'] = sorted(set(x['first_half_parity'] for x in with_s))
            summ['all_in_range_and_distinct'] = all(x['all_in_range'] and x['distinct']
                                                    for x in with_s)
            summ['abs_diffs_seen'] = sorted(set(abs(d) for x in with_s for d in x['diffs']))
        summary[name] = summ
        print('%-26s %s' % (name, json.dumps(summ)[:300]))
    extra = {
        'autobind_reuse': out['autobind_reuse'][0]['rows'],
        'connects_hold': [{k: v for k, v in r.items() if k.startswith('bind0') or
                           k == 'connect_final_errno'} for r in out['connects_hold']],
        'bind3_connect_n': [r['n_connects'] for r in out['bind3_connect']],
        'bind3_connect_127.0.0.2_n': [r['n_connects'] for r in out['bind3_connect_127.0.0.2']],
        'no_port_getsockname': sorted(set(p for r in out['no_port_connect']
                                          for p in r['getsockname_ports_after_bind'])),
    }
    hdr = N.header('python3 tools/probes/bind_zero_order.py  (each run: unshare -n python3 '
                   'tools/probes/bind_zero_order.py --child EXPERIMENT)')
    hdr['elapsed_s'] = round(time.time() - t0, 1)
    hdr['summary_fields'] = ('odd_frac_first_half: fraction of odd ports among the first '
                             'len//2 ports of the sequence; lower_half_first: those ports all '
                             'lie below the midpoint lo+(hi-lo+1)/2 of the (socket) range')
    with open(path, 'w') as f:
        json.dump({'header': hdr, 'summary': summary, 'key_results': extra, 'runs': out}, f,
                  indent=1)
    print(json.dumps(extra, indent=1))


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == '--child':
        child(sys.argv[2])
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        out = os.path.join(here, '..', '..', 'tests', 'live', 'bind_zero_order.json')
        if '--out' in sys.argv:
            out = sys.argv[sys.argv.index('--out') + 1]
        driver(os.path.normpath(out))
