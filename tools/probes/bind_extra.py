import json, os, socket, sys, time
sys.path.insert(0, '/work/main/tools/probes')
import nsprobe as N

def wait_tw(port):
    dl = time.time() + 3
    while time.time() < dl:
        if any(x[2] == '06' and x[0].endswith(':%d' % port) for x in N.tcp_states(port)):
            return True
        time.sleep(0.01)
    return False

def restart(lst_opts, port):
    res = {'listener_opts': lst_opts}
    l = socket.socket(); N.set_opts(l, lst_opts); l.bind(('0.0.0.0', port)); l.listen(8)
    c = socket.socket(); c.connect(('127.0.0.1', port)); a, _ = l.accept()
    a.close(); time.sleep(0.02); c.close()
    res['server_tw_seen'] = wait_tw(port)
    res['tcp'] = N.tcp_states(port)
    l.close()
    for so in ([], ['SO_REUSEADDR']):
        s = socket.socket(); N.set_opts(s, so)
        e = N.try_call(s.bind, ('0.0.0.0', port))
        res['rebind_' + ('+'.join(so) or 'none')] = e
        if e == 'OK':
            res['relisten_' + ('+'.join(so) or 'none')] = N.try_call(s.listen, 8)
        s.close()
    return res

def v6(port, o_fam, o_addr, o_v6only, s_fam, s_addr):
    o = socket.socket(o_fam)
    if o_fam == socket.AF_INET6 and o_v6only is not None:
        o.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, o_v6only)
    o.bind((o_addr, port))
    s = socket.socket(s_fam)
    e = N.try_call(s.bind, (s_addr, port))
    return {'o': '%s v6only=%s' % (o_addr, o_v6only), 's': s_addr, 'port': port, 'bind': e}

def child():
    N.require_private_netns()
    N.sysctl('net.ipv4.ip_local_port_range', '40000 40011')
    out = {'kernel': os.uname().release, 'date_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    out['restart'] = [restart([], 8080), restart(['SO_REUSEADDR'], 8081)]
    F4, F6 = socket.AF_INET, socket.AF_INET6
    out['v6'] = [v6(47000, F6, '::', 0, F4, '0.0.0.0'), v6(47001, F6, '::', 1, F4, '0.0.0.0'),
                 v6(47002, F6, '::1', None, F4, '0.0.0.0'), v6(47003, F6, '::', 0, F4, '127.0.0.1'),
                 v6(47004, F4, '0.0.0.0', None, F6, '::'), v6(47005, F4, '127.0.0.1', None, F6, '::1'),
                 v6(47006, F6, '::1', None, F6, '::')]
    print(json.dumps(out, indent=1))

if __name__ == '__main__':
    if sys.argv[1:] == ['--child']:
        child()
    else:
        print(json.dumps(N.spawn_in_netns(os.path.abspath(__file__), []), indent=1))
