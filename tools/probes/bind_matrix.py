#!/usr/bin/env python3
"""bind_matrix.py -- live-kernel probe: errno of an explicit TCP bind() of a new socket S
to port P=45000 while another socket O already owns that port, over every combination of

  O options  x S options : {none, SO_REUSEADDR, SO_REUSEPORT, both} each
  O state                : bound | listen | connected | time_wait
  (O addr, S addr)       : (127.0.0.1,127.0.0.1) (0.0.0.0,127.0.0.1) (127.0.0.1,0.0.0.0)
                           (0.0.0.0,0.0.0.0) (127.0.0.1,127.0.0.2)
  uid                    : S created by root (same uid as O) or by uid 1000 (no caps)

and, if S's bind succeeded, the result of S.listen(); for O state "bound" also the result of
O.listen() afterwards (O_listen_after_errno, with S still bound/listening).

O states: bound = bind only; listen = bind + listen; connected = bind(O addr:P) then connect
to a listener on 127.0.0.1:5000 (accepted, kept open; a 0.0.0.0-bound O gets source
127.0.0.1 at connect); time_wait = as connected, then O closes first, the accepted socket
closes, and the probe waits until /proc/net/tcp shows state 06 (TIME_WAIT) on port P.
S is created *after* O reached its state.

Every row runs in its own fresh network namespace (unshare -n), range 40000-40011.

Run (as root, from anywhere; writes tests/live/bind_matrix.json):
    python3 tools/probes/bind_matrix.py            # driver, ~1 min
    python3 tools/probes/bind_matrix.py --out FILE # other output path
One row by hand (prints JSON):  unshare -n python3 tools/probes/bind_matrix.py --child N
Re-check a result file against KERNEL-MAP.md 3.2 (no sockets):
    python3 tools/probes/bind_matrix.py --check tests/live/bind_matrix.json
"""
import json
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsprobe as N  # noqa: E402

PORT = 45000
LPORT = 5000
OPTS = [[], ['SO_REUSEADDR'], ['SO_REUSEPORT'], ['SO_REUSEADDR', 'SO_REUSEPORT']]
STATES = ['bound', 'listen', 'connected', 'time_wait']
ADDRS = [('127.0.0.1', '127.0.0.1'), ('0.0.0.0', '127.0.0.1'), ('127.0.0.1', '0.0.0.0'),
         ('0.0.0.0', '0.0.0.0'), ('127.0.0.1', '127.0.0.2')]
OTHER_UID = 1000


def all_rows():
    rows = []
    for differs in (False, True):
        for st in STATES:
            for oa, sa in ADDRS:
                for oo in OPTS:
                    for so in OPTS:
                        rows.append(dict(o_opts=oo, o_state=st, o_addr=oa, s_opts=so,
                                         s_addr=sa, s_uid_differs=differs))
    return rows


def s_side(spec, o_sock):
    """Create S, bind, listen; for O state 'bound' then try O.listen(). Returns dict."""
    res = {'s_euid': os.geteuid()}
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    N.set_opts(s, spec['s_opts'])
    res['bind_errno'] = N.try_call(s.bind, (spec['s_addr'], PORT))
    if res['bind_errno'] == 'OK':
        res['s_listen_errno'] = N.try_call(s.listen, 8)
    else:
        res['s_listen_errno'] = 'n/a'
    if spec['o_state'] == 'bound':
        res['o_listen_after_errno'] = N.try_call(o_sock.listen, 8)
    else:
        res['o_listen_after_errno'] = 'n/a'
    s.close()
    return res


def child(idx):
    N.require_private_netns()
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40011')
    spec = all_rows()[idx]
    row = dict(row=idx, **spec)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(('127.0.0.1', LPORT))
    lst.listen(16)
    lst.settimeout(3)
    o = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    N.set_opts(o, spec['o_opts'])
    row['o_bind_errno'] = N.try_call(o.bind, (spec['o_addr'], PORT))
    keep = []
    st = spec['o_state']
    if st == 'listen':
        o.listen(8)
    elif st in ('connected', 'time_wait'):
        o.settimeout(3)
        o.connect(('127.0.0.1', LPORT))
        c, _ = lst.accept()
        keep.append(c)
        row['o_addr_effective'] = '%s:%d' % o.getsockname()
        if st == 'time_wait':
            o.close()
            time.sleep(0.02)
            c.close()
            keep = []
            deadline = time.time() + 3
            seen = False
            while time.time() < deadline:
                if any(x[2] == '06' and x[0].endswith(':%d' % PORT) for x in N.tcp_states(PORT)):
                    seen = True
                    break
                time.sleep(0.01)
            row['tw_seen'] = seen
            row['tcp_table_port'] = N.tcp_states(PORT)
    if st in ('bound', 'listen'):
        row['o_addr_effective'] = '%s:%d' % o.getsockname()
    if spec['s_uid_differs']:
        row.update(N.run_as_uid(OTHER_UID, lambda: s_side(spec, o)))
    else:
        row.update(s_side(spec, o))
    print(json.dumps(row))


def _overlap(a, b):
    return a == b or a == '0.0.0.0' or b == '0.0.0.0'


def _conflict(new, own):
    """KERNEL-MAP.md section 3.2 predicate for an explicit bind / listen re-check
    (relax = reuseport_ok = true).  new/own: dict(opts, addr, uid, state)."""
    if not _overlap(new['addr'], own['addr']):
        return False
    if 'SO_REUSEADDR' in new['opts'] and 'SO_REUSEADDR' in own['opts'] \
            and own['state'] != 'listen':
        return False
    if 'SO_REUSEPORT' in new['opts'] and 'SO_REUSEPORT' in own['opts'] and \
            (own['state'] == 'time_wait' or new['uid'] == own['uid']):
        return False
    return True


def predicate_check(rows):
    """Compare every measured row with the section 3.2 predicate; return mismatching rows."""
    bad = []
    for r in rows:
        oaddr = r['o_addr_effective'].split(':')[0]
        o = dict(opts=r['o_opts'], addr=oaddr, uid=0, state=r['o_state'])
        s = dict(opts=r['s_opts'], addr=r['s_addr'], uid=OTHER_UID if r['s_uid_differs'] else 0,
                 state='bound')
        eb = 'EADDRINUSE' if _conflict(s, o) else 'OK'
        el = 'n/a' if eb != 'OK' else ('EADDRINUSE' if _conflict(dict(s, state='listen'), o)
                                       else 'OK')
        eo = 'n/a'
        if r['o_state'] == 'bound':
            if eb != 'OK':
                eo = 'OK'
            else:
                sown = dict(s, state='listen' if el == 'OK' else 'bound')
                eo = 'EADDRINUSE' if _conflict(dict(o, state='listen'), sown) else 'OK'
        got = (r['bind_errno'], r['s_listen_errno'], r['o_listen_after_errno'])
        if got != (eb, el, eo):
            bad.append({'row': r['row'], 'measured': got, 'predicate': (eb, el, eo)})
    return bad


def driver(out):
    rows = all_rows()
    script = os.path.abspath(__file__)
    t0 = time.time()
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda i: N.spawn_in_netns(script, [i]), range(len(rows))))
    hdr = N.header('python3 tools/probes/bind_matrix.py  (each row: unshare -n python3 '
                   'tools/probes/bind_matrix.py --child N; ip_local_port_range 40000 40011, '
                   'P=%d, listener 127.0.0.1:%d, other uid %d)' % (PORT, LPORT, OTHER_UID))
    hdr['elapsed_s'] = round(time.time() - t0, 1)
    hdr['n_rows'] = len(results)
    bad = [r['row'] for r in results if r['o_bind_errno'] != 'OK'
           or (r['o_state'] == 'time_wait' and not r.get('tw_seen'))]
    hdr['setup_failures'] = bad
    mism = predicate_check(results)
    hdr['kernel_map_3_2_predicate_mismatches'] = mism
    hdr['kernel_map_3_2_note'] = ('predicate_check() re-derives bind_errno, s_listen_errno and '
                                  'o_listen_after_errno of every row from KERNEL-MAP.md 3.2 '
                                  '(O address = its effective address after connect)')
    with open(out, 'w') as f:
        json.dump({'header': hdr, 'rows': results}, f, indent=1)
    print('wrote %s: %d rows in %.1fs, setup failures: %s, mismatches vs KERNEL-MAP 3.2: %d'
          % (out, len(results), time.time() - t0, bad, len(mism)))


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == '--child':
        child(int(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == '--check':
        print(json.dumps(predicate_check(json.load(open(sys.argv[2]))['rows'])))
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        out = os.path.join(here, '..', '..', 'tests', 'live', 'bind_matrix.json')
        if '--out' in sys.argv:
            out = sys.argv[sys.argv.index('--out') + 1]
        driver(os.path.normpath(out))
