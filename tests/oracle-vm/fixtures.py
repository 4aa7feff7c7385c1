#!/usr/bin/python3
"""VM oracle fixtures: freeze the kernels' outcomes, and check portsim's profiles against them
without booting anything.

usage: tests/oracle-vm/fixtures.py freeze JSON_DIR...   build/oracle-vm/<kernel> (kernel-oracle
                                                        --json-dir output) -> tests/live/vm/
       tests/oracle-vm/fixtures.py check KERNEL [--portsim PATH] [--seeds M] [--fixdir DIR]
                                                        every fixture of tests/live/vm/KERNEL
       tests/oracle-vm/fixtures.py mutate FIXTURE OUTDIR   self-test: a copy with one result changed

A fixture (tests/live/vm/<kernel>/<scenario>.json) holds the scenario path, the exact Debian
package (name, version, .deb sha256, uname -r, uname -v), the portsim profile it was compared
under, the date, and every live run's call records (i, rep, op, sock, err, local) as the guest's
portsim-replay returned them. `check` runs portsim under that profile with seeds 1..M (default
20) and the kernel oracle's comparison (tools/oracle/compare.py) against the frozen runs: the
same verdict as the VM oracle, minus the VM. Disagreements that are findings, not regressions,
are listed with their evidence in tests/live/vm/known-disagreements.json ({kernel: {scenario:
{"groups": [timeline indices], "why": "..."}}}); anything else, or a listed disagreement that
went away (update the list), fails. A scenario whose timeline changed since the freeze fails
too (re-run ctest -L oracle-vm and freeze again). Exit 0 ok, 1 a failure, 2 bad input.
"""
import argparse
import glob
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'oracle'))
import scenario as S  # noqa: E402
import compare as C  # noqa: E402

FIXDIR = os.path.join(ROOT, 'tests', 'live', 'vm')
KNOWN = os.path.join(FIXDIR, 'known-disagreements.json')
KEEP = ('i', 'rep', 'op', 'sock', 'err', 'local')


def die2(msg):
    print('fixtures: ' + ' '.join(str(msg).split()), file=sys.stderr)
    sys.exit(2)


def oracle_module():
    """tools/kernel-oracle as a module (read_trace, run_portsim)."""
    path = os.path.join(ROOT, 'tools', 'kernel-oracle')
    loader = importlib.machinery.SourceFileLoader('kernel_oracle', path)
    spec = importlib.util.spec_from_loader('kernel_oracle', loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def write_fixture(path, doc):
    """Pretty enough to diff: header fields one per line, one call record per line."""
    runs = doc.pop('kernel_runs')
    lines = ['{']
    lines += [' %s: %s,' % (json.dumps(k), json.dumps(v)) for k, v in doc.items()]
    lines.append(' "kernel_runs": [')
    for n, run in enumerate(runs):
        lines.append('  [')
        lines.append(',\n'.join('   ' + json.dumps(r, separators=(',', ':')) for r in run))
        lines.append('  ]' + (',' if n + 1 < len(runs) else ''))
    lines.append(' ]')
    lines.append('}')
    tmp = path + '.part'
    with open(tmp, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(tmp, path)


def freeze(dirs):
    n = 0
    for d in dirs:
        files = sorted(glob.glob(os.path.join(d, '*.json')))
        if not files:
            die2('%s: no kernel-oracle JSON (run ctest -L oracle-vm first)' % d)
        for p in files:
            with open(p) as f:
                r = json.load(f)
            if 'kernel_package' not in r:
                die2('%s: not a VM oracle result (no kernel_package)' % p)
            kp = r['kernel_package']
            branch = {'5.10': '5.10', '6.1': '6.1', '6.12': '6.12'}.get('.'.join(r['portsim_kernel'].split('.')[:2]))
            if branch is None:
                die2('%s: portsim_kernel %s is not a VM kernel' % (p, r['portsim_kernel']))
            scen = os.path.relpath(os.path.abspath(r['scenario']), ROOT)
            doc = {'scenario': scen, 'kernel': branch,
                   'package': kp, 'portsim_kernel': r['portsim_kernel'], 'date_utc': r['date_utc'],
                   'method': 'tools/kernel-oracle --kernel %s --runs %d: all runs in one VM boot '
                             '(qemu %s, %d MiB), each in a fresh network namespace of the guest' % (
                                 branch, r['runs'], r['vm']['accel'], r['vm']['mem_mib']),
                   'verdict_at_freeze': r['verdict'],
                   'disagreeing_groups': [g['i'] for g in r['groups'] if g['problems']],
                   'kernel_runs': [[{k: c.get(k) for k in KEEP} for c in run] for run in r['kernel_raw']]}
            dest = os.path.join(FIXDIR, branch, os.path.basename(p))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            write_fixture(dest, doc)
            n += 1
            print('froze %s (%s %s, %s)' % (os.path.relpath(dest, ROOT), kp['package'], kp['version'],
                                           r['verdict']))
    print('%d fixtures' % n)


def check(kernel, portsim, seeds, fixdir=FIXDIR, known_path=KNOWN):
    ko = oracle_module()
    try:
        with open(known_path) as f:
            known = json.load(f).get(kernel, {})
    except FileNotFoundError:
        known = {}
    except ValueError as ex:
        die2('%s: invalid JSON: %s' % (known_path, ex))
    files = sorted(f for f in glob.glob(os.path.join(fixdir, kernel, '*.json'))
                   if not f.endswith('/sysctl-presence.json'))
    if not files:
        die2('no fixtures in %s' % os.path.join(fixdir, kernel))
    failures = 0
    seen = set()
    for fx_path in files:
        with open(fx_path) as f:
            fx = json.load(f)
        scen = os.path.join(ROOT, fx['scenario'])
        name = os.path.splitext(os.path.basename(fx['scenario']))[0]
        seen.add(name)
        try:
            sc = S.load(scen)
            opts = S.parse_compare(S.oracle_block(sc)['compare'])
            steps = S.steps(sc)
        except (S.BadInput, S.Unsupported) as ex:
            print('FAIL %s: %s' % (name, ex))
            failures += 1
            continue
        if opts['until'] is not None:
            steps_cmp = [s for s in steps if s['t'] <= opts['until']]
        else:
            steps_cmp = steps
        want = [(s['i'], s['rep'], s['call']['op']) for s in steps_cmp]
        got = [(c['i'], c['rep'], c['op']) for c in fx['kernel_runs'][0]]
        if want != got:
            print('FAIL %s: the scenario\'s timeline changed since the freeze (%s); re-run ctest -L '
                  'oracle-vm and tests/oracle-vm/fixtures.py freeze' % (name, fx['date_utc']))
            failures += 1
            continue
        with tempfile.TemporaryDirectory(prefix='vm-fixtures-') as tmp:
            sims = ko.run_portsim(portsim, scen, range(1, seeds + 1), tmp, fx['portsim_kernel'])
        out = C.compare(sc, steps, sims, fx['kernel_runs'], opts)
        bad = [g for g in out['groups'] if g['problems']]
        bad_i = sorted({g['i'] for g in bad})
        exp = known.get(name)
        exp_i = sorted(exp['groups']) if exp else []
        pkg = '%s %s' % (fx['package']['package'], fx['package']['version'])
        if bad_i == exp_i:
            print('ok   %s: %s (%s; %d groups%s)' % (name, 'agree' if not bad_i else
                                                    'known disagreement at %s' % bad_i, pkg,
                                                    len(out['groups']), ', gap test: %s' % next(
                                                        (t['verdict'] for t in out['tests'] if t['name'] == 'gaps'), '-')))
            continue
        failures += 1
        if exp and not bad_i:
            print('FAIL %s: portsim now agrees with %s where %s lists a disagreement at %s: remove it '
                  'from the list' % (name, pkg, os.path.relpath(KNOWN, ROOT), exp_i))
        else:
            print('FAIL %s: portsim --kernel %s disagrees with %s (frozen %s) at timeline %s%s' % (
                name, fx['portsim_kernel'], pkg, fx['date_utc'], bad_i,
                ' (known: %s)' % exp_i if exp else ''))
            for g in bad[:5]:
                for p in g['problems'][:3]:
                    print('       [%d] %s %s: %s' % (g['i'], g['op'], g['sock'], p))
    for name in sorted(set(known) - seen - {'sysctl-presence'}):  # sysctl_oracle.py checks that one
        print('FAIL %s: listed in %s but has no fixture' % (name, os.path.relpath(KNOWN, ROOT)))
        failures += 1
    print('%s: %d fixtures, %d failure%s' % (kernel, len(files), failures, '' if failures == 1 else 's'))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest='cmd', required=True)
    f = sub.add_parser('freeze')
    f.add_argument('dirs', nargs='+')
    c = sub.add_parser('check')
    c.add_argument('kernel', choices=('5.10', '6.1', '6.12'))
    c.add_argument('--portsim', default=os.path.join(ROOT, 'build', 'portsim'))
    c.add_argument('--seeds', type=int, default=20)
    c.add_argument('--fixdir', default=FIXDIR, help='fixture root (default tests/live/vm)')
    c.add_argument('--known', default=KNOWN, help='known disagreements (default %(default)s)')
    m = sub.add_parser('mutate', help='self-test: copy one fixture with one call result changed')
    m.add_argument('fixture')
    m.add_argument('outdir')
    a = ap.parse_args()
    if a.cmd == 'freeze':
        freeze(a.dirs)
        return 0
    if a.cmd == 'mutate':
        # The check must be able to fail: flip the errno of the last call of every run (e.g. the
        # EADDRNOTAVAIL that ends an exhaustion becomes OK), as a profile regression would.
        with open(a.fixture) as f:
            fx = json.load(f)
        for run in fx['kernel_runs']:
            run[-1]['err'] = 'OK' if run[-1]['err'] != 'OK' else 'EADDRINUSE'
        dest = os.path.join(a.outdir, fx['kernel'])
        os.makedirs(dest, exist_ok=True)
        write_fixture(os.path.join(dest, os.path.basename(a.fixture)), fx)
        return 0
    if not os.access(a.portsim, os.X_OK):
        die2('%s: not an executable' % a.portsim)
    return check(a.kernel, a.portsim, a.seeds, a.fixdir, a.known)


if __name__ == '__main__':
    sys.exit(main())
