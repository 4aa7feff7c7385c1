#!/usr/bin/env python3
"""claims_probe.py -- live-kernel measurements behind scenarios/claim-*.json (IPv4 TCP, loopback).

Each group runs in its own fresh network namespace (unshare -n; nsprobe.require_private_netns
refuses to run elsewhere). No sysctl is written outside those namespaces; traffic is loopback
only; every loop is bounded.

Run (as root):  python3 claims_probe.py [--out FILE]
One group:      unshare -n python3 claims_probe.py --child GROUP
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, '/work/main/tools/probes')
import nsprobe as N  # noqa: E402

GROUPS = ['exhaust', 'manydest', 'reserved_connect', 'reserved_bind0', 'bbc', 'nc_socat',
          'clients1000', 'restart', 'priv', 'stolen', 'stolen_reserved', 'proxy', 'bbc_noport', 'synhold', 'exhaust2']


def listener(addr, port, backlog=128, opts=()):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    N.set_opts(s, list(opts))
    s.bind((addr, port))
    s.listen(backlog)
    return s


def connect(to, opts=(), bind=None, no_port=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    N.set_opts(s, list(opts))
    r = 'OK'
    if no_port:
        s.setsockopt(socket.IPPROTO_IP, N.IP_BIND_ADDRESS_NO_PORT, 1)
    if bind is not None:
        r = N.try_call(s.bind, bind)
        if r != 'OK':
            return s, 'bind ' + r, None
    r = N.try_call(s.connect, to)
    port = s.getsockname()[1] if r == 'OK' else None
    return s, r, port


def g_exhaust(out):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    l = listener('127.0.0.1', 5000)
    socks, res = [], []
    for _ in range(11):
        s, r, p = connect(('127.0.0.1', 5000))
        socks.append(s)
        res.append((r, p))
    out['connects'] = res
    kids = [l.accept()[0] for _ in range(10)]
    # the server closes one accepted connection first; then the client closes its end:
    # the client is the passive closer (CLOSE_WAIT -> LAST_ACK -> CLOSE), no TIME_WAIT on it.
    k = kids[0]
    cport = k.getpeername()[1]
    k.close()
    time.sleep(0.05)
    c = [s for s, (r, p) in zip(socks, res) if p == cport][0]
    c.close()
    time.sleep(0.05)
    out['freed_port'] = cport
    out['client_side_states_of_freed_port'] = [t for t in N.tcp_states(cport)]
    s, r, p = connect(('127.0.0.1', 5000))
    out['connect_after_passive_close'] = (r, p)
    s2, r2, p2 = connect(('127.0.0.1', 5000))
    out['connect_after_that'] = (r2, p2)


def g_manydest(out):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    dests = [('127.0.0.1', 5000), ('127.0.0.1', 5001), ('127.0.0.1', 5002), ('127.0.0.1', 5003),
             ('127.0.0.2', 5000), ('127.0.0.3', 5000), ('127.0.0.4', 5000), ('127.0.0.5', 6000)]
    ls = [listener(a, p, 64) for a, p in dests]
    socks = []
    per = {}
    for a, p in dests:
        key = '%s:%d' % (a, p)
        per[key] = []
        for _ in range(11):
            s, r, port = connect((a, p))
            socks.append(s)
            per[key].append(r if r != 'OK' else port)
    out['per_destination'] = per
    ports = {}
    for key, v in per.items():
        for x in v:
            if isinstance(x, int):
                ports.setdefault(x, set()).add(key)
    out['destinations_per_port'] = {str(k): len(v) for k, v in sorted(ports.items())}
    out['total_ok'] = sum(1 for v in per.values() for x in v if isinstance(x, int))


def g_reserved_connect(out):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    N.sysctl('net.ipv4.ip_local_reserved_ports', '40002,40005-40006')
    l = listener('127.0.0.1', 5000)
    socks, res = [], []
    for _ in range(9):
        s, r, p = connect(('127.0.0.1', 5000))
        socks.append(s)
        res.append(r if r != 'OK' else p)
    out['connects'] = res
    for p in (40002, 40005, 40006):
        s = socket.socket()
        out['explicit bind 0.0.0.0:%d' % p] = N.try_call(s.bind, ('0.0.0.0', p))
        socks.append(s)
    s = socket.socket()
    out['bind 0.0.0.0:40000 (held by a connect)'] = N.try_call(s.bind, ('0.0.0.0', 40000))


def g_reserved_bind0(out):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    N.sysctl('net.ipv4.ip_local_reserved_ports', '40002,40005-40006')
    socks, res = [], []
    for _ in range(8):
        s = socket.socket()
        r = N.try_call(s.bind, ('127.0.0.1', 0))
        res.append(r if r != 'OK' else s.getsockname()[1])
        socks.append(s)
    out['bind0'] = res
    for p in (40002, 40005, 40006):
        s = socket.socket()
        out['explicit bind 127.0.0.1:%d' % p] = N.try_call(s.bind, ('127.0.0.1', p))
        socks.append(s)


def g_bbc(out):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    la = listener('127.0.0.1', 5000)
    lb = listener('127.0.0.1', 5001)
    keep = []
    # (i) explicit bind to the same addr:port (SO_REUSEADDR), both to the same peer
    a, ra, pa = connect(('127.0.0.1', 5000), opts=['SO_REUSEADDR'], bind=('127.0.0.1', 50000))
    b, rb, pb = connect(('127.0.0.1', 5000), opts=['SO_REUSEADDR'], bind=('127.0.0.1', 50000))
    c, rc, pc = connect(('127.0.0.1', 5001), opts=['SO_REUSEADDR'], bind=('127.0.0.1', 50000))
    d, rd, pd = connect(('127.0.0.1', 5000), bind=('127.0.0.1', 50001))
    e, re_, pe = connect(('127.0.0.1', 5001), bind=('127.0.0.1', 50001))
    keep += [a, b, c, d, e]
    out['explicit'] = {'A 50000 -> :5000': ra, 'B 50000 -> :5000': rb, 'C 50000 -> :5001': rc,
                       'D 50001 (no opts) -> :5000': rd, 'E 50001 (no opts) bind': re_}
    # (ii) bind(127.0.0.1:0) then connect, alternating two destinations
    res = []
    for i in range(11):
        s, r, p = connect(('127.0.0.1', 5000 + (i % 2)), bind=('127.0.0.1', 0))
        res.append(r if r != 'OK' else p)
        keep.append(s)
    out['bind0_then_connect_alternating'] = res
    for s in keep[5:]:
        s.close()
    time.sleep(0.05)
    # the closes above were client-first: their ports sit in TIME_WAIT now on loopback.
    out['tw_after_bind0_close'] = len([t for t in N.tcp_states() if t[2] == '06'])


def g_bbc_noport(out):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    la = listener('127.0.0.1', 5000)
    lb = listener('127.0.0.1', 5001)
    keep, res = [], []
    for i in range(21):
        s, r, p = connect(('127.0.0.1', 5000 + (i % 2)), bind=('127.0.0.1', 0), no_port=True)
        res.append(r if r != 'OK' else p)
        keep.append(s)
    out['noport_alternating'] = res
    out['noport_ok'] = sum(1 for x in res if isinstance(x, int))


def g_nc_socat(out):
    la = listener('127.0.0.1', 5000)
    lb = listener('127.0.0.2', 5000)
    keep = []
    # nc -p 12345: bind 0.0.0.0:12345 without options, connect
    a, ra, pa = connect(('127.0.0.1', 5000), bind=('0.0.0.0', 12345))
    b, rb, pb = connect(('127.0.0.1', 5000), bind=('0.0.0.0', 12345))
    c, rc, pc = connect(('127.0.0.2', 5000), bind=('0.0.0.0', 12345))
    keep += [a, b, c]
    out['nc'] = {'first -> 127.0.0.1:5000': (ra, pa), 'second -> same remote': rb,
                 'second -> other remote 127.0.0.2:5000': rc}
    # socat ...,sourceport=12346,reuseport
    d, rd, pd = connect(('127.0.0.1', 5000), opts=['SO_REUSEPORT'], bind=('0.0.0.0', 12346))
    e, re_, pe = connect(('127.0.0.2', 5000), opts=['SO_REUSEPORT'], bind=('0.0.0.0', 12346))
    f, rf, pf = connect(('127.0.0.1', 5000), opts=['SO_REUSEPORT'], bind=('0.0.0.0', 12346))
    keep += [d, e, f]
    out['socat_reuseport'] = {'first -> 127.0.0.1:5000': (rd, pd), 'second -> 127.0.0.2:5000': (re_, pe),
                              'third -> 127.0.0.1:5000 (same remote as first)': rf}
    out['local_of_second'] = e.getsockname() if re_ == 'OK' else None


def g_clients1000(out):
    l = listener('127.0.0.1', 80, backlog=1024)
    cs, res = [], []
    for _ in range(1000):
        s, r, p = connect(('127.0.0.1', 80))
        cs.append(s)
        res.append(r)
    kids = []
    for _ in range(1000):
        k, _peer = l.accept()
        kids.append(k)
    out['connect_ok'] = sum(1 for r in res if r == 'OK')
    out['accepted'] = len(kids)
    out['accepted_local_ports'] = sorted({k.getsockname()[1] for k in kids})
    out['distinct_peer_tuples'] = len({k.getpeername() for k in kids})
    out['distinct_client_ports'] = len({s.getsockname()[1] for s in cs})


def g_restart(out):
    for life_opts, port in ((), 8080), (('SO_REUSEADDR',), 8081):
        l = listener('0.0.0.0', port, opts=life_opts)
        c, r, p = connect(('127.0.0.1', port))
        k, _ = l.accept()
        k.close()          # server closes first
        time.sleep(0.05)
        c.close()          # client closes: server's accepted socket -> TIME_WAIT on :port
        time.sleep(0.05)
        l.close()
        tw = [t for t in N.tcp_states(port) if t[2] == '06']
        d = {'server_side_tw': tw}
        s = socket.socket()
        d['restart bind no opts'] = N.try_call(s.bind, ('0.0.0.0', port))
        s.close()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        d['restart bind SO_REUSEADDR'] = N.try_call(s.bind, ('0.0.0.0', port))
        if d['restart bind SO_REUSEADDR'] == 'OK':
            d['restart listen'] = N.try_call(s.listen, 16)
        s.close()
        out['first life opts=%s' % (list(life_opts),)] = d


def g_priv(out):
    def b(port):
        def fn():
            s = socket.socket()
            r = N.try_call(s.bind, ('0.0.0.0', port))
            s.close()
            return r
        return N.run_as_uid(1000, fn)
    out['start'] = N.sysctl_get('net.ipv4.ip_unprivileged_port_start')
    out['uid1000 bind 443'] = b(443)
    out['uid1000 bind 8443'] = b(8443)
    N.sysctl('net.ipv4.ip_unprivileged_port_start', '443')
    out['after start=443: uid1000 bind 443'] = b(443)
    out['after start=443: uid1000 bind 442'] = b(442)


def g_stolen(out):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    l = listener('127.0.0.1', 5000)
    keep, res = [], []
    for _ in range(10):
        s, r, p = connect(('127.0.0.1', 5000))
        keep.append(s)
        res.append(r if r != 'OK' else p)
    out['connects'] = res
    for addr, opts in (('0.0.0.0', ()), ('0.0.0.0', ('SO_REUSEADDR',)), ('127.0.0.1', ()),
                       ('127.0.0.2', ())):
        s = socket.socket()
        N.set_opts(s, list(opts))
        r = N.try_call(s.bind, (addr, 40005))
        out['bind %s:40005 %s' % (addr, list(opts))] = r
        if r == 'OK':
            out['listen %s:40005' % addr] = N.try_call(s.listen, 8)
        keep.append(s)


def g_stolen_reserved(out):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    N.sysctl('net.ipv4.ip_local_reserved_ports', '40005')
    l = listener('127.0.0.1', 5000)
    keep, res = [], []
    for _ in range(10):
        s, r, p = connect(('127.0.0.1', 5000))
        keep.append(s)
        res.append(r if r != 'OK' else p)
    out['connects'] = res
    s = socket.socket()
    out['bind 0.0.0.0:40005'] = N.try_call(s.bind, ('0.0.0.0', 40005))
    out['listen'] = N.try_call(s.listen, 8)
    keep.append(s)


def g_proxy(out):
    # Scaled-down proxy: 20-port range, a new connection every 100 ms for 3 s, each closed by
    # the client 100 ms after opening, the server closing its end right after (so the client
    # enters TIME_WAIT at once). tcp_tw_reuse=0 stands for a non-loopback backend (the default
    # tcp_tw_reuse=2 never recycles a non-loopback TIME_WAIT).
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40019')
    N.sysctl('net.ipv4.tcp_tw_reuse', '0')
    l = listener('127.0.0.1', 5000, backlog=64)
    t0 = time.monotonic()
    res = []
    prev = None
    for k in range(30):
        target = t0 + 0.1 * k
        while time.monotonic() < target:
            time.sleep(0.002)
        if prev is not None:
            pc, pk = prev
            pc.close()
            if pk is not None:
                pk.close()
            prev = None
        s, r, p = connect(('127.0.0.1', 5000))
        kid = l.accept()[0] if r == 'OK' else None
        res.append((round(time.monotonic() - t0, 3), r if r != 'OK' else p))
        prev = (s, kid)
        if r != 'OK':
            s.close()
            prev = None
    if prev:
        prev[0].close()
        if prev[1]:
            prev[1].close()
    out['connects'] = res
    out['ok'] = sum(1 for _, x in res if isinstance(x, int))
    out['first_failure_at'] = next((t for t, x in res if not isinstance(x, int)), None)
    time.sleep(0.05)
    out['tw_count'] = len([t for t in N.tcp_states() if t[2] == '06'])


def g_synhold(out):
    # One-port range; SYNs toward a listener whose accept queue is full are dropped silently.
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40000')
    l = listener('127.0.0.1', 5000, backlog=0)
    f, rf, pf = connect(('127.0.0.1', 5000), bind=('127.0.0.1', 50000))
    out['filler'] = (rf, pf)
    import select
    a = socket.socket()
    a.setsockopt(socket.IPPROTO_TCP, 7, 1)  # TCP_SYNCNT 1: give up after ~3 s
    a.setblocking(False)
    t0 = time.monotonic()
    out['a connect'] = N.try_call(a.connect, ('127.0.0.1', 5000))
    out['a local'] = a.getsockname()
    b = socket.socket()
    b.setblocking(False)
    out['b connect while a in SYN_SENT'] = N.try_call(b.connect, ('127.0.0.1', 5000))
    out['states'] = N.tcp_states()
    p = select.poll()
    p.register(a, select.POLLOUT | select.POLLERR)
    p.poll(10000)
    out['a error'] = N.ename(a.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    out['a failed after s'] = round(time.monotonic() - t0, 3)
    c = socket.socket()
    c.setblocking(False)
    out['c connect after a failed'] = N.try_call(c.connect, ('127.0.0.1', 5000))
    out['c local'] = c.getsockname()


def g_exhaust2(out):
    import struct
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40009')
    l = listener('127.0.0.1', 5000)
    socks, res = [], []
    for _ in range(11):
        s, r, p = connect(('127.0.0.1', 5000))
        socks.append(s)
        res.append((r, p))
    out['connects'] = res
    kids = [l.accept()[0] for _ in range(10)]
    # (a) the client aborts one connection with SO_LINGER {1, 0}: RST, no TIME_WAIT anywhere
    c = socks[0]
    cport = res[0][1]
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    c.close()
    time.sleep(0.05)
    out['linger0_port'] = cport
    out['states_on_port_after_linger0'] = N.tcp_states(cport)
    t = time.monotonic()
    s, r, p = connect(('127.0.0.1', 5000))
    out['connect_after_linger0'] = (r, p, round(time.monotonic() - t, 3))
    s2, r2, p2 = connect(('127.0.0.1', 5000))
    out['connect_after_that'] = (r2, p2)
    kids.append(l.accept()[0])
    # (b) server closes first (server-side TIME_WAIT on the 4-tuple), client closes second;
    # a new connect then re-uses the same client port toward the same server: the SYN meets
    # the server's TIME_WAIT.
    k = kids[1]
    cport2 = k.getpeername()[1]
    k.close()
    time.sleep(0.05)
    [x for x, (r, p) in zip(socks, res) if p == cport2][0].close()
    time.sleep(0.05)
    out['passive_close_port'] = cport2
    out['states_after_passive_close'] = [x for x in N.tcp_states() if x[1].endswith(':%d' % cport2) or x[0].endswith(':%d' % cport2)]
    t = time.monotonic()
    s3, r3, p3 = connect(('127.0.0.1', 5000))
    out['connect_after_passive_close'] = (r3, p3, round(time.monotonic() - t, 3))
    out['states_after_reconnect'] = [x for x in N.tcp_states() if x[1].endswith(':%d' % cport2) or x[0].endswith(':%d' % cport2)]


def child(group):
    N.require_private_netns()
    out = {'group': group}
    globals()['g_' + group](out)
    print(json.dumps(out))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == '--child':
        child(sys.argv[2])
        return
    outf = '/tmp/claimprobe/claims_probe.json'
    if '--out' in sys.argv:
        outf = sys.argv[sys.argv.index('--out') + 1]
    groups = list(GROUPS)
    if '--only' in sys.argv:
        groups = sys.argv[sys.argv.index('--only') + 1].split(',')
    res = {'header': N.header('python3 claims_probe.py'), 'groups': {}}
    for g in groups:
        res['groups'][g] = N.spawn_in_netns(os.path.abspath(__file__), [g], timeout=60)
    with open(outf, 'w') as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
