"""Live-kernel probe for issue 11's TCP state-machine items (Python 3 stdlib only).

Every case runs in its own throw-away network namespace (`unshare -n`, re-exec of this file
with --child CASE; nsprobe.require_private_netns() guards every sysctl write). Loopback only,
plus a veth pair (10.9.0.1/24 on d0; nobody answers ARP for 10.9.0.2, so a connect there
stays in SYN_SENT) in the cases that need a silent peer.

    python3 tools/probes/tcp_edges_probe.py > tests/live/tcp_edges.json
"""
import errno
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsprobe as N  # noqa: E402

TCP_RTO_MAX_MS = 44
TCP_SYNCNT = 7
IPV6_V6ONLY = 26


def en(e):
    return N.ename(e)


def cx(s, addr):
    """connect_ex with the errno name."""
    return en(s.connect_ex(addr))


def so_error(s):
    return en(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))


def local(s):
    try:
        return '%s:%d' % s.getsockname()[:2]
    except OSError as ex:
        return en(ex.errno)


def states(port):
    return sorted({c for _a, _b, c in N.tcp_states(port)})


def dummy():
    # a veth pair whose far end has no address: ARP for 10.9.0.2 goes unanswered, so a SYN
    # toward it never leaves and the connect stays in SYN_SENT (this kernel has no dummy module)
    subprocess.run(['ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'], check=True)
    subprocess.run(['ip', 'addr', 'add', '10.9.0.1/24', 'dev', 'd0'], check=True)
    subprocess.run(['ip', 'link', 'set', 'd0', 'up'], check=True)
    subprocess.run(['ip', 'link', 'set', 'd1', 'up'], check=True)


def listener(port, addr='127.0.0.1'):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port))
    l.listen(128)
    return l


# -- item 1: a failed connect() gives back a port bind(0) chose --------------------------------
def case_failed_connect_releases_port():
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40000')
    N.sysctl('net.ipv4.ip_autobind_reuse', 1)
    l1, l2 = listener(5000), listener(5001)
    out = {}
    for variant, addr in (('bind0', ('127.0.0.1', 0)), ('explicit', ('127.0.0.1', 40000))):
        a, b = socket.socket(), socket.socket()
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        r = {'bind_a': N.try_call(a.bind, addr), 'bind_b': N.try_call(b.bind, addr),
             'local_b': local(b)}
        r['a_to_5000'] = cx(a, ('127.0.0.1', 5000))
        r['b_to_5000'] = cx(b, ('127.0.0.1', 5000))
        r['local_b_after_fail'] = local(b)
        r['b_to_5001'] = cx(b, ('127.0.0.1', 5001))
        r['local_b_end'] = local(b)
        out[variant] = r
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            s.close()
        while True:  # drop the accepted children with RST so the next variant starts clean
            r_, _, _ = select.select([l1, l2], [], [], 0.05)
            if not r_:
                break
            for l in r_:
                c, _ = l.accept()
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                c.close()
        time.sleep(0.05)
    return out


# -- item 3: self-connect (simultaneous open with itself) --------------------------------------
def case_self_connect():
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40000')
    s = socket.socket()
    s.settimeout(5)
    t0 = time.monotonic()
    r = {'connect': N.try_call(s.connect, ('127.0.0.1', 40000))}
    r['elapsed_s'] = round(time.monotonic() - t0, 4)
    r['local'] = local(s)
    try:
        r['peer'] = '%s:%d' % s.getpeername()
    except OSError as ex:
        r['peer'] = en(ex.errno)
    r['proc_states'] = states(40000)
    # explicit bind to the port it connects to
    s2 = socket.socket()
    s2.bind(('127.0.0.2', 41000))
    s2.settimeout(5)
    r['bound_self_connect'] = N.try_call(s2.connect, ('127.0.0.2', 41000))
    return r


# -- item 4: the errno sequence of repeated connect() calls ------------------------------------
def case_connect_errnos():
    dummy()
    out = {}
    # a) non-blocking, refused, nobody reads SO_ERROR
    s = socket.socket()
    s.setblocking(False)
    out['refused_nb'] = [cx(s, ('127.0.0.1', 5999)) for _ in range(4)]
    # b) non-blocking, refused, SO_ERROR read after the first
    s = socket.socket()
    s.setblocking(False)
    seq = [cx(s, ('127.0.0.1', 5999))]
    time.sleep(0.05)
    seq.append('SO_ERROR=' + so_error(s))
    seq += [cx(s, ('127.0.0.1', 5999)) for _ in range(3)]
    out['refused_nb_so_error_read'] = seq
    # b2) non-blocking, refused, then shutdown(SHUT_WR), then connect again
    s = socket.socket()
    s.setblocking(False)
    seq = [cx(s, ('127.0.0.1', 5999))]
    time.sleep(0.05)
    seq.append('shutdown=' + N.try_call(s.shutdown, socket.SHUT_WR))
    seq += [cx(s, ('127.0.0.1', 5999)) for _ in range(2)]
    out['refused_nb_shutdown'] = seq
    # c) non-blocking to a listener
    l = listener(5000)
    s = socket.socket()
    s.setblocking(False)
    out['listener_nb'] = [cx(s, ('127.0.0.1', 5000)) for _ in range(3)]
    # d) blocking, established, then the peer resets (SO_LINGER 0 close)
    s = socket.socket()
    seq = [cx(s, ('127.0.0.1', 5000))]
    c, _ = l.accept()
    while True:
        r_, _, _ = select.select([l], [], [], 0.05)
        if not r_:
            break
        l.accept()[0].close()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    c.close()
    time.sleep(0.05)
    seq += [cx(s, ('127.0.0.1', 5000)) for _ in range(3)]
    out['established_then_rst'] = seq
    # d2) same, SO_ERROR read first
    s = socket.socket()
    seq = [cx(s, ('127.0.0.1', 5000))]
    c, _ = l.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    c.close()
    time.sleep(0.05)
    seq.append('SO_ERROR=' + so_error(s))
    seq += [cx(s, ('127.0.0.1', 5000)) for _ in range(2)]
    out['established_then_rst_so_error_read'] = seq
    # e) blocking, refused
    s = socket.socket()
    out['refused_blocking'] = [cx(s, ('127.0.0.1', 5999)) for _ in range(3)]
    # f) non-blocking to a silent peer (dummy drops the SYN)
    s = socket.socket()
    s.setblocking(False)
    seq = [cx(s, ('10.9.0.2', 80)) for _ in range(3)]
    seq.append('local=' + local(s))
    out['silent_nb'] = seq
    # g) established, peer closes normally (FIN): connect again
    s = socket.socket()
    seq = [cx(s, ('127.0.0.1', 5000))]
    c, _ = l.accept()
    c.close()
    time.sleep(0.05)
    seq += [cx(s, ('127.0.0.1', 5000)) for _ in range(2)]
    out['established_then_fin'] = seq
    # h) established, we shut down and the peer closes: connect again
    s = socket.socket()
    seq = [cx(s, ('127.0.0.1', 5000))]
    c, _ = l.accept()
    s.shutdown(socket.SHUT_WR)
    c.close()
    time.sleep(0.05)
    seq += [cx(s, ('127.0.0.1', 5000)) for _ in range(2)]
    out['established_shutdown_peer_closed'] = seq
    return out


# -- item 12: shutdown(SHUT_WR) on LISTEN and on SYN_SENT --------------------------------------
def case_shutdown():
    dummy()
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40000')
    out = {}
    l = socket.socket()
    l.bind(('127.0.0.1', 5000))
    l.listen(8)
    out['listen_shut_wr'] = N.try_call(l.shutdown, socket.SHUT_WR)
    c = socket.socket()
    out['listen_still_accepts_connect'] = N.try_call(c.connect, ('127.0.0.1', 5000))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    c.close()  # RST: its port 40000 is free at once
    l.close()
    s = socket.socket()
    s.setblocking(False)
    out['syn_sent_connect'] = cx(s, ('10.9.0.2', 80))
    out['syn_sent_local'] = local(s)
    out['syn_sent_proc'] = states(40000)
    out['syn_sent_shut_wr'] = N.try_call(s.shutdown, socket.SHUT_WR)
    out['after_local'] = local(s)
    out['after_proc'] = states(40000)
    out['after_so_error'] = so_error(s)
    b = socket.socket()
    out['bind0_after'] = N.try_call(b.bind, ('0.0.0.0', 0))
    out['bind0_after_local'] = local(b)
    b.close()
    out['reconnect_same_socket'] = cx(s, ('10.9.0.2', 80))
    s2 = socket.socket()
    out['unconnected_shut_wr'] = N.try_call(s2.shutdown, socket.SHUT_WR)
    return out


# -- item 11: a SYN meeting a TIME_WAIT with no listener; RST into a FIN_WAIT2 TW ------------
def case_tw_syn_no_listener():
    out = {}
    l = listener(8080)
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(('127.0.0.1', 40000))
    c.connect(('127.0.0.1', 8080))
    a, _ = l.accept()
    a.close()   # server closes first: server-side TIME_WAIT 127.0.0.1:8080 <-> :40000
    time.sleep(0.05)
    c.close()
    time.sleep(0.05)
    l.close()
    out['before'] = N.tcp_states(8080)
    c2 = socket.socket()
    c2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c2.bind(('127.0.0.1', 40000))
    c2.settimeout(5)
    t0 = time.monotonic()
    out['connect'] = N.try_call(c2.connect, ('127.0.0.1', 8080))
    out['connect_elapsed_s'] = round(time.monotonic() - t0, 4)
    time.sleep(0.05)
    out['after'] = N.tcp_states(8080)
    b = socket.socket()
    out['bind_8080_after'] = N.try_call(b.bind, ('127.0.0.1', 8080))
    return out


def case_fw2_tw_syn_rst():
    """Client-side FIN_WAIT2-substate TW (client closed, server never did); then a SYN to it and
    an RST (SO_LINGER 0 close of the server's CLOSE_WAIT socket)."""
    out = {}
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40000')
    l = listener(8080)
    c = socket.socket()
    c.connect(('127.0.0.1', 8080))
    a, _ = l.accept()
    c.close()  # orphaned FIN_WAIT2 -> TW substate FIN_WAIT2; a in CLOSE_WAIT
    time.sleep(0.05)
    out['before'] = N.tcp_states(40000)
    # A SYN toward the TW's local end (40000) from 127.0.0.1:8081 hits no TW (other 4-tuple);
    # the same 4-tuple as the TW would need the server port: bind 127.0.0.1:8080 + REUSEADDR
    # is refused while the listener runs, so close the listener first.
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    a.close()  # RST from the server's CLOSE_WAIT into the client's FIN_WAIT2 TW
    time.sleep(0.05)
    out['after_rst'] = N.tcp_states(40000)
    s = socket.socket()
    out['connect_after_rst'] = N.try_call(s.connect, ('127.0.0.1', 8080))
    return out


# -- item 14 -----------------------------------------------------------------------------------
def case_item14():
    out = {}
    s = socket.socket()
    old = N.sysctl_get('net.ipv4.tcp_rto_max_ms')
    N.sysctl('net.ipv4.tcp_rto_max_ms', 5000)
    s2 = socket.socket()
    out['rto_max'] = {'sysctl_before': old,
                      'socket_made_before_write': s.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS),
                      'socket_made_after_write': s2.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS)}
    for a in ('224.0.0.1', '255.255.255.255', '239.1.2.3', '127.255.255.255'):
        b = socket.socket()
        out['bind_' + a] = N.try_call(b.bind, (a, 5000))
        out['listen_' + a] = N.try_call(b.listen, 1) if out['bind_' + a] == 'OK' else None
    v = socket.socket(socket.AF_INET6)
    v.bind(('::1', 0))
    out['v6only_after_bind'] = N.try_call(v.setsockopt, socket.IPPROTO_IPV6, IPV6_V6ONLY, 1)
    v = socket.socket(socket.AF_INET6)
    out['v6only_before_bind'] = N.try_call(v.setsockopt, socket.IPPROTO_IPV6, IPV6_V6ONLY, 1)
    v4 = socket.socket()
    out['v6only_on_af_inet'] = N.try_call(v4.setsockopt, socket.IPPROTO_IPV6, IPV6_V6ONLY, 1)
    v = socket.socket(socket.AF_INET6)
    v.setsockopt(socket.IPPROTO_IPV6, IPV6_V6ONLY, 0)
    v.connect(('::ffff:127.0.0.1', 5999)) if False else None
    l = socket.socket(socket.AF_INET6)
    l.listen(1)  # autobind
    out['v6only_after_listen_autobind'] = N.try_call(l.setsockopt, socket.IPPROTO_IPV6, IPV6_V6ONLY, 1)
    # listener TCP_SYNCNT is readable (its use for SYN-ACK retries: source, reqsk_timer_handler)
    l2 = socket.socket()
    out['listener_syncnt_set'] = N.try_call(l2.setsockopt, socket.IPPROTO_TCP, TCP_SYNCNT, 2)
    return out


# -- item 9: FIN_WAIT2 lifetime for tcp_fin_timeout 90 and 0 ----------------------------------
def fin_wait2_life(fin_timeout, limit):
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40000')
    N.sysctl('net.ipv4.tcp_fin_timeout', fin_timeout)
    l = listener(8080)
    c = socket.socket()
    c.connect(('127.0.0.1', 8080))
    a, _ = l.accept()
    t0 = time.monotonic()
    c.close()  # FIN_WAIT1 -> FIN_WAIT2 (orphan); a stays in CLOSE_WAIT (never closes)
    seen = []
    last = None
    while time.monotonic() - t0 < limit:
        st = [x[2] for x in N.tcp_states(40000)]
        if st != last:
            seen.append([round(time.monotonic() - t0, 3), st])
            last = st
        if not st:
            break
        time.sleep(0.01 if fin_timeout == 0 else 0.25)
    return {'tcp_fin_timeout': fin_timeout, 'changes_of_states_on_port_40000': seen,
            'note': '/proc/net/tcp st: 04 FIN_WAIT1, 05 FIN_WAIT2 (full socket, or a TW sock whose '
                    'tw_substate is FIN_WAIT2: get_timewait4_sock prints the substate), 06 '
                    'TIME_WAIT, [] = port free'}


def case_fin_timeout_90():
    return fin_wait2_life(90, 100)


def case_fin_timeout_0():
    return fin_wait2_life(0, 10)


def case_fin_timeout_61():
    return fin_wait2_life(61, 20)


CASES = {k[5:]: v for k, v in globals().items() if k.startswith('case_')}


def main():
    if sys.argv[1:2] == ['--child']:
        N.require_private_netns()
        print(json.dumps(CASES[sys.argv[2]]()))
        return
    want = sys.argv[1:] or sorted(CASES)
    res = {}
    threads = []

    def run(name):
        try:
            res[name] = N.spawn_in_netns(__file__, [name], timeout=300)
        except Exception as ex:  # keep the others
            res[name] = {'error': str(ex)}
    for name in want:
        t = threading.Thread(target=run, args=(name,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    out = N.header('python3 tools/probes/tcp_edges_probe.py ' + ' '.join(sys.argv[1:]))
    out['cases'] = {k: res[k] for k in sorted(res)}
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
