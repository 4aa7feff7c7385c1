#!/usr/bin/env python3
"""Freeze an exact-mode run of many scenarios (tools/kernel-oracle --exact --exact-fixture RAW)
as a fixture of tests/live/vm/: keeps the experiments in which the kernel's connect() chose at
least one port (a table_perturb cell changed) — the ones exact mode checks port by port; the
rest (e.g. the bind matrices: no connect() autobind) would only add size.

usage: freeze.py RAW.json OUT.json"""
import json
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        fx = json.load(f)
    keep = [e for e in fx['experiments']
            if any(c.get('op') == 'connect' and (c.get('exact') or {}).get('perturb') for c in e['result']['calls'])]
    fx['experiments'] = keep
    fx['note'] = ('every oracle-checkable scenario (one run each) whose connect() calls chose a port; '
                  'frozen by tests/exact/freeze.py from tools/kernel-oracle --exact --runs 1')
    with open(dst, 'w') as f:
        json.dump(fx, f, separators=(',', ':'))
        f.write('\n')
    print('%s: %d of %d experiments kept' % (dst, len(keep), len(json.load(open(src))['experiments'])))


if __name__ == '__main__':
    main()
