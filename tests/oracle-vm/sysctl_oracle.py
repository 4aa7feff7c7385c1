#!/usr/bin/python3
"""sysctl presence and accepted values: a Debian kernel in a VM against portsim's profile.

usage: tests/oracle-vm/sysctl_oracle.py --kernel 5.10|6.1|6.12 [--portsim PATH] [--replay PATH]
                                        [--freeze]          boot, compare (and write the fixture)
       tests/oracle-vm/sysctl_oracle.py --fixture FILE [--portsim PATH]
                                        compare portsim with a frozen fixture (no VM)

tests/oracle-vm/sysctl-presence.json writes every version-dependent sysctl of the profile table
(sim/net/kernel_profile.cc sysctl_rows) with a valid value and each handler's first refused
value. The kernel answers OK, ENOENT (the file does not exist in that kernel) or EINVAL (out of
the handler's range). portsim rejects a scenario that writes a sysctl its profile says is
absent, so this is not a kernel-oracle scenario: for a name the profile marks absent
(`portsim kernels X.Y.Z --all`) the kernel must say ENOENT; for the others portsim runs the
same writes (only those names) under the profile and must give the kernel's result for every
write. The guest's /init (portsim-vm-preinit) also reports the defaults of a fresh network
namespace; each must equal the profile's (`default "..."`), except the memory-scaled ones
(tcp_max_tw_buckets, tcp_ehash_entries, udp_hash_entries: the guest has 512 MiB), which are
recorded only. --freeze writes tests/live/vm/<kernel>/sysctl-presence.json (package, version,
uname -r, the defaults, every write's result). --fixture: the disagreements must be exactly those listed for the
kernel under "sysctl-presence" in tests/live/vm/known-disagreements.json (so must a VM run
without --freeze). Exit 0 agree (or exactly the known disagreements), 1 otherwise, 2 cannot run
(one line).
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'oracle'))
import scenario as S  # noqa: E402
import vm as V  # noqa: E402

SCENARIO = os.path.join(HERE, 'sysctl-presence.json')
REL_SCENARIO = 'tests/oracle-vm/sysctl-presence.json'
KNOWN = os.path.join(ROOT, 'tests', 'live', 'vm', 'known-disagreements.json')


def die2(msg):
    print('sysctl_oracle: ' + ' '.join(str(msg).split()), file=sys.stderr)
    sys.exit(2)


def find_portsim(arg):
    p = arg or os.path.join(ROOT, 'build', 'portsim')
    if not os.access(p, os.X_OK):
        die2('portsim not found at %s (build it or pass --portsim)' % p)
    return p


# Defaults that follow the guest's memory (512 MiB): recorded, never compared.
MEMORY_SCALED = ('net.ipv4.tcp_max_tw_buckets', 'net.ipv4.tcp_ehash_entries', 'net.ipv4.udp_hash_entries')


def profile_defaults(portsim, version):
    """`portsim kernels VERSION --all` -> {name: default string, or None when absent}."""
    p = subprocess.run([portsim, 'kernels', version, '--all'], capture_output=True, text=True)
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r'^  (net\.[a-z0-9_.]+)\s+(absent|default "([^"]*)")', line)
        if m:
            out[m.group(1)] = None if m.group(2) == 'absent' else m.group(3)
    return out


def compare_defaults(portsim, version, defaults):
    """The defaults a fresh network namespace of the kernel has (portsim-vm-preinit) against the
    profile's, for every sysctl of the profile table that is not memory-scaled. Returns the names
    that disagree."""
    prof = profile_defaults(portsim, version)
    bad = []
    for name in sorted(defaults):
        k = defaults[name]
        if name not in prof:
            print('  default %s: kernel %s (not in the profile table: recorded only)' % (name, json.dumps(k)))
            continue
        if name in MEMORY_SCALED:
            print('  default %s: kernel %s | profile %s (memory-scaled: not compared)' % (
                name, json.dumps(k), json.dumps(prof[name])))
            continue
        ok = k == prof[name]
        if not ok:
            bad.append(name)
        print('  default %s: kernel %s | profile %s — %s' % (name, json.dumps(k), json.dumps(prof[name]),
                                                         'agree' if ok else 'DISAGREE'))
    return bad


def profile_sysctls(portsim, version):
    """`portsim kernels VERSION --all` -> {name: 'absent' | 'present'}."""
    p = subprocess.run([portsim, 'kernels', version, '--all'], capture_output=True, text=True)
    if p.returncode != 0:
        die2('portsim kernels %s: %s' % (version, p.stderr.strip()))
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r'^  (net\.[a-z0-9_.]+)\s+(absent|default .*)$', line)
        if m:
            out[m.group(1)] = 'absent' if m.group(2) == 'absent' else 'present'
    if not out:
        die2('portsim kernels %s --all listed no sysctls' % version)
    return out


def writes():
    """[(timeline index, name, value)] of the probe scenario."""
    sc = S.load(SCENARIO)
    return sc, [(i, c['name'], c['value']) for i, c in enumerate(sc['timeline'])]


def portsim_results(portsim, version, sc, present):
    """portsim's result of every write whose sysctl the profile has: {timeline index: errno}."""
    keep = [(i, c) for i, c in enumerate(sc['timeline']) if present.get(c['name']) == 'present']
    sub = dict(sc, timeline=[c for _, c in keep])
    sub.pop('oracle', None)
    with tempfile.TemporaryDirectory(prefix='sysctl-oracle-') as tmp:
        path = os.path.join(tmp, 'sc.json')
        with open(path, 'w') as f:
            json.dump(sub, f)
        tr = os.path.join(tmp, 'trace.jsonl')
        p = subprocess.run([portsim, 'run', path, '--kernel', version, '--trace', tr, '--quiet'],
                           capture_output=True, text=True)
        if p.returncode == 2 or not os.path.exists(tr):
            die2('portsim rejected the probe under %s: %s' % (version, (p.stderr or p.stdout).strip()[:300]))
        res = {}
        with open(tr) as f:
            for line in f:
                r = json.loads(line)
                if r.get('ev') == 'call' and r.get('op') == 'sysctl':
                    res[keep[r['call']][0]] = r.get('errno', 'OK') if r.get('ret', 0) != 0 else 'OK'
    return res


def compare(portsim, version, kernel_res):
    """kernel_res: {timeline index: result}. Prints one line per write; returns the timeline
    indices of the disagreeing writes."""
    sc, ws = writes()
    prof = profile_sysctls(portsim, version)
    sim = portsim_results(portsim, version, sc, prof)
    bad = []
    for i, name, value in ws:
        k = kernel_res.get(i, kernel_res.get(str(i)))
        if prof.get(name) is None:
            want, why = None, 'not in the profile table'
        elif prof[name] == 'absent':
            want, why = 'ENOENT', 'profile: absent'
        else:
            want, why = sim.get(i), 'portsim'
        ok = want is not None and k == want
        if not ok:
            bad.append(i)
        print('  [%d] %s = %s: kernel %s | %s %s — %s' % (i, name, value, k, why, want or '?',
                                                        'agree' if ok else 'DISAGREE'))
    return bad


def freeze_path(kernel):
    return os.path.join(ROOT, 'tests', 'live', 'vm', kernel, 'sysctl-presence.json')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument('--kernel', choices=V.KERNELS)
    ap.add_argument('--fixture', help='a frozen tests/live/vm/<kernel>/sysctl-presence.json')
    ap.add_argument('--portsim')
    ap.add_argument('--replay')
    ap.add_argument('--freeze', action='store_true', help='write the fixture of this kernel')
    a = ap.parse_args()
    if bool(a.kernel) == bool(a.fixture):
        die2('give --kernel K (boot) or --fixture FILE (no VM)')
    portsim = find_portsim(a.portsim)
    if a.fixture:
        try:
            with open(a.fixture) as f:
                fx = json.load(f)
            res, version = fx['results'], fx['portsim_kernel']
            pkg = fx['package']
            defaults = fx.get('defaults')
        except (OSError, ValueError, KeyError) as ex:
            die2('%s: not a sysctl fixture (%s)' % (a.fixture, ex))
        print('sysctl_oracle %s: %s %s (uname -r %s), frozen %s; portsim --kernel %s' % (
            a.fixture, pkg['package'], pkg['version'], pkg['release'], fx['date_utc'], version))
        kernel_res = {int(r['i']): r['err'] for r in res}
    else:
        try:
            m = V.fetch(a.kernel, log=lambda s: print('sysctl_oracle: ' + s, file=sys.stderr))
            version = m['version'].split('-')[0].split('+')[0]
            plan = S.plan(S.load(SCENARIO))
            out = V.run_batch(a.kernel, [{'id': 'sysctls', 'plan': plan, 'est_s': 1}], replay=a.replay)
        except V.VMError as ex:
            die2(ex)
        except (S.BadInput, S.Unsupported) as ex:
            die2(ex)
        rec = out['records']['sysctls']
        if rec.get('rc') != 0:
            die2('the probe failed in the VM (rc %s): %s' % (rec.get('rc'), ' '.join(str(rec.get('stderr')).split())[-300:]))
        calls = rec['result']['calls']
        kernel_res = {c['i']: c['err'] for c in calls}
        defaults = out.get('sysctls')
        now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        print('sysctl_oracle: kernel %s = %s %s (Debian %s), %s; portsim --kernel %s; one VM boot '
              '(qemu %s, %.1f s)' % (out['guest']['release'], m['package'], m['version'], m['suite'], now,
                                     version, out['accel'], out['boot_s']))
        if a.freeze:
            fx = {'what': 'one write(2) per value of ' + REL_SCENARIO + ' in a fresh network namespace '
                  'of the guest (tests/oracle-vm/sysctl_oracle.py --kernel %s --freeze)' % a.kernel,
                  'kernel': a.kernel, 'date_utc': now, 'portsim_kernel': version,
                  'package': {'package': m['package'], 'version': m['version'], 'suite': m['suite'],
                              'deb_sha256': m['deb_sha256'], 'release': out['guest']['release'],
                              'uname_v': out['guest'].get('version')},
                  'defaults': defaults,
                  'results': [{'i': c['i'], 'name': S.load(SCENARIO)['timeline'][c['i']]['name'],
                               'value': S.load(SCENARIO)['timeline'][c['i']]['value'], 'err': c['err']}
                              for c in calls]}
            dest = freeze_path(a.kernel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, 'w') as f:
                f.write('{\n' + ',\n'.join(' %s: %s' % (json.dumps(k), json.dumps(v)) for k, v in fx.items()
                                          if k not in ('results', 'defaults')))
                f.write(',\n "defaults": {\n' + ',\n'.join('  %s: %s' % (json.dumps(k), json.dumps(v))
                                                          for k, v in (defaults or {}).items()) + '\n }')
                f.write(',\n "results": [\n' + ',\n'.join('  ' + json.dumps(r) for r in fx['results']) + '\n ]\n}\n')
            print('  frozen: %s' % os.path.relpath(dest, ROOT))
    bad = compare(portsim, version, kernel_res)
    bad_def = compare_defaults(portsim, version, defaults) if defaults else []
    print('  VERDICT: %s (%d writes, %d disagreement%s; %s)' % (
        'AGREE' if not bad and not bad_def else 'DISAGREE', len(kernel_res), len(bad), '' if len(bad) == 1 else 's',
        'defaults: %d disagree' % len(bad_def) if defaults else 'no defaults recorded'))
    if a.fixture or not a.freeze:
        # The disagreements must be exactly the known ones (tests/live/vm/known-disagreements.json):
        # a finding stays visible (DISAGREE above) without turning the suite red until it is fixed,
        # and a fixed profile fails until its entry is removed.
        try:
            with open(KNOWN) as f:
                known = json.load(f).get(fx['kernel'] if a.fixture else a.kernel, {}).get('sysctl-presence', {})
        except FileNotFoundError:
            known = {}
        exp = sorted(known.get('writes', []))
        exp_def = sorted(known.get('defaults', []))
        if sorted(bad) != exp or sorted(bad_def) != exp_def:
            print('  FAIL: disagreeing writes %s, known %s; defaults %s, known %s (%s)' % (
                sorted(bad), exp, sorted(bad_def), exp_def, os.path.relpath(KNOWN, ROOT)))
            sys.exit(1)
        if exp or exp_def:
            print('  ok: the disagreements are the known ones: %s' % known.get('why', ''))
        sys.exit(0)
    sys.exit(1 if bad or bad_def else 0)


if __name__ == '__main__':
    main()
