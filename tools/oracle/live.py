"""Live-kernel side of tools/kernel-oracle: run one scenario with real sockets (stdlib only).

Runs in a child started by the oracle as `unshare -n python3 tools/kernel-oracle --live-child
...`, i.e. in a fresh network namespace ("base").  Safety:
  * require_private_netns() (tools/probes/nsprobe.py) refuses to run unless the process is in a
    fresh namespace that differs from the driver's ($PROBE_HOST_NETNS) and holds only lo;
  * every sysctl write first checks that the calling thread's namespace is one this run created;
  * traffic goes only to loopback or to addresses on veths between namespaces of this run;
  * every loop is bounded; connect() has a 2 s timeout; child processes are killed by pid.

Topology: one scenario host and no externals -> the base namespace is the host.  Otherwise every
host gets its own namespace (a holder process that unshare()d, PR_SET_PDEATHSIG so it never
outlives us), the base namespace holds a bridge br0, and each host with addresses gets a veth
"eth0" on it carrying the scenario addresses (a one-host scenario: a veth "eth0" whose peer stays in the namespace).  External endpoints live in an extra namespace
"ext" on the same bridge (addresses as /32 or /128, on-link routes both ways) with real
listeners; a host without addresses gets the external address on its lo instead (noted).
An external peer closes its side right after the client closes (portsim: "an external peer is
assumed to close at once").
"""
import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'probes'))
import scenario as S  # noqa: E402
import nsprobe  # noqa: E402  (the namespace guard of the live probes)

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
CAP_NET_BIND_SERVICE = 10
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

IP_BIND_ADDRESS_NO_PORT = 24
IP_LOCAL_PORT_RANGE = 51
SO_REUSEPORT = 15
IPV6_V6ONLY = 26

CONNECT_TIMEOUT = 2.0
ACCEPT_WAIT = 0.1
MAX_SOCKETS = 15000

_libc = ctypes.CDLL(None, use_errno=True)

# Names as portsim prints them (sim/base/errno_name.cc); Python calls 95 ENOTSUP.
_ENAMES = {errno.EAGAIN: 'EAGAIN', errno.EOPNOTSUPP: 'EOPNOTSUPP'}


def ename(e):
    if not e:
        return 'OK'
    return _ENAMES.get(e) or errno.errorcode.get(e, 'E%d' % e)


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, '%s: %s' % (what, os.strerror(e)))


def setns(fd):
    _check(_libc.setns(fd, CLONE_NEWNET), 'setns')


def netns_id():
    return os.readlink('/proc/thread-self/ns/net')


class _CapHeader(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32), ('permitted', ctypes.c_uint32),
                ('inheritable', ctypes.c_uint32)]


def drop_to(uid, cap_bind):
    """In a forked child: become uid/gid `uid` holding only CAP_NET_BIND_SERVICE if cap_bind."""
    if cap_bind:
        _check(_libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), 'prctl(PR_SET_KEEPCAPS)')
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    bits = (1 << CAP_NET_BIND_SERVICE) if cap_bind else 0
    data[0].effective = data[0].permitted = bits
    _check(_libc.capset(ctypes.byref(hdr), ctypes.byref(data)), 'capset')


def raw_connect_v6(s, addr, port):
    """connect(2) an AF_INET socket to an IPv6 sockaddr (Python's resolver refuses before the
    kernel sees it); returns the kernel's errno (0 = connected)."""
    libc = ctypes.CDLL(None, use_errno=True)
    sa = struct.pack('=H', socket.AF_INET6) + struct.pack('!H', port) + b'\0' * 4 + \
        socket.inet_pton(socket.AF_INET6, addr) + b'\0' * 4
    buf = ctypes.create_string_buffer(sa, len(sa))
    rc = libc.connect(s.fileno(), buf, len(sa))
    return 0 if rc == 0 else ctypes.get_errno()


def fmt_local(s):
    try:
        a = s.getsockname()
    except OSError:
        return None
    if s.family == socket.AF_INET6:
        return '[%s]:%d' % (a[0].split('%')[0], a[1])
    return '%s:%d' % (a[0], a[1])


class Holder:
    """A child process sitting in a fresh network namespace (it unshare()d); we keep an fd."""

    def __init__(self, name):
        self.name = name
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # holder
            try:
                os.close(r)
                _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                _check(_libc.unshare(CLONE_NEWNET), 'unshare(CLONE_NEWNET)')
                os.write(w, b'1')
                os.close(w)
                for _ in range(3600):  # bounded: at most an hour; normally killed much sooner
                    time.sleep(1)
            finally:
                os._exit(0)
        os.close(w)
        ok = os.read(r, 1)
        os.close(r)
        self.pid = pid
        if ok != b'1':
            os.waitpid(pid, 0)
            self.pid = None
            raise OSError('cannot create a network namespace for %s' % name)
        self.fd = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY)

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def ip(*args):
    p = subprocess.run(['ip'] + list(args), capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        raise OSError('ip %s: %s' % (' '.join(args), p.stderr.strip()))


class LiveRun:
    def __init__(self, sc, until=None):
        self.sc = sc
        self.until = until
        self.hosts = S.hosts_of(sc)
        self.notes = []
        self.ns_fd = {}        # host name -> fd of its netns (None = base)
        self.ours = set()      # netns ids this run may write sysctls in
        self.holders = []
        self.cur = None        # netns fd we are in (None = base)
        self.base_fd = None
        self.socks = {}        # name -> socket
        self.owner = {}        # name -> (uid, cap) for sockets created with credentials
        self.family = {}       # name -> AF_INET / AF_INET6
        self.ext_ns = None
        self.ext_listeners = {}  # (addr, port) -> listening socket in ext ns (or host ns)
        self.ext_peers = {}      # client local endpoint str -> accepted external socket
        self.ext_conn = {}       # client sock name -> its local endpoint str (connected to external)
        self.ext_alias_hosts = set()

    # -- namespaces ------------------------------------------------------------------------
    def enter(self, fd):
        if fd == self.cur:
            return
        setns(self.base_fd if fd is None else fd)
        self.cur = fd

    def sysctl(self, name, value):
        """Write a sysctl in the current namespace (only one this run created)."""
        here = netns_id()
        host = os.environ.get('PROBE_HOST_NETNS')
        if here not in self.ours or (host and here == host):
            raise SystemExit('refusing to write %s outside the oracle namespaces' % name)
        path = '/proc/sys/' + name.replace('.', '/')
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return errno.ENOENT
        try:
            os.write(fd, str(value).encode())
            return 0
        except OSError as ex:
            return ex.errno
        finally:
            os.close(fd)

    def setup(self):
        nsprobe.require_private_netns()  # also brings lo up in base
        self.base_fd = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
        self.ours.add(netns_id())
        externals = S.externals(self.sc)
        single = len(self.hosts) == 1 and not externals
        if single:
            self.ns_fd[self.hosts[0][0]] = None
        else:
            for h in self.hosts:
                hd = Holder(h[0])
                self.holders.append(hd)
                self.ns_fd[h[0]] = hd.fd
            if externals:
                self.ext_ns = Holder('external endpoints')
                self.holders.append(self.ext_ns)
        for h in self.holders:
            self.enter(h.fd)
            self.ours.add(netns_id())
            ip('link', 'set', 'lo', 'up')
        self.enter(None)
        linked = [(h, self.holders[k]) for k, h in enumerate(self.hosts) if not single and h[2]]
        if self.ext_ns is not None:
            linked.append((('<external>', '', [], []), self.ext_ns))
        if linked:
            ip('link', 'add', 'br0', 'type', 'bridge')
            ip('link', 'set', 'br0', 'up')
            for k, (h, hd) in enumerate(linked):
                ip('link', 'add', 'v%d' % k, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', str(hd.pid))
                ip('link', 'set', 'v%d' % k, 'master', 'br0')
                ip('link', 'set', 'v%d' % k, 'up')
        # per host: addresses, sysctls (file order, as portsim applies them). A host with
        # addresses but no veth to the bridge (a one-host scenario) gets a stand-in "eth0": one
        # end of a veth pair whose other end ("eth0p", up, no address) stays in the same
        # namespace (this kernel has no dummy driver). Its addresses are local; its subnet leads
        # nowhere.
        veth_hosts = {h[0] for h, _hd in linked}
        for name, _machine, addrs, sysctls in self.hosts:
            self.enter(self.ns_fd[name])
            if addrs and name not in veth_hosts:
                ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p')
                ip('link', 'set', 'eth0p', 'up')
            for a in addrs:
                ip('addr', 'add', a, 'dev', 'eth0', *(['nodad'] if ':' in a else []))
            if addrs:
                ip('link', 'set', 'eth0', 'up')
            for k, v in sysctls:
                e = self.sysctl(k, v)
                if e:
                    raise S.Unsupported('host %s: sysctl %s=%s refused by the kernel: %s'
                                        % (name, k, v, ename(e)))
        if externals:
            self.setup_externals(externals)
        self.enter(None)

    def setup_externals(self, externals):
        self.refuse = {e for e, ans in externals if ans == 'refuse'}
        eps = [S.parse_endpoint(e) for e, _ans in externals]
        ext = self.ext_ns
        self.enter(ext.fd)
        addrs = sorted({(a, fam) for a, _p, fam in eps})
        for a, fam in addrs:
            ip('addr', 'add', a + ('/128' if fam == 6 else '/32'), 'dev', 'eth0',
               *(['nodad'] if fam == 6 else []))
        ip('link', 'set', 'eth0', 'up')
        for name, _m, haddrs, _s in self.hosts:
            for ha in haddrs:
                ip('route', 'add', _prefix(ha), 'dev', 'eth0')
        for name, _m, haddrs, _s in self.hosts:
            self.enter(self.ns_fd[name])
            fams = {(':' in x) for x in haddrs}
            for a, fam in addrs:
                if (fam == 6) in fams:
                    ip('route', 'add', a + ('/128' if fam == 6 else '/32'), 'dev', 'eth0')
                else:  # no interface of that family: the external address goes on lo here
                    ip('addr', 'add', a + ('/128' if fam == 6 else '/32'), 'dev', 'lo')
                    self.ext_alias_hosts.add(name)
        if self.ext_alias_hosts:
            self.notes.append('hosts %s have no address: external endpoints were put on their lo '
                              '(source address differs from a real network)' % sorted(self.ext_alias_hosts))
        for (text, ans), (a, p, fam) in zip(externals, eps):
            if p is not None and ans == 'accept':
                for name in [None] + sorted(self.ext_alias_hosts):
                    self.ext_listen(a, p, fam, name)

    def ext_listen(self, a, p, fam, alias_host=None):
        key = (a, p, alias_host)
        if key in self.ext_listeners:
            return
        self.enter(self.ext_ns.fd if alias_host is None else self.ns_fd[alias_host])
        s = socket.socket(socket.AF_INET6 if fam == 6 else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, p))
        s.listen(4096)
        s.setblocking(False)
        self.ext_listeners[key] = s

    def drain_externals(self):
        for s in self.ext_listeners.values():
            for _ in range(5000):
                try:
                    c, peer = s.accept()
                except (BlockingIOError, InterruptedError):
                    break
                key = ('[%s]:%d' % (peer[0], peer[1])) if s.family == socket.AF_INET6 else '%s:%d' % peer[:2]
                self.ext_peers[key] = c

    def teardown(self):
        for s in list(self.socks.values()) + list(self.ext_peers.values()) + \
                list(self.ext_listeners.values()):
            try:
                s.close()
            except OSError:
                pass
        for h in self.holders:
            h.stop()
        if self.base_fd is not None:
            try:
                setns(self.base_fd)
            except OSError:
                pass

    # -- calls -----------------------------------------------------------------------------
    def families(self, steps):
        for st in steps:
            c = st['call']
            a = c.get('addr') or c.get('to')
            if st['sock'] and st['sock'] not in self.family and c.get('family') in ('inet', 'inet6'):
                self.family[st['sock']] = socket.AF_INET6 if c['family'] == 'inet6' else socket.AF_INET
            elif st['sock'] and a and st['sock'] not in self.family:
                self.family[st['sock']] = socket.AF_INET6 if S.parse_endpoint(a)[2] == 6 else socket.AF_INET

    def apply_opt(self, s, name, v):
        if name == 'SO_REUSEADDR':
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(v))
        elif name == 'SO_REUSEPORT':
            s.setsockopt(socket.SOL_SOCKET, SO_REUSEPORT, int(v))
        elif name == 'IP_BIND_ADDRESS_NO_PORT':
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, int(v))
        elif name == 'IPV6_V6ONLY':
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_V6ONLY, int(v))
        elif name == 'SO_LINGER':
            on = 0 if v == 'off' else 1
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', on, 0))
        elif name == 'TCP_SYNCNT':
            s.setsockopt(socket.IPPROTO_TCP, 7, int(v))
        elif name == 'IP_LOCAL_PORT_RANGE':
            if isinstance(v, str):
                lo, hi = (int(x) for x in v.split('-'))
                v = lo | hi << 16
            s.setsockopt(socket.SOL_IP, IP_LOCAL_PORT_RANGE, struct.pack('=I', int(v)))
        else:
            raise S.Unsupported('socket option %s' % name)

    def do_op(self, st, s):
        """Perform the op of step st on socket s (after its opts); return an errno (0 = OK)."""
        c = st['call']
        op = c['op']
        try:
            for k, v in (c.get('opts') or {}).items():
                self.apply_opt(s, k, v)
            if op == 'setsockopt':
                self.apply_opt(s, c['opt'], c['value'])
            elif op == 'socket':
                pass
            elif op == 'shutdown':
                s.shutdown(socket.SHUT_WR)
            elif op == 'bind':
                a, p, _ = S.parse_endpoint(c['addr'])
                s.bind((a, p))
            elif op == 'listen':
                s.listen(int(c.get('backlog', 128)))
            elif op == 'connect':
                a, p, fam = S.parse_endpoint(c['to'])
                if fam == 6 and s.family == socket.AF_INET:
                    return raw_connect_v6(s, a, p)  # the kernel, not Python, must answer
                if c.get('nonblock'):  # O_NONBLOCK: EINPROGRESS / EALREADY / the outcome
                    s.setblocking(False)
                    try:
                        return s.connect_ex((a, p))
                    finally:
                        s.setblocking(True)
                # A real blocking connect(2), bounded by SO_SNDTIMEO (inet_wait_for_connect
                # then returns EINPROGRESS). Python's settimeout() would instead connect
                # non-blocking and read SO_ERROR, leaving sock->state SS_CONNECTING and sk_err
                # consumed: a second connect() on the socket would then answer differently.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                             struct.pack('ll', int(CONNECT_TIMEOUT), 0))
                e = s.connect_ex((a, p))
                return 'TIMEOUT' if e == errno.EINPROGRESS else e
        except socket.timeout:
            return 'TIMEOUT'
        except OSError as ex:
            return ex.errno or errno.EIO
        return 0

    def in_child(self, cred, st, s):
        """Run the op as another uid in a forked child; a new socket comes back by SCM_RIGHTS."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                a.close()
                drop_to(cred[0], cred[1])
                sk = s if s is not None else socket.socket(self.family.get(st['sock'], socket.AF_INET),
                                                           socket.SOCK_STREAM)
                e = self.do_op(st, sk)
                socket.send_fds(b, [json.dumps({'err': e}).encode()], [sk.fileno()])
            except BaseException as ex:  # report everything to the parent
                try:
                    b.sendall(json.dumps({'exc': repr(ex)}).encode())
                except OSError:
                    pass
                code = 1
            finally:
                os._exit(code)
        b.close()
        a.settimeout(CONNECT_TIMEOUT + 5)
        try:
            msg, fds, _flags, _addr = socket.recv_fds(a, 65536, 1)
        finally:
            a.close()
            os.waitpid(pid, 0)
        d = json.loads(msg.decode() or '{"exc": "no answer"}')
        if 'exc' in d:
            raise RuntimeError('uid %d child failed: %s' % (cred[0], d['exc']))
        if s is None:
            s = socket.socket(fileno=fds[0])
        else:
            for fd in fds:
                os.close(fd)
        return d['err'], s

    def step(self, st):
        c = st['call']
        op = c['op']
        rec = {'i': st['i'], 'rep': st['rep'], 'op': op, 'sock': st['sock'], 't': st['t']}
        if op == 'sysctl':
            self.enter(self.ns_fd[c['host']])
            rec['err'] = ename(self.sysctl(c['name'], c['value']))
            return rec
        name = st['sock']
        s = self.socks.get(name)
        creates = op in ('socket', 'bind', 'connect', 'listen')
        cred = None
        if s is None:
            if not creates:
                raise S.BadInput('%s: socket %s does not exist' % (op, name))
            if len(self.socks) >= MAX_SOCKETS:
                raise S.Unsupported('more than %d sockets open at once' % MAX_SOCKETS)
            self.enter(self.ns_fd[c['host']])
            if 'uid' in c or 'cap_net_bind_service' in c:
                uid = int(c.get('uid', 0))
                cap = bool(c.get('cap_net_bind_service', uid == 0))
                if uid != 0 or not cap:
                    cred = (uid, cap)
                    self.owner[name] = cred
            if cred is None:
                s = socket.socket(self.family.get(name, socket.AF_INET), socket.SOCK_STREAM)
        else:
            cred = self.owner.get(name)
        if op == 'accept':
            e, child = self.accept(s)
            if child is not None:
                self.socks[st['as']] = child
            rec['local'] = fmt_local(s)  # portsim reports the listener's endpoint
            rec['err'] = ename(e)
            return rec
        if op == 'close':
            local = self.ext_conn.pop(name, None)
            s.close()
            del self.socks[name]
            if local is not None:  # the external peer closes right after the client
                self.drain_externals()
                peer = self.ext_peers.pop(local, None)
                if peer is not None:
                    time.sleep(0.002)
                    peer.close()
            rec['err'] = 'OK'
            return rec
        if cred is not None:
            e, s = self.in_child(cred, st, s)
        else:
            e = self.do_op(st, s)
        self.socks[name] = s
        rec['err'] = e if isinstance(e, str) else ename(e)
        rec['local'] = fmt_local(s)
        if op == 'connect' and self.ext_listeners:
            self.drain_externals()
            if e == 0 and self._is_external(c['to']):
                self.ext_conn[name] = rec['local']
        return rec

    def _is_external(self, to):
        a, p, _ = S.parse_endpoint(to)
        for e, _ans in S.externals(self.sc):
            ea, ep, _ = S.parse_endpoint(e)
            if ea == a and (ep is None or ep == p):
                return True
        return False

    def accept(self, s):
        try:
            r, _, _ = select.select([s], [], [], ACCEPT_WAIT)
        except (OSError, ValueError) as ex:
            return getattr(ex, 'errno', errno.EBADF) or errno.EBADF, None
        # Not ready: an empty queue (EAGAIN) or a socket that is not listening (EINVAL); a
        # non-blocking accept() lets the kernel say which.
        s.setblocking(bool(r))
        try:
            child, _ = s.accept()
            return 0, child
        except OSError as ex:
            return ex.errno, None
        finally:
            s.setblocking(True)

    def run(self, steps):
        self.families(steps)
        # externals with port '*': listeners on demand for every port the timeline connects to
        for st in steps:
            if st['call']['op'] == 'connect' and self.ext_ns is not None:
                a, p, fam = S.parse_endpoint(st['call']['to'])
                for e, ans in S.externals(self.sc):
                    ea, ep, _ = S.parse_endpoint(e)
                    if ea == a and ep is None and ans == 'accept':
                        for name in [None] + sorted(self.ext_alias_hosts):
                            self.ext_listen(a, p, fam, name)
        out = []
        t_start = time.monotonic()
        for st in steps:
            if self.until is not None and st['t'] > self.until:
                break
            # real time never runs behind virtual time: timers (TIME_WAIT, FIN_WAIT2, the
            # tw_reuse delay) see at least the scenario's spacing
            lag = st['t'] / 1e9 - (time.monotonic() - t_start)
            if lag > 0:
                time.sleep(lag)
            out.append(self.step(st))
        return out


def _prefix(cidr):
    """"10.0.0.1/24" -> "10.0.0.0/24" (the on-link network)."""
    import ipaddress
    return str(ipaddress.ip_interface(cidr).network)


def child_main(path, until):
    """Entry point inside `unshare -n`: print one JSON object on stdout."""
    sc = S.load(path)
    steps = S.steps(sc)
    run = LiveRun(sc, until)
    try:
        S.check_performable(sc)
        run.setup()
        res = run.run(steps)
    except S.Unsupported as ex:
        sys.stderr.write('UNSUPPORTED: %s\n' % ex)
        return 4
    finally:
        run.teardown()
    json.dump({'kernel': os.uname().release, 'calls': res, 'notes': run.notes}, sys.stdout)
    return 0
