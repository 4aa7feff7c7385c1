#!/usr/bin/env python3
"""The exact fixture check can fail: change one port the kernel picked (the first autobind
connect of the first experiment) and require tools/oracle/exact.py fixture to report a
mismatch (exit 1) naming that port.

usage: mutate_check.py FIXTURE.json PORTSIM"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    fixture, portsim = sys.argv[1], sys.argv[2]
    with open(fixture) as f:
        fx = json.load(f)
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
