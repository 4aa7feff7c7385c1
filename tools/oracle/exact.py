#!/usr/bin/env python3
"""Exact oracle for connect() autobind (issue 13): does portsim, given the kernel's own inputs,
pick every port the kernel picked?

The live side (portsim-replay with a plan saying "exact": true, in a VM: tools/kernel-oracle
--kernel X --exact) reads the guest kernel's net_secret once and, around every connect(),
jiffies_64 and the table_perturb cells that changed (tools/oracle/replay/kcore.h):
  results["exact_secret"] = {"net_secret": 32 hex, "hz", "jiffies", "perturb_size", ...}
  call["exact"] = {"jiffies_before", "jiffies_after", "perturb": [[index, old, new], ...]}
This module turns those into portsim scenario inputs (scenarios/README.md "Exact inputs"):
  every machine: "net_secret", "hz", "jiffies" (at t=0), "connect_jiffies" (jiffies_before of
  each of its connect() calls, in order), "call_monotonic_ns" (the guest's CLOCK_MONOTONIC right
  before each call, every call in order: call["mono"] = [before, after], recorded by executors
  from this branch on; results without it leave the key out and replay as before), "table_perturb" {index: old value, the first time a
  connect changed that cell}, "perturb_draws" (the random draw of each connect that changed a
  cell, recovered from the increment: new - old = max(i, draw * step) + step, so
  draw = (new - old - step) / step, capped at 7 — when i >= draw * step every draw <= i / step
  gives the same increment, so the cap loses nothing).
The inputs replace only the kernel's random state and clock; the walk is portsim's. Then
portsim runs the scenario under the kernel's profile, and every connect() is compared: the
local port and errno, and for an autobind the perturb cell it used, the cell's old value, and
the increment.

  exact.py check SCENARIO RESULTS.json --kernel PROFILE [--portsim PATH] [--json OUT]
  exact.py fixture FIXTURE.json... [--portsim PATH]     (tests/live/vm/exact-*.json; no VM)
  exact.py build SCENARIO RESULTS.json --kernel PROFILE  (print the exact scenario)

Exit: 0 every connect matches, 1 a mismatch, 2 bad input / no exact data.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import scenario as S  # noqa: E402

KERNEL_MACHINE = 'kernel'  # the one machine of an exact scenario
MAX_DRAW = 7  # get_random_u32_below(8) (5.18+, ca7af0402550; prandom_u32() & 7 in the 5.10 backport)


class ExactError(Exception):
    """The results hold no usable exact data (exit 2)."""


def _version(profile):
    """"6.12.118" -> (6, 12, 118)."""
    parts = [int(x) for x in str(profile).split('.')[:3] if x.isdigit()]
    return tuple(parts + [0] * (3 - len(parts)))


def _sock_hosts(sc, steps):
    """socket name -> host name: the host of the call that created it."""
    out = {}
    for st in steps:
        c = st['call']
        if st['sock'] and st['sock'] not in out and 'host' in c:
            out[st['sock']] = c['host']
        if st.get('as') and 'host' in c:
            out.setdefault(st['as'], c['host'])
    return out


def _iplpr_sockets(steps):
    """Sockets with IP_LOCAL_PORT_RANGE set (opts on a creating call, or setsockopt)."""
    out = set()
    for st in steps:
        c = st['call']
        if 'IP_LOCAL_PORT_RANGE' in (c.get('opts') or {}) or \
                (c['op'] == 'setsockopt' and c.get('opt') == 'IP_LOCAL_PORT_RANGE'):
            out.add(st['sock'])
    return out


def _udp_sockets(steps):
    """Sockets created as datagram sockets ("type": "udp")."""
    return {st['sock'] for st in steps if st['call'].get('type') == 'udp' and st['sock']}


def _port(local):
    if not isinstance(local, str) or ':' not in local:
        return None
    return int(local.rpartition(':')[2])


def build(sc, results, profile):
    """The exact scenario (a copy of `sc` with every machine's kernel inputs) and the list of
    live connect() records [{key, machine, port, err, exact, step}] in execution order."""
    sec = results.get('exact_secret')
    if not isinstance(sec, dict):
        raise ExactError('the results hold no "exact_secret" (the plan was not run with "exact": true)')
    if sec.get('error') or not sec.get('net_secret'):
        raise ExactError('exact probe not available in the live run: %s' % (sec.get('error') or 'no net_secret'))
    steps = S.steps(sc)
    # The guest runs every host of the scenario as a namespace of ONE kernel: one net_secret, one
    # table_perturb, one stream of draws, one clock. The exact scenario says so too: a single
    # machine whose namespaces are the scenario's hosts (names unchanged).
    host_machine = {h: KERNEL_MACHINE for h, _m, _a, _s in S.hosts_of(sc)}
    sock_host = _sock_hosts(sc, steps)
    iplpr = _iplpr_sockets(steps)
    udp = _udp_sockets(steps)
    step1_kernel = _version(profile) >= (6, 8)  # 207184853dbd: IP_LOCAL_PORT_RANGE walks step 1
    per_machine = {KERNEL_MACHINE: {'connect_jiffies': [], 'cells': {}, 'draws': []}}
    connects = []
    for rec in results['calls']:
        if rec.get('op') != 'connect':
            continue
        ex = rec.get('exact')
        key = (rec['i'], rec.get('rep'))
        if not isinstance(ex, dict) or 'jiffies_before' not in ex:
            raise ExactError('connect [%d%s] has no exact record' % (rec['i'], '' if rec.get('rep') is None
                                                                   else '.%d' % rec['rep']))
        call = sc['timeline'][rec['i']]
        host = call.get('host') or sock_host.get(rec.get('sock'))
        mname = host_machine.get(host)
        if mname is None:
            raise ExactError('connect [%d]: cannot tell its host' % rec['i'])
        pm = per_machine[mname]
        pm['connect_jiffies'].append(int(ex['jiffies_before']))
        step = 1 if step1_kernel and rec.get('sock') in iplpr else 2
        notes = []
        if ex.get('error'):
            notes.append('probe: %s' % ex['error'])
        if ex.get('perturb_refilled'):
            notes.append('table_perturb refilled during this call (%d cells changed)' % ex['perturb_refilled'])
        cells = ex.get('perturb') or []
        if len(cells) > 1:
            notes.append('%d perturb cells changed in one connect()' % len(cells))
        if len(cells) == 1:
            idx, old, new = (int(x) for x in cells[0])
            pm['cells'].setdefault(idx, old)
            inc = (new - old) & 0xffffffff
            if inc < step or (inc - step) % step:
                notes.append('increment %d is not max(i, draw*%d) + %d' % (inc, step, step))
            pm['draws'].append(max(0, min((inc - step) // step, MAX_DRAW)))
        connects.append({'key': key, 'machine': mname, 'port': _port(rec.get('local')), 'err': rec.get('err'),
                         'exact': ex, 'step': step, 'notes': notes, 'sock': rec.get('sock'),
                         'to': call.get('to'), 'udp': rec.get('sock') in udp})
    out = json.loads(json.dumps(sc))
    out['kernel'] = str(profile)
    out.pop('oracle', None)
    pm = per_machine[KERNEL_MACHINE]
    m = {'name': KERNEL_MACHINE, 'hz': int(sec['hz']), 'net_secret': sec['net_secret'], 'jiffies': int(sec['jiffies']),
         'connect_jiffies': pm['connect_jiffies']}
    # Every call runs on the one guest kernel: its clock at each call, in the plan's (= portsim's)
    # call order. ktime_get_seconds() = CLOCK_MONOTONIC seconds: tcp_twsk_unique's "now" and the
    # TIME_WAIT's tw_ts_recent_stamp (4.19-6.13) are taken from it (scenarios/README.md).
    monos = [rec.get('mono') for rec in results['calls']]
    if monos and all(isinstance(x, list) and len(x) == 2 for x in monos) and _version(profile) >= (4, 19):
        m['call_monotonic_ns'] = [int(x[0]) for x in monos]
    if pm['cells']:
        m['table_perturb'] = {str(k): v for k, v in sorted(pm['cells'].items())}
    if pm['draws']:
        m['perturb_draws'] = pm['draws']
    m['netns'] = []
    for old in sc['machines']:  # every host a namespace of the one guest kernel
        for ns in old['netns'] if 'netns' in old else [old]:
            m['netns'].append({k: ns[k] for k in ('name', 'addresses', 'sysctls') if k in ns})
        if 'udp_hash_entries' in old:
            m['udp_hash_entries'] = old['udp_hash_entries']
    out['machines'] = [m]
    return out, connects


def find_portsim(arg=None):
    for p in ([arg] if arg else []) + [os.path.join(ROOT, 'build', 'portsim'), shutil.which('portsim')]:
        if p and os.access(p, os.X_OK):
            return p
    raise ExactError('portsim not found: build it or pass --portsim PATH')


def run_portsim(portsim, exact_sc):
    """portsim's connect() records of the exact scenario: {(call, rep): record}."""
    tmp = tempfile.mkdtemp(prefix='portsim-exact-')
    try:
        path, tr = os.path.join(tmp, 'exact.json'), os.path.join(tmp, 'trace.jsonl')
        with open(path, 'w') as f:
            json.dump(exact_sc, f)
        p = subprocess.run([portsim, 'run', path, '--trace', tr, '--quiet'], capture_output=True, text=True,
                           timeout=600)
        if p.returncode == 2 or not os.path.exists(tr):
            raise ExactError('portsim rejected the exact scenario: ' + (p.stderr.strip() or p.stdout.strip())[:300])
        out = {}
        with open(tr) as f:
            for line in f:
                r = json.loads(line)
                if r.get('ev') == 'call' and r.get('op') == 'connect' and 'call' in r:
                    out.setdefault((r['call'], r.get('rep')), r)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compare(connects, sim, hz):
    """One row per live connect(): what the kernel did, what portsim did, and the differences."""
    rows = []
    for c in connects:
        s = sim.get(c['key'])
        diffs = []
        k_err = c['err'] or 'OK'
        if s is None:
            diffs.append('portsim has no record of this call')
            rows.append(dict(c, sim=None, diffs=diffs))
            continue
        s_err = s.get('errno', 'OK') if s.get('ret', 0) != 0 else 'OK'
        s_port = _port(s.get('local'))
        if s_err != k_err:
            diffs.append('errno: kernel %s, portsim %s' % (k_err, s_err))
        cells = c['exact'].get('perturb') or []
        # The port is exact-checked when connect() chose it (TCP autobind: the kernel changed a
        # perturb cell, or portsim's record has the walk). A port chosen earlier by bind(0) /
        # listen(), or by UDP's autobind, comes from get_random_u32(), which the probe does not read.
        autobind = bool(cells) or 'perturb_index' in s
        if c['udp'] or not autobind:
            c['exact_port'] = False
            if c['port'] and not c['udp'] and s_port != c['port']:
                c['notes'].append('port %s (portsim %s) was chosen before connect() by bind(0)/listen(): '
                                  'a random start the probe does not read, not compared' % (c['port'], s_port))
            elif c['udp'] and s_port != c['port']:
                c['notes'].append('UDP autobind port %s (portsim %s): get_random_u32() start, not compared'
                                  % (c['port'], s_port))
        elif s_port != c['port']:
            diffs.append('port: kernel %s, portsim %s' % (c['port'], s_port))
        if len(cells) == 1 and 'perturb_index' in s:
            idx, old, new = (int(x) for x in cells[0])
            if s['perturb_index'] != idx:
                diffs.append('table_perturb index: kernel %d, portsim %d' % (idx, s['perturb_index']))
            elif s['perturb'] != old:
                diffs.append('table_perturb[%d] before: kernel %d, portsim %d' % (idx, old, s['perturb']))
            elif s.get('perturb_inc') != ((new - old) & 0xffffffff):
                diffs.append('increment: kernel %d, portsim %s' % ((new - old) & 0xffffffff, s.get('perturb_inc')))
        elif len(cells) == 1 and s_err == 'OK':
            diffs.append('the kernel changed table_perturb[%s]; portsim made no autobind' % cells[0][0])
        elif not cells and s_err == 'OK' and s.get('perturb_inc'):
            diffs.append('portsim added %d to table_perturb[%d]; the kernel changed no cell'
                         % (s['perturb_inc'], s['perturb_index']))
        tb, ta = c['exact']['jiffies_before'] // (10 * hz), c['exact']['jiffies_after'] // (10 * hz)
        if tb != ta:
            c['notes'].append('jiffies crossed a 10-s time-seed boundary during the call (used the earlier)')
        rows.append(dict(c, sim=s, diffs=diffs))
    return rows


def check(sc, results, profile, portsim=None):
    """Build, run, compare: (rows, exact scenario)."""
    exact_sc, connects = build(sc, results, profile)
    sim = run_portsim(find_portsim(portsim), exact_sc)
    return compare(connects, sim, int(results['exact_secret']['hz'])), exact_sc


def format_rows(rows, indent='  '):
    lines = []
    for r in rows:
        i, rep = r['key']
        name = '[%d%s] connect %s -> %s' % (i, '' if rep is None else '.%d' % rep, r['sock'], r['to'])
        cells = r['exact'].get('perturb') or []
        cell = ' table_perturb[%d] %d->%d' % tuple(cells[0]) if len(cells) == 1 else ''
        kern = '%s%s' % (r['port'] if r['err'] in (None, 'OK', 'EINPROGRESS') else r['err'], cell)
        s = r['sim']
        simv = '-' if s is None else '%s' % (_port(s.get('local')) if s.get('ret', 0) == 0 or s.get('errno') == 'EINPROGRESS'
                                             else s.get('errno'))
        lines.append('%s%s: kernel %s | portsim %s — %s' % (indent, name, kern, simv, 'match' if not r['diffs'] else 'MISMATCH'))
        for d in r['diffs']:
            lines.append('%s    ✗ %s' % (indent, d))
        for n in r['notes']:
            lines.append('%s    note: %s' % (indent, n))
    return lines


def summary(rows):
    """connects: all connect() calls; matches: those without a difference (errno always, the port
    when connect() chose it); autobind_ports: ports the kernel's connect() chose (a perturb cell
    changed) — every one of them is compared exactly."""
    n = len(rows)
    bad = sum(1 for r in rows if r['diffs'])
    auto = sum(1 for r in rows if len(r['exact'].get('perturb') or []) == 1)
    return {'connects': n, 'matches': n - bad, 'mismatches': bad, 'autobind_ports': auto}


def check_fixture(path, portsim=None):
    """A frozen VM result (tests/live/vm/exact-*.json): every run of every scenario in it."""
    with open(path) as f:
        fx = json.load(f)
    total = {'connects': 0, 'matches': 0, 'mismatches': 0, 'autobind_ports': 0}
    lines = ['%s: %s %s (uname -r %s), portsim --kernel %s' % (os.path.basename(path), fx['kernel_package']['package'],
                                                               fx['kernel_package']['version'],
                                                               fx['kernel_package']['release'], fx['portsim_kernel'])]
    for e in fx['experiments']:
        rows, _ = check(e['scenario'], e['result'], fx['portsim_kernel'], portsim)
        s = summary(rows)
        for k in total:
            total[k] += s[k]
        lines.append('  %s: %d/%d connects match (%d autobind ports)' % (e['id'], s['matches'], s['connects'],
                                                                        s['autobind_ports']))
        if s['mismatches']:
            lines += format_rows([r for r in rows if r['diffs']], '    ')
    return total, lines


def _load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as ex:
        raise ExactError('%s: %s' % (path, ex))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('mode', choices=('check', 'fixture', 'build'))
    ap.add_argument('files', nargs='+', help='check/build: SCENARIO RESULTS.json; fixture: FIXTURE.json...')
    ap.add_argument('--kernel', help='portsim kernel profile of the live kernel (check, build), e.g. 6.1.192')
    ap.add_argument('--portsim', help='portsim binary (default: build/portsim, then PATH)')
    a = ap.parse_args(argv)
    try:
        if a.mode == 'fixture':
            bad = 0
            for p in a.files:
                total, lines = check_fixture(p, a.portsim)
                print('\n'.join(lines))
                print('  total: %d/%d connects match, %d autobind ports' % (total['matches'], total['connects'],
                                                                           total['autobind_ports']))
                bad += total['mismatches'] + (total['connects'] == 0)
            return 1 if bad else 0
        if len(a.files) != 2 or not a.kernel:
            raise ExactError('%s needs SCENARIO RESULTS.json and --kernel PROFILE' % a.mode)
        sc = S.load(a.files[0])
        res = _load_json(a.files[1])
        if a.mode == 'build':
            json.dump(build(sc, res, a.kernel)[0], sys.stdout, indent=1)
            print()
            return 0
        rows, _ = check(sc, res, a.kernel, a.portsim)
        print('\n'.join(format_rows(rows)))
        s = summary(rows)
        print('  exact: %d/%d connects match (%d autobind ports)' % (s['matches'], s['connects'], s['autobind_ports']))
        return 0 if s['mismatches'] == 0 and s['connects'] else 1
    except (ExactError, S.BadInput, S.Unsupported) as ex:
        print('exact.py: ' + ' '.join(str(ex).split()), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
