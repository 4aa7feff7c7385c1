"""Shared helpers for the live-kernel probes in tools/probes/ (Python 3 stdlib only).

Not a probe by itself.  Every probe runs its experiments in a throw-away network
namespace: the driver process (in the host namespace) only spawns
`unshare -n python3 <probe> --child ...`; the child calls `require_private_netns()`
before touching any sysctl, so a child accidentally started in the host namespace
refuses to run.
"""
import errno
import json
import os
import socket
import struct
import subprocess
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24
IP_LOCAL_PORT_RANGE = 51
SO_REUSEPORT = 15
IP_FREEBIND = 15

_HOST_NETNS = None


_FALLBACK_TUNNELS = {'lo', 'tunl0', 'sit0', 'ip6tnl0', 'ip6gre0', 'gre0', 'gretap0',
                     'erspan0', 'ip_vti0', 'ip6_vti0'}


def require_private_netns():
    """Abort unless this process lives in a fresh private network namespace.

    /proc/1/ns/net is not readable in this sandbox, so the test is: (a) the netns differs
    from the one recorded by the driver in $PROBE_HOST_NETNS (if set), and (b) the netns
    has no interface besides lo (and kernel fallback tunnels) -- the host has eth0."""
    mine = os.readlink('/proc/self/ns/net')
    host = os.environ.get('PROBE_HOST_NETNS')
    ifaces = set()
    with open('/proc/net/dev') as f:
        for line in f.readlines()[2:]:
            ifaces.add(line.split(':')[0].strip())
    if (host and host == mine) or not ifaces <= _FALLBACK_TUNNELS:
        sys.stderr.write('refusing to run: not inside a fresh private network namespace '
                         '(use unshare -n); interfaces=%s\n' % sorted(ifaces))
        sys.exit(3)
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)


def sysctl(name, value):
    """Write a net sysctl; only allowed after require_private_netns()."""
    path = '/proc/sys/' + name.replace('.', '/')
    with open(path, 'w') as f:
        f.write(str(value))


def sysctl_get(name):
    with open('/proc/sys/' + name.replace('.', '/')) as f:
        return f.read().strip()


def ename(e):
    if e is None or e == 0:
        return 'OK'
    return errno.errorcode.get(e, str(e))


def try_call(fn, *a):
    """Run fn(*a); return 'OK' or the errno name."""
    try:
        fn(*a)
        return 'OK'
    except OSError as ex:
        return ename(ex.errno)


def set_opts(s, opts):
    if 'SO_REUSEADDR' in opts:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if 'SO_REUSEPORT' in opts:
        s.setsockopt(socket.SOL_SOCKET, SO_REUSEPORT, 1)


def tcp_states(port=None):
    """Return list of (local, remote, state-hex) from /proc/net/tcp (this netns)."""
    out = []
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            p = line.split()
            la, lp = p[1].split(':')
            ra, rp = p[2].split(':')
            lip = socket.inet_ntoa(struct.pack('<I', int(la, 16)))
            rip = socket.inet_ntoa(struct.pack('<I', int(ra, 16)))
            if port is None or int(lp, 16) == port:
                out.append(('%s:%d' % (lip, int(lp, 16)), '%s:%d' % (rip, int(rp, 16)), p[3]))
    return out


def run_as_uid(uid, fn, timeout=10.0):
    """Fork; child drops to uid/gid (no capabilities left), runs fn() which returns a
    JSON-able value; the parent returns that value.  The child never returns."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            res = fn()
            os.write(w, json.dumps({'ok': res}).encode())
        except BaseException as ex:  # report everything
            os.write(w, json.dumps({'exc': repr(ex)}).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b''
    deadline = time.time() + timeout
    while time.time() < deadline:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    d = json.loads(data.decode() or '{"exc": "no data"}')
    if 'exc' in d:
        raise RuntimeError('child failed: ' + d['exc'])
    return d['ok']


def spawn_in_netns(script, args, timeout=60):
    """From the host-namespace driver: run `unshare -n python3 script --child args...`
    and return the parsed JSON printed on its stdout."""
    cmd = ['unshare', '-n', sys.executable, script, '--child'] + [str(a) for a in args]
    env = dict(os.environ, PROBE_HOST_NETNS=os.readlink('/proc/self/ns/net'))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError('child %s failed rc=%d: %s' % (args, p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout)


def header(command):
    return {
        'kernel': os.uname().release,
        'date_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'command': command,
        'python': sys.version.split()[0],
    }
