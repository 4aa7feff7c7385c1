#!/usr/bin/env python3
"""bind_errors.py -- live-kernel probe: errno of bind()/connect() error paths (IPv4 TCP).

Measures, in a fresh network namespace (unshare -n, range 40000-40011):
  * privileged ports: bind 443/1023/1024 as uid 1000 without capabilities, with the
    netns default net.ipv4.ip_unprivileged_port_start and with it set to 1000 and 0;
    root baseline; precedence (EACCES vs EADDRINUSE, EADDRNOTAVAIL vs EACCES, EACCES vs
    EINVAL on an already-bound socket); port 0 needs no capability
  * bind of an already bound / bind(0)-bound / listening / connected socket (EINVAL), and
    a second bind after bind(addr,0)+IP_BIND_ADDRESS_NO_PORT (port still 0)
  * bind to 192.0.2.1 (not local): plain, with IP_FREEBIND, with ip_nonlocal_bind=1
  * two SO_REUSEADDR sockets bound to the same 127.0.0.1:P both connect() to the same
    listener (4-tuple collision) -> errno of the second connect; and to another listener.
Each case group runs in its own namespace.

Run (as root; writes tests/live/bind_errors.json):
    python3 tools/probes/bind_errors.py [--out FILE]
One group by hand:  unshare -n python3 tools/probes/bind_errors.py --child GROUP
(GROUP = priv | rebind | nonlocal | tuple)
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsprobe as N  # noqa: E402

UID = 1000
GROUPS = ['priv', 'rebind', 'nonlocal', 'tuple']


def case(out, name, expected, got, **extra):
    d = dict(case=name, expected=expected, errno=got, agrees=(expected == got))
    d.update(extra)
    out.append(d)


def unpriv_bind(addr, port, opts=()):
    def fn():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        N.set_opts(s, list(opts))
        r = N.try_call(s.bind, (addr, port))
        res = {'errno': r, 'euid': os.geteuid()}
        if r == 'OK':
            res['port'] = s.getsockname()[1]
        s.close()
        return res
    return N.run_as_uid(UID, fn)


def g_priv(out):
    start = N.sysctl_get('net.ipv4.ip_unprivileged_port_start')
    for p in (443, 1023, 1024):
        exp = 'EACCES' if p < int(start) else 'OK'
        r = unpriv_bind('127.0.0.1', p)
        case(out, 'uid%d bind 127.0.0.1:%d, ip_unprivileged_port_start=%s' % (UID, p, start),
             exp, r['errno'], euid=r['euid'])
    for p in (443, 1023, 1024):
        s = socket.socket()
        case(out, 'root bind 127.0.0.1:%d, ip_unprivileged_port_start=%s' % (p, start), 'OK',
             N.try_call(s.bind, ('127.0.0.1', p)))
        s.close()
    r = unpriv_bind('127.0.0.1', 0)
    case(out, 'uid%d bind 127.0.0.1:0 (autobind), start=%s' % (UID, start), 'OK', r['errno'],
         port=r.get('port'))
    # precedence: EACCES before the conflict check
    holder = socket.socket()
    holder.bind(('127.0.0.1', 443))
    holder.listen(4)
    r = unpriv_bind('127.0.0.1', 443)
    case(out, 'uid%d bind 127.0.0.1:443 while root listens there, start=%s' % (UID, start),
         'EACCES', r['errno'])
    # precedence: EADDRNOTAVAIL (address check) before EACCES
    r = unpriv_bind('192.0.2.1', 443)
    case(out, 'uid%d bind 192.0.2.1:443 (non-local addr, priv port)' % UID, 'EADDRNOTAVAIL',
         r['errno'])

    # precedence: EACCES before EINVAL (already bound socket)
    def fn():
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        return N.try_call(s.bind, ('127.0.0.1', 443))
    case(out, 'uid%d already-bound socket bind 127.0.0.1:443' % UID, 'EACCES',
         N.run_as_uid(UID, fn))
    holder.close()
    for val in (1000, 0):
        N.sysctl('net.ipv4.ip_unprivileged_port_start', val)
        for p in (443, 999, 1000, 1023, 1024):
            exp = 'EACCES' if p < val else 'OK'
            r = unpriv_bind('127.0.0.1', p)
            case(out, 'uid%d bind 127.0.0.1:%d, ip_unprivileged_port_start=%d' % (UID, p, val),
                 exp, r['errno'])
    # sysctl validation: start above range low must be refused
    try:
        N.sysctl('net.ipv4.ip_unprivileged_port_start', 40001)
        got = 'OK'
    except OSError as ex:
        got = N.ename(ex.errno)
    case(out, 'write ip_unprivileged_port_start=40001 with range 40000-40011', 'EINVAL', got)


def g_rebind(out):
    s = socket.socket()
    s.bind(('127.0.0.1', 45001))
    case(out, 'bound socket: bind same addr:port again', 'EINVAL',
         N.try_call(s.bind, ('127.0.0.1', 45001)))
    case(out, 'bound socket: bind other port 45002', 'EINVAL',
         N.try_call(s.bind, ('127.0.0.1', 45002)))
    case(out, 'bound socket: bind 0.0.0.0:0', 'EINVAL', N.try_call(s.bind, ('0.0.0.0', 0)))
    s.close()
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    case(out, 'bind(0)-bound socket: bind 127.0.0.1:0 again', 'EINVAL',
         N.try_call(s.bind, ('127.0.0.1', 0)), first_port=s.getsockname()[1])
    s.close()
    lst = socket.socket()
    lst.bind(('127.0.0.1', 5000))
    lst.listen(8)
    case(out, 'listening socket: bind 127.0.0.1:45003', 'EINVAL',
         N.try_call(lst.bind, ('127.0.0.1', 45003)))
    c = socket.socket()
    c.settimeout(3)
    c.connect(('127.0.0.1', 5000))
    case(out, 'connected (autobound) socket: bind 127.0.0.1:45004', 'EINVAL',
         N.try_call(c.bind, ('127.0.0.1', 45004)))
    u = socket.socket()
    u.listen(4)  # autobind by listen
    case(out, 'socket autobound by listen(): bind 127.0.0.1:45005', 'EINVAL',
         N.try_call(u.bind, ('127.0.0.1', 45005)), listen_port=u.getsockname()[1])
    n = socket.socket()
    n.setsockopt(socket.SOL_IP, N.IP_BIND_ADDRESS_NO_PORT, 1)
    n.bind(('127.0.0.1', 0))
    p0 = n.getsockname()
    r = N.try_call(n.bind, ('127.0.0.1', 45006))
    case(out, 'bind(127.0.0.1:0)+IP_BIND_ADDRESS_NO_PORT (port still 0), then bind 127.0.0.1:45006',
         'OK', r, sockname_after_first='%s:%d' % p0,
         sockname_after_second='%s:%d' % n.getsockname())
    n2 = socket.socket()
    n2.setsockopt(socket.SOL_IP, N.IP_BIND_ADDRESS_NO_PORT, 1)
    n2.bind(('127.0.0.1', 0))
    r = N.try_call(n2.bind, ('127.0.0.2', 45007))
    case(out, 'bind(127.0.0.1:0)+IP_BIND_ADDRESS_NO_PORT, then bind 127.0.0.2:45007 (other addr)',
         'OK', r, sockname_after_second='%s:%d' % n2.getsockname())
    c.close()
    lst.close()


def g_nonlocal(out):
    for addr, exp in (('192.0.2.1', 'EADDRNOTAVAIL'), ('127.0.0.2', 'OK'),
                      ('127.255.255.254', 'OK'), ('0.0.0.0', 'OK')):
        s = socket.socket()
        case(out, 'bind %s:45010 (ip_nonlocal_bind=%s)' % (addr, N.sysctl_get(
            'net.ipv4.ip_nonlocal_bind')), exp, N.try_call(s.bind, (addr, 45010)))
        s.close()
    s = socket.socket()
    case(out, 'bind 192.0.2.1:0 (port 0)', 'EADDRNOTAVAIL', N.try_call(s.bind, ('192.0.2.1', 0)))
    s.close()
    s = socket.socket()
    s.setsockopt(socket.SOL_IP, N.IP_FREEBIND, 1)
    r = N.try_call(s.bind, ('192.0.2.1', 45011))
    case(out, 'bind 192.0.2.1:45011 with IP_FREEBIND', 'OK', r,
         listen=N.try_call(s.listen, 4) if r == 'OK' else 'n/a')
    s.close()
    N.sysctl('net.ipv4.ip_nonlocal_bind', 1)
    s = socket.socket()
    r = N.try_call(s.bind, ('192.0.2.1', 45012))
    case(out, 'bind 192.0.2.1:45012 with ip_nonlocal_bind=1', 'OK', r,
         listen=N.try_call(s.listen, 4) if r == 'OK' else 'n/a')
    s2 = socket.socket()
    s2.settimeout(2)
    r2 = N.try_call(s2.bind, ('192.0.2.1', 0))
    case(out, 'bind 192.0.2.1:0 with ip_nonlocal_bind=1', 'OK', r2,
         port=s2.getsockname()[1] if r2 == 'OK' else None)
    s.close()
    s2.close()


def g_tuple(out):
    lst = socket.socket()
    lst.bind(('127.0.0.1', 5000))
    lst.listen(16)
    lst2 = socket.socket()
    lst2.bind(('127.0.0.1', 5001))
    lst2.listen(16)
    a = socket.socket()
    b = socket.socket()
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(3)
    case(out, 'A SO_REUSEADDR bind 127.0.0.1:46000', 'OK', N.try_call(a.bind, ('127.0.0.1', 46000)))
    case(out, 'B SO_REUSEADDR bind 127.0.0.1:46000', 'OK', N.try_call(b.bind, ('127.0.0.1', 46000)))
    case(out, 'A connect 127.0.0.1:5000', 'OK', N.try_call(a.connect, ('127.0.0.1', 5000)))
    case(out, 'B connect 127.0.0.1:5000 (same 4-tuple as A)', 'EADDRNOTAVAIL',
         N.try_call(b.connect, ('127.0.0.1', 5000)))
    r = N.try_call(b.connect, ('127.0.0.1', 5001))
    case(out, 'B (after the failure) connect 127.0.0.1:5001 (other 4-tuple)', 'OK', r,
         sockname='%s:%d' % b.getsockname() if r == 'OK' else None)
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.settimeout(3)
    case(out, 'C SO_REUSEADDR bind 127.0.0.1:46000 (A,B connected there)', 'OK',
         N.try_call(c.bind, ('127.0.0.1', 46000)))
    case(out, 'C connect 127.0.0.1:5001 (same 4-tuple as B)', 'EADDRNOTAVAIL',
         N.try_call(c.connect, ('127.0.0.1', 5001)))
    d = socket.socket()
    d.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    d.settimeout(3)
    case(out, 'D SO_REUSEADDR bind 0.0.0.0:46000 (A,B connected on 127.0.0.1:46000)', 'OK',
         N.try_call(d.bind, ('0.0.0.0', 46000)))
    case(out, 'D connect 127.0.0.1:5000 (source picked 127.0.0.1 -> same 4-tuple as A)',
         'EADDRNOTAVAIL', N.try_call(d.connect, ('127.0.0.1', 5000)))
    for s in (a, b, c, d, lst, lst2):
        s.close()


def child(group):
    N.require_private_netns()
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40011')
    out = []
    {'priv': g_priv, 'rebind': g_rebind, 'nonlocal': g_nonlocal, 'tuple': g_tuple}[group](out)
    for o in out:
        o['group'] = group
    print(json.dumps(out))


def driver(path):
    script = os.path.abspath(__file__)
    rows = []
    for g in GROUPS:
        rows += N.spawn_in_netns(script, [g])
    hdr = N.header('python3 tools/probes/bind_errors.py  (each group: unshare -n python3 '
                   'tools/probes/bind_errors.py --child GROUP; other uid %d)' % UID)
    hdr['n_cases'] = len(rows)
    hdr['disagreements'] = [r['case'] for r in rows if not r['agrees']]
    with open(path, 'w') as f:
        json.dump({'header': hdr, 'cases': rows}, f, indent=1)
    for r in rows:
        print('%-4s %-14s %-14s %s' % ('' if r['agrees'] else 'XX', r['expected'], r['errno'],
                                       r['case']))


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == '--child':
        child(sys.argv[2])
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        out = os.path.join(here, '..', '..', 'tests', 'live', 'bind_errors.json')
        if '--out' in sys.argv:
            out = sys.argv[sys.argv.index('--out') + 1]
        driver(os.path.normpath(out))
