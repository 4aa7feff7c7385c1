#!/usr/bin/env python3
"""The exact fixture check can fail: change one port the kernel picked (the first autobind
connect of the first experiment) and require tools/oracle/exact.py fixture to report a
mismatch (exit 1) naming that port.

With --mono: change the guest's clock instead — in the first tw-reuse-new-second run, move the
0.5-s connect (d05) to the second of the server's close (a05) if the kernel recycled the
TIME_WAIT, or just past the next second boundary if it refused — and require a mismatch at d05:
the fixture's "call_monotonic_ns" decides that verdict (4.19-6.13 tcp_twsk_unique).

usage: mutate_check.py FIXTURE.json PORTSIM [--mono]"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_fixture(fx, portsim):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'exact-mutated.json')
        with open(path, 'w') as f:
            json.dump(fx, f)
        return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'oracle', 'exact.py'), 'fixture', path,
                               '--portsim', portsim], capture_output=True, text=True)


def main_mono(fx, portsim):
    ex = next(e for e in fx['experiments'] if e['id'].startswith('tw-reuse-new-second'))
    calls = ex['result']['calls']
    by = {(c['sock'], c['op']): k for k, c in enumerate(calls)}
    a05, d05 = calls[by[('a05', 'close')]], calls[by[('d05', 'connect')]]
    nxt = calls[by[('d05', 'connect')] + 1]['mono'][0] if by[('d05', 'connect')] + 1 < len(calls) else None
    stamp = a05['mono'][0]
    if d05['err'] == 'OK':  # recycled: put the connect in the stamp's second
        new = stamp
    else:  # refused: put it in the next second
        new = (stamp // 10**9 + 1) * 10**9
    if nxt is not None and new > nxt:
        print('FAIL: cannot move d05 to %d: the next call ran at %d' % (new, nxt))
        return 1
    d05['mono'] = [new, max(new, d05['mono'][1])]
    p = run_fixture(fx, portsim)
    print(p.stdout + p.stderr)
    bad = [l for l in p.stdout.splitlines() if 'd05' in l and 'MISMATCH' in l]
    if p.returncode != 1 or not bad:
        print('FAIL: moving d05 across the second boundary was not reported (exit %d)' % p.returncode)
        return 1
    print('OK: the moved clock changed portsim\'s TIME_WAIT verdict at d05: %s' % bad[0].strip())
    return 0


def main():
    fixture, portsim = sys.argv[1], sys.argv[2]
    with open(fixture) as f:
        fx = json.load(f)
    if '--mono' in sys.argv[3:]:
        return main_mono(fx, portsim)
    calls = fx['experiments'][0]['result']['calls']
    rec = next(c for c in calls if c['op'] == 'connect' and (c.get('exact') or {}).get('perturb'))
    host, _, port = rec['local'].rpartition(':')
    # another port of the same range and parity: the model cannot produce it for this call
    rec['local'] = '%s:%d' % (host, int(port) + 2 if int(port) + 2 <= 60999 else int(port) - 2)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'exact-mutated.json')
        with open(path, 'w') as f:
            json.dump(fx, f)
        p = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'oracle', 'exact.py'), 'fixture', path,
                            '--portsim', portsim], capture_output=True, text=True)
    print(p.stdout + p.stderr)
    want = 'port: kernel %s, portsim %s' % (rec['local'].rpartition(':')[2], port)
    if p.returncode != 1 or want not in p.stdout:
        print('FAIL: the mutated fixture was not reported (exit %d, expected "%s")' % (p.returncode, want))
        return 1
    print('OK: the mutated port was reported')
    return 0


if __name__ == '__main__':
    sys.exit(main())
