#!/usr/bin/env python3
"""udp_probe.py -- live-kernel probe: UDP port selection, sharing, delivery and ICMP errors.

Every experiment runs in its own fresh netns (unshare -n, loopback only); the driver in the
host namespace only spawns the children.  Local port range 40000-40009 unless stated.

  bind0_exhaust      bind(127.0.0.1:0) until failure -> port sequence + errno; 20 runs
  connect_exhaust    connect(127.0.0.1:5000) on fresh unbound sockets until failure; 10 runs
  connect_dests      connect alternately to 127.0.0.1:5000 / 127.0.0.2:5001 / 127.0.0.1:5002:
                     connected UDP sockets do not share a port across destinations
  sendto_exhaust     sendto(127.0.0.1:5000) on fresh unbound sockets until failure
  reuseaddr_connect  every socket SO_REUSEADDR: 15 connects (to two destinations) all succeed,
                     ports shared; a socket without SO_REUSEADDR then fails (EAGAIN)
  noport_connect     bind(127.0.0.N:0) with IP_BIND_ADDRESS_NO_PORT, N = 1, 2; connect to
                     127.0.0.1:5000: two sources give twice the sockets
  bind0_after_connect range held by connected sockets, then bind(0) -> errno
  sockrange          IP_LOCAL_PORT_RANGE 40002-40005 on the socket: bind(0) until failure
  full_range_parity  default range 32768-60999: 300 bind(0) -> ports, odd fraction
  order_gap1         range 40000-40009, the probe binds all but one port, frees it, etc.:
                     with k ports bound, a bind(0) takes the next free port after a random
                     start (cyclic order), checked by recording the start-free structure
  reuseport_spread   4 SO_REUSEPORT sockets on 127.0.0.1:6000; 400 senders (distinct source
                     ports): count per receiver; one sender 20 times: always the same receiver
  reuseport_connected a connected socket in the group (to the sender) receives its datagrams
  score_specific     0.0.0.0:7000 and 127.0.0.1:7000 (both SO_REUSEADDR): who receives
  score_connected    two SO_REUSEADDR sockets on 127.0.0.1:7000, the newer connected to the
                     sender / the older connected: who receives
  score_newest       two SO_REUSEADDR sockets on 127.0.0.1:7000, neither connected
  icmp_connected     connected socket sends to a closed port: next send / recv errno
  icmp_unconnected   unconnected sendto to a closed port: next sendto / recv errno
  icmp_burst         200 connected sockets each send once to a closed port: how many see
                     ECONNREFUSED (ICMP rate limit on loopback)
  hash2_wildcard     11 sockets on 127.0.0.{1..11}:7100, then bind(0.0.0.0:7100) -> errno
  v6_dualstack       [::]:7200 dual-stack vs 0.0.0.0:7200, v6only variant, v6 connect EAGAIN
  reuse_both         two sockets bind 127.0.0.1:P with every pair of options (- A P AP), then a
                     third (second's options) binds 0.0.0.0:P; P/P with another uid; SO_REUSEADDR
                     bind(0) in a one-port range
  v6_unicast         [::1]-bound vs 0.0.0.0 / 127.0.0.1 / [::] on one port

Run (as root; ~10 s; writes tests/live/udp.json):
    python3 tools/probes/udp_probe.py [--out FILE] [--only EXPERIMENT]
"""
import errno
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsprobe as N  # noqa: E402

MAXN = 40


def rng(lo, hi):
    N.sysctl('net.ipv4.ip_local_port_range', '%d %d' % (lo, hi))


def udp(v6=False):
    return socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)


def opts(s, o):
    if 'A' in o:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if 'P' in o:
        s.setsockopt(socket.SOL_SOCKET, N.SO_REUSEPORT, 1)


def loop(make, call):
    keep, seq, err = [], [], None
    for _ in range(MAXN):
        s = make()
        r = N.try_call(call, s)
        if r != 'OK':
            err = r
            s.close()
            break
        seq.append(s.getsockname()[1])
        keep.append(s)
    return seq, err, keep


def exp_bind0_exhaust():
    rng(40000, 40009)
    seq, err, keep = loop(udp, lambda s: s.bind(('127.0.0.1', 0)))
    return {'seq': seq, 'errno': err}


def exp_connect_exhaust():
    rng(40000, 40009)
    seq, err, keep = loop(udp, lambda s: s.connect(('127.0.0.1', 5000)))
    return {'seq': seq, 'errno': err}


def exp_sendto_exhaust():
    rng(40000, 40009)
    seq, err, keep = loop(udp, lambda s: s.sendto(b'q', ('127.0.0.1', 5000)))
    return {'seq': seq, 'errno': err}


def exp_connect_dests():
    rng(40000, 40009)
    dests = [('127.0.0.1', 5000), ('127.0.0.2', 5001), ('127.0.0.1', 5002)]
    out, keep = [], []
    for i in range(30):
        s = udp()
        r = N.try_call(s.connect, dests[i % 3])
        out.append({'to': '%s:%d' % dests[i % 3], 'ret': r,
                    'port': s.getsockname()[1] if r == 'OK' else 0})
        keep.append(s)
    return {'calls': out, 'ok': sum(1 for c in out if c['ret'] == 'OK'),
            'distinct_ports': len({c['port'] for c in out if c['ret'] == 'OK'})}


def exp_reuseaddr_connect():
    rng(40000, 40009)
    dests = [('127.0.0.1', 5000), ('127.0.0.2', 5001)]
    out, keep = [], []
    for i in range(15):
        s = udp()
        opts(s, 'A')
        r = N.try_call(s.connect, dests[i % 2])
        out.append({'ret': r, 'port': s.getsockname()[1]})
        keep.append(s)
    s = udp()
    plain = N.try_call(s.connect, dests[0])
    s2 = udp()
    opts(s2, 'A')
    again = N.try_call(s2.connect, dests[0])
    return {'reuseaddr_calls': out, 'ok': sum(1 for c in out if c['ret'] == 'OK'),
            'distinct_ports': len({c['port'] for c in out}),
            'plain_after': plain, 'reuseaddr_after': again}


def exp_noport_connect():
    rng(40000, 40009)
    res = {}
    keep = []
    for src in ('127.0.0.1', '127.0.0.2'):
        def mk():
            s = udp()
            s.setsockopt(socket.SOL_IP, N.IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((src, 0))
            return s
        seq, err, k = loop(mk, lambda s: s.connect(('127.0.0.1', 5000)))
        keep += k
        res[src] = {'seq': seq, 'errno': err}
    s = udp()
    res['unbound_after'] = N.try_call(s.connect, ('127.0.0.1', 5000))
    return res


def exp_bind0_after_connect():
    rng(40000, 40009)
    seq, err, keep = loop(udp, lambda s: s.connect(('127.0.0.1', 5000)))
    res = {'connected': len(seq), 'connect_errno': err}
    for addr in ('127.0.0.1', '0.0.0.0', '127.0.0.2'):
        s = udp()
        res['bind0_' + addr] = N.try_call(s.bind, (addr, 0))
    s = udp()
    s.setsockopt(socket.SOL_IP, N.IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind(('127.0.0.2', 0))
    res['noport_127.0.0.2_connect'] = N.try_call(s.connect, ('127.0.0.1', 5000))
    res['noport_127.0.0.2_port'] = s.getsockname()[1]
    return res


def exp_sockrange():
    rng(40000, 40011)

    def mk():
        s = udp()
        s.setsockopt(socket.SOL_IP, N.IP_LOCAL_PORT_RANGE, struct.pack('=I', 40002 | 40005 << 16))
        return s
    seq, err, keep = loop(mk, lambda s: s.bind(('127.0.0.1', 0)))
    seq2, err2, keep2 = loop(mk, lambda s: s.connect(('127.0.0.2', 5000)))
    return {'bind0': {'seq': seq, 'errno': err}, 'connect_after': {'seq': seq2, 'errno': err2}}


def exp_full_range_parity():
    ports, keep = [], []
    for _ in range(300):
        s = udp()
        s.bind(('127.0.0.1', 0))
        ports.append(s.getsockname()[1])
        keep.append(s)
    return {'range': N.sysctl_get('net.ipv4.ip_local_port_range'), 'ports': ports,
            'odd': sum(p & 1 for p in ports), 'min': min(ports), 'max': max(ports)}


def exp_order_gap1():
    # Range 40000-40009, ports 40000..40009 except a "free set": which port does bind(0) take?
    # With the live udp_table of 16384 slots, a bind(0) takes the first free port at or after
    # a uniform start, cyclically; with free set {40003, 40007} the choice is 40007 when the
    # start is in 40004..40007 (4 of 10), else 40003 (6 of 10).
    rng(40000, 40009)
    counts = {}
    for _ in range(400):
        keep = []
        for p in range(40000, 40010):
            if p in (40003, 40007):
                continue
            s = udp()
            s.bind(('127.0.0.1', p))
            keep.append(s)
        s = udp()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        counts[port] = counts.get(port, 0) + 1
        s.close()
        for k in keep:
            k.close()
    return {'free': [40003, 40007], 'trials': 400, 'counts': counts}


def recv_who(socks, timeout=0.2):
    for i, s in enumerate(socks):
        s.setblocking(False)
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        for i, s in enumerate(socks):
            try:
                s.recvfrom(100)
                got.append(i)
            except BlockingIOError:
                pass
        if got:
            break
    return got


def exp_reuseport_spread():
    grp = []
    for _ in range(4):
        s = udp()
        opts(s, 'P')
        s.bind(('127.0.0.1', 6000))
        s.setblocking(False)
        grp.append(s)
    counts = [0, 0, 0, 0]
    for i in range(400):
        c = udp()
        c.sendto(b'x', ('127.0.0.1', 6000))
        c.close()
        who = recv_who(grp)
        for w in who:
            counts[w] += 1
    c = udp()
    same = []
    for i in range(20):
        c.sendto(b'x', ('127.0.0.1', 6000))
        same += recv_who(grp)
    return {'counts': counts, 'one_sender_receivers': sorted(set(same)), 'one_sender_n': len(same)}


def exp_reuseport_connected():
    grp = []
    for _ in range(3):
        s = udp()
        opts(s, 'P')
        s.bind(('127.0.0.1', 6001))
        grp.append(s)
    c = udp()
    c.bind(('127.0.0.1', 6100))
    grp[1].connect(('127.0.0.1', 6100))
    who = []
    for _ in range(20):
        c.sendto(b'x', ('127.0.0.1', 6001))
        who += recv_who(grp)
    d = udp()
    d.bind(('127.0.0.1', 6101))
    other = []
    for _ in range(20):
        d.sendto(b'x', ('127.0.0.1', 6001))
        other += recv_who(grp)
    return {'connected_peer_receivers': sorted(set(who)), 'n': len(who),
            'other_sender_receivers': sorted(set(other)), 'other_n': len(other)}


def exp_score_specific():
    a = udp()
    opts(a, 'A')
    a.bind(('0.0.0.0', 7000))
    b = udp()
    opts(b, 'A')
    b.bind(('127.0.0.1', 7000))
    c = udp()
    who = []
    for _ in range(5):
        c.sendto(b'x', ('127.0.0.1', 7000))
        who += recv_who([a, b])
    # Reverse creation order.
    d = udp()
    opts(d, 'A')
    d.bind(('127.0.0.1', 7001))
    e = udp()
    opts(e, 'A')
    e.bind(('0.0.0.0', 7001))
    who2 = []
    for _ in range(5):
        c.sendto(b'x', ('127.0.0.1', 7001))
        who2 += recv_who([e, d])
    return {'wild_then_specific': ['wildcard', 'specific'], 'receivers': who,
            'specific_then_wild_receivers_0wild_1spec': who2}


def exp_score_connected():
    res = {}
    for which in ('older', 'newer'):
        port = 7010 if which == 'older' else 7011
        a = udp()
        opts(a, 'A')
        a.bind(('127.0.0.1', port))
        b = udp()
        opts(b, 'A')
        b.bind(('127.0.0.1', port))
        c = udp()
        c.bind(('127.0.0.1', port + 100))
        (a if which == 'older' else b).connect(('127.0.0.1', port + 100))
        who = []
        for _ in range(5):
            c.sendto(b'x', ('127.0.0.1', port))
            who += recv_who([a, b])
        res[which + '_connected'] = who
    return res


def exp_score_newest():
    a = udp()
    opts(a, 'A')
    a.bind(('127.0.0.1', 7020))
    b = udp()
    opts(b, 'A')
    b.bind(('127.0.0.1', 7020))
    c = udp()
    who = []
    for _ in range(10):
        c.sendto(b'x', ('127.0.0.1', 7020))
        who += recv_who([a, b])
    return {'receivers_0older_1newer': who}


def exp_icmp_connected():
    s = udp()
    s.connect(('127.0.0.1', 5999))
    first = N.try_call(s.send, b'x')
    time.sleep(0.05)
    second = N.try_call(s.send, b'x')
    time.sleep(0.05)
    s.setblocking(False)
    rcv = N.try_call(s.recv, 10)
    third = N.try_call(s.send, b'x')
    time.sleep(0.05)
    rcv2 = N.try_call(s.recv, 10)
    rcv3 = N.try_call(s.recv, 10)
    return {'first_send': first, 'second_send': second, 'recv_after_second': rcv,
            'third_send': third, 'recv_after_third': rcv2, 'recv_again': rcv3}


def exp_icmp_unconnected():
    s = udp()
    first = N.try_call(s.sendto, b'x', ('127.0.0.1', 5999))
    time.sleep(0.05)
    second = N.try_call(s.sendto, b'x', ('127.0.0.1', 5999))
    s.setblocking(False)
    rcv = N.try_call(s.recv, 10)
    return {'first_sendto': first, 'second_sendto': second, 'recv': rcv}


def exp_icmp_burst():
    rng(40000, 49999)
    socks = []
    for _ in range(200):
        s = udp()
        s.connect(('127.0.0.1', 5999))
        s.send(b'x')
        socks.append(s)
    time.sleep(0.1)
    refused = 0
    for s in socks:
        s.setblocking(False)
        if N.try_call(s.recv, 10) == 'ECONNREFUSED':
            refused += 1
    return {'sockets': 200, 'refused': refused}


def exp_hash2_wildcard():
    res = {}
    for n in (10, 11, 12):
        port = 7100 + n
        keep = []
        for i in range(n):
            s = udp()
            s.bind(('127.0.0.%d' % (i + 1), port))
            keep.append(s)
        w = udp()
        res['after_%d_specific' % n] = N.try_call(w.bind, ('0.0.0.0', port))
        w6 = udp(True)
        res['v6_any_after_%d_specific' % n] = N.try_call(w6.bind, ('::', port))
    return res


def exp_v6_dualstack():
    res = {}
    a = udp(True)
    a.bind(('::', 7200))
    b = udp()
    res['v4any_after_v6any'] = N.try_call(b.bind, ('0.0.0.0', 7200))
    c = udp()
    res['v4lo_after_v6any'] = N.try_call(c.bind, ('127.0.0.1', 7200))
    a6 = udp(True)
    a6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    a6.bind(('::', 7201))
    b6 = udp()
    res['v4any_after_v6only_any'] = N.try_call(b6.bind, ('0.0.0.0', 7201))
    x = udp()
    x.bind(('0.0.0.0', 7202))
    y = udp(True)
    res['v6any_after_v4any'] = N.try_call(y.bind, ('::', 7202))
    rng(40000, 40009)
    seq, err, keep = loop(lambda: udp(True), lambda s: s.connect(('::1', 5000)))
    res['v6_connect_exhaust'] = {'seq': seq, 'errno': err}
    s4 = udp()
    res['v4_connect_after_v6_full'] = N.try_call(s4.connect, ('127.0.0.1', 5000))
    # dual-stack socket sends to a v4-mapped address
    m = udp(True)
    res['v6_connect_v4mapped_after_full'] = N.try_call(m.connect, ('::ffff:127.0.0.1', 5000))
    return res


def exp_v6_unicast():
    # __inet6_bind sets sk_ipv6only on a socket bound to a true IPv6 address, so it never
    # overlaps an IPv4 (or v4-mapped) socket, not even 0.0.0.0.
    r = {}
    a = udp(True)
    a.bind(('::1', 7500))
    b = udp()
    r['v4any_after_v6_lo'] = N.try_call(b.bind, ('0.0.0.0', 7500))
    a2 = udp(True)
    a2.bind(('::1', 7502))
    c = udp()
    r['v4lo_after_v6_lo'] = N.try_call(c.bind, ('127.0.0.1', 7502))
    a3 = udp(True)
    a3.bind(('::1', 7503))
    c3 = udp(True)
    r['v6any_after_v6_lo'] = N.try_call(c3.bind, ('::', 7503))
    d = udp()
    d.bind(('0.0.0.0', 7501))
    e = udp(True)
    r['v6lo_after_v4any'] = N.try_call(e.bind, ('::1', 7501))
    return r


def exp_reuse_both():
    res = {}
    port = 7300
    for o1 in ('', 'A', 'P', 'AP'):
        for o2 in ('', 'A', 'P', 'AP'):
            a = udp()
            opts(a, o1)
            a.bind(('127.0.0.1', port))
            b = udp()
            opts(b, o2)
            res['%s/%s' % (o1 or '-', o2 or '-')] = N.try_call(b.bind, ('127.0.0.1', port))
            c = udp()
            opts(c, o2)
            res['%s/%s wildcard' % (o1 or '-', o2 or '-')] = N.try_call(c.bind, ('0.0.0.0', port))
            a.close(); b.close(); c.close()
            port += 2
    # other uid, both SO_REUSEPORT
    a = udp()
    opts(a, 'P')
    a.bind(('127.0.0.1', 7400))

    def other():
        b = udp()
        opts(b, 'P')
        return N.try_call(b.bind, ('127.0.0.1', 7400))
    res['P/P other uid'] = N.run_as_uid(1000, other)
    # reuseaddr bind(0) onto a port held by another reuseaddr socket
    rng(40000, 40000)
    a = udp()
    opts(a, 'A')
    res['A bind0 1-port range first'] = N.try_call(a.bind, ('127.0.0.1', 0))
    b = udp()
    opts(b, 'A')
    res['A bind0 1-port range second'] = N.try_call(b.bind, ('127.0.0.1', 0))
    c = udp()
    res['- bind0 1-port range third'] = N.try_call(c.bind, ('127.0.0.1', 0))
    d = udp()
    opts(d, 'P')
    res['P bind0 1-port range'] = N.try_call(d.bind, ('127.0.0.1', 0))
    return res


EXPERIMENTS = {
    'bind0_exhaust': 20, 'connect_exhaust': 10, 'sendto_exhaust': 5, 'connect_dests': 3,
    'reuseaddr_connect': 3, 'noport_connect': 3, 'bind0_after_connect': 3, 'sockrange': 10,
    'full_range_parity': 1, 'order_gap1': 1, 'reuseport_spread': 1, 'reuseport_connected': 1,
    'score_specific': 1, 'score_connected': 1, 'score_newest': 1, 'icmp_connected': 1,
    'icmp_unconnected': 1, 'icmp_burst': 1, 'hash2_wildcard': 1, 'v6_dualstack': 1,
    'reuse_both': 1, 'v6_unicast': 1,
}


def child(name):
    N.require_private_netns()
    print(json.dumps(globals()['exp_' + name]()))


def driver(out):
    t0 = time.time()
    here = os.path.abspath(__file__)
    res = {'header': N.header('python3 tools/probes/udp_probe.py  (each run: unshare -n python3 '
                              'tools/probes/udp_probe.py --child EXPERIMENT)')}
    with open('/proc/sys/net/ipv4/udp_hash_entries') as f:
        res['header']['udp_hash_entries'] = int(f.read())
    only = sys.argv[sys.argv.index('--only') + 1] if '--only' in sys.argv else None
    if only:  # re-measure one experiment, keep the others
        with open(out) as f:
            res = json.load(f)
        res['header']['%s_date_utc' % only] = N.header('')['date_utc']
    for name, runs in EXPERIMENTS.items():
        if only and name != only:
            continue
        res[name] = [N.spawn_in_netns(here, [name]) for _ in range(runs)]
    if not only:
        res['header']['elapsed_s'] = round(time.time() - t0, 1)
    with open(out, 'w') as f:
        json.dump(res, f, indent=1)
        f.write('\n')
    print('wrote', out)


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == '--child':
        child(sys.argv[2])
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        out = os.path.join(here, '..', '..', 'tests', 'live', 'udp.json')
        if '--out' in sys.argv:
            out = sys.argv[sys.argv.index('--out') + 1]
        driver(os.path.normpath(out))
