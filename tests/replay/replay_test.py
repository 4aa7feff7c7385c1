#!/usr/bin/env python3
"""Fast test of the oracle's executor: portsim-replay performs two small plans (emitted by
tools/oracle/scenario.py) in a fresh network namespace and gives the live kernel's answers.

usage: replay_test.py PORTSIM_REPLAY [--static]
Exit 0 pass, 1 fail, 77 skipped (no root / unshare -n not permitted).

* range10.json: 10-port range 40000-40009 toward 127.0.0.1:5000. Live 6.18.44 (unshare -n,
  /work/shared/VM-ORACLE-NOTES.md "connect4"; tests/live/bind_zero_order.json): 10 connects
  succeed, five even ports first, then five odd; the 11th fails EADDRNOTAVAIL.
* topology.json: two hosts on a bridge, externals (accept / refuse), a host without addresses:
  connect to a listener OK with the host's own address, to the refusing external ECONNREFUSED,
  from the address-less host OK with the external address on its lo (and a note saying so).
* topology6.json: IPv6 hosts on the bridge, every call at t = 0, right after setup: connect to
  the other host and to the host's own address both OK from its own address. The executor holds
  the first call until its veths are up, the bridge ports forward and no address is tentative
  (a 6.1 TCG guest once timed out the own-address connect without that; on a fast host the race
  is rarely lost, so this guards the IPv6-over-veth setup and that the wait ends).
* The guard: with $PROBE_HOST_NETNS naming the namespace it runs in, it refuses (exit 3) and
  prints nothing on stdout. A malformed plan: exit 2, one line.
* --static: the binary has no ELF interpreter (it is /init in the VM oracle).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'oracle'))
import scenario as S  # noqa: E402

failures = []


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)


def has_interp(path):
    """True if the ELF file has a PT_INTERP program header (a dynamically linked executable)."""
    with open(path, 'rb') as f:
        elf = f.read()
    phoff, = struct.unpack_from('<Q', elf, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', elf, 0x36)
    return any(struct.unpack_from('<I', elf, phoff + k * phentsize)[0] == 3 for k in range(phnum))


def replay(binary, plan, guard_self=False):
    with tempfile.NamedTemporaryFile('w', suffix='.json') as f:
        json.dump(plan, f)
        f.flush()
        env = dict(os.environ, PROBE_HOST_NETNS=os.readlink('/proc/self/ns/net'))
        if guard_self:  # name the new namespace itself as the "host" one: must refuse
            cmd = ['unshare', '-n', 'sh', '-c',
                   'PROBE_HOST_NETNS=$(readlink /proc/self/ns/net) exec "$0" run "$1"', binary, f.name]
        else:
            cmd = ['unshare', '-n', binary, 'run', f.name]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def port(local):
    return int(local.rpartition(':')[2])


def replay_ok(binary, name):
    """The result of replaying tests/replay/NAME.json, or None (a failed check) if it did not exit 0."""
    p = replay(binary, S.plan(S.load(os.path.join(HERE, name + '.json'))))
    check(p.returncode == 0, '%s: exit 0 (stderr: %s)' % (name, p.stderr.strip()))
    return json.loads(p.stdout) if p.returncode == 0 else None


def test_range10(binary):
    out = replay_ok(binary, 'range10')
    if out is None:
        return
    conns = [c for c in out['calls'] if c['op'] == 'connect']
    check(len(conns) == 11, 'range10: 11 connect records')
    ok = [port(c['local']) for c in conns[:10] if c['err'] == 'OK']
    check(len(ok) == 10 and len(set(ok)) == 10 and all(40000 <= x <= 40009 for x in ok),
          'range10: 10 connects OK on 10 distinct ports in 40000-40009: %s' % ok)
    check([x % 2 for x in ok] == [0] * 5 + [1] * 5, 'range10: five even ports, then five odd')
    check(conns[10]['err'] == 'EADDRNOTAVAIL', 'range10: the 11th connect EADDRNOTAVAIL (got %s)'
          % conns[10]['err'])
    check(out['kernel'] == os.uname().release, 'range10: "kernel" is uname -r')


def test_topology(binary):
    out = replay_ok(binary, 'topology')
    if out is None:
        return
    by = {c['i']: c for c in out['calls']}
    check(by[2]['err'] == 'OK' and by[2]['local'].startswith('10.0.9.1:'),
          'topology: c -> s 10.0.9.2:80 OK from 10.0.9.1 (%s %s)' % (by[2]['err'], by[2]['local']))
    check(by[3]['err'] == 'OK' and by[3]['local'].startswith('10.0.9.1:'),
          'topology: c -> external 192.0.2.10:443 OK (%s)' % by[3]['err'])
    check(by[4]['err'] == 'ECONNREFUSED', 'topology: c -> refusing external ECONNREFUSED (%s)' % by[4]['err'])
    check(by[5]['err'] == 'OK' and by[5]['local'].startswith('192.0.2.10:'),
          'topology: lone -> external OK through its lo (%s %s)' % (by[5]['err'], by[5]['local']))
    check(by[6]['err'] == 'OK', 'topology: accept on s OK')
    check(any('lone' in n for n in out['notes']), 'topology: a note names the address-less host')


def test_topology6(binary):
    out = replay_ok(binary, 'topology6')
    if out is None:
        return
    by = {c['i']: c for c in out['calls']}
    for i, to in ((4, 'the other host [2001:db8:9::2]:80'), (5, 'its own [2001:db8:9::1]:81')):
        check(by[i]['err'] == 'OK' and by[i]['local'].startswith('[2001:db8:9::1]:'),
              'topology6: c -> %s at t=0 OK from [2001:db8:9::1] (%s %s)' % (to, by[i]['err'], by[i]['local']))


def test_guard(binary):
    p = replay(binary, S.plan(S.load(os.path.join(HERE, 'range10.json'))), guard_self=True)
    check(p.returncode == 3 and not p.stdout and 'refusing to run' in p.stderr,
          'guard: refuses in the namespace named by $PROBE_HOST_NETNS (exit %d)' % p.returncode)
    p = replay(binary, {'format': 'portsim-replay-plan/1', 'hosts': [], 'steps': []})
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and '$.hosts' in p.stderr,
          'bad plan: exit 2, one line naming $.hosts (%s)' % p.stderr.strip())


def main():
    binary = os.path.abspath(sys.argv[1])
    if '--static' in sys.argv[2:]:
        check(not has_interp(binary), 'the binary is statically linked (no PT_INTERP)')
    probe = subprocess.run(['unshare', '-n', 'true'], capture_output=True, text=True)
    if os.geteuid() != 0 or probe.returncode != 0:
        print('SKIP: network namespaces not permitted (needs root and unshare -n): %s'
              % probe.stderr.strip())
        sys.exit(1 if failures else 77)
    test_range10(binary)
    test_topology(binary)
    test_topology6(binary)
    test_guard(binary)
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
