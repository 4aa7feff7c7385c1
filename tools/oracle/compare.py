"""Diff portsim outcomes (many seeds) against live-kernel outcomes (several runs).

Every call repetition (timeline index i, repetition rep) and every timeline entry yields
properties.  For each property:
  * portsim gives the same value under every seed -> the outcome is deterministic in the model:
    the kernel must show exactly that value in every run, else MISMATCH;
  * portsim's value varies with the seed (it depends on net_secret / table_perturb / uptime):
    - small-domain properties (result, local address, parity, range half, in-range, success
      counts, distinct ports): every kernel value must be one portsim produced under some seed
      (support check), else MISMATCH;
    - port numbers, port sets, parity sequences: secret-dependent, reported only.
Distribution tests on pooled samples (all seeds vs all runs):
  * gaps: for every (host, local address, destination), the differences between consecutive
    autobind connect() ports, modulo the range size; Pearson chi-square homogeneity test on gap
    values, MISMATCH if p < GAP_ALPHA (needs >= MIN_GAPS kernel gaps, else "not tested");
  * spread: positions of auto-chosen ports in their range, two-sample Kolmogorov-Smirnov,
    advisory only (ports within one run are correlated, so its nominal p is too small).
"""
from collections import Counter, OrderedDict

import stats

GAP_ALPHA = 0.001
MIN_GAPS = 40
SPREAD_ALPHA = 0.001

SMALL_DOMAIN = {'result', 'addr', 'parity', 'half', 'inrange', 'counts', 'distinct'}


def split_local(local):
    if not local:
        return None, None
    host, _, port = local.rpartition(':')
    return host, int(port)


def step_props(rec, sim_rec):
    """Properties of one call repetition.  sim_rec: portsim's record of the same step (any
    seed), for the range an auto-chosen port was drawn from."""
    p = OrderedDict()
    p['result'] = rec['err']
    if rec['op'] in ('close', 'sysctl'):
        return p
    addr, port = split_local(rec.get('local'))
    if not port and addr in ('0.0.0.0', '[::]', '::'):
        # an unbound socket: the kernel shows its own family's wildcard; portsim's trace shows
        # the other family's after a failed bind (see tests/oracle/RESULTS.md); not compared
        addr = 'unbound'
    p['addr'] = addr
    p['port'] = port
    rng = sim_rec.get('range') if sim_rec else None
    auto = rng is not None and (rec['op'] == 'connect' or rec['op'] in ('bind', 'listen'))
    if rec['err'] == 'OK' and port:
        p['parity'] = 'odd' if port & 1 else 'even'
        if auto and rng:
            lo, hi = rng
            p['inrange'] = lo <= port <= hi
            p['half'] = 'low' if port < lo + (hi - lo + 1) // 2 else 'high'
    return p


def group_props(recs, auto):
    p = OrderedDict()
    c = Counter(r['err'] for r in recs)
    p['counts'] = ' '.join('%s×%d' % (k, c[k]) for k in sorted(c, key=lambda k: (k != 'OK', k)))
    if len(recs) > 1:
        ports = [split_local(r.get('local'))[1] for r in recs if r['err'] == 'OK' and r.get('local')]
        ports = [x for x in ports if x]
        p['distinct'] = len(set(ports))
        if auto:
            p['portset'] = ','.join(str(x) for x in sorted(set(ports)))
            p['paritySeq'] = ''.join('o' if x & 1 else 'e' for x in ports)
    return p


def index(records):
    """[{i, rep, ...}] -> {(i, rep): rec}"""
    return {(r['i'], r.get('rep')): r for r in records}


def fmt_val(v):
    if v is None:
        return '-'
    if isinstance(v, bool):
        return 'yes' if v else 'no'
    return str(v)


def summarize(vals):
    """Values of one property over seeds/runs -> short text."""
    c = Counter(fmt_val(v) for v in vals)
    if len(c) == 1:
        return next(iter(c))
    return '{' + ', '.join('%s:%d' % (k, n) for k, n in c.most_common(4)) + \
        (', …' if len(c) > 4 else '') + '}'


def group_summary(recs, auto):
    c = Counter(r['err'] for r in recs)
    s = ' '.join('%s×%d' % (k, c[k]) if len(recs) > 1 else k
                 for k in sorted(c, key=lambda k: (k != 'OK', k)))
    ports = [split_local(r.get('local'))[1] for r in recs if r['err'] == 'OK' and r.get('local')]
    ports = [x for x in ports if x]
    if ports and recs[0]['op'] not in ('close', 'sysctl', 'accept'):
        par = ''.join('o' if x & 1 else 'e' for x in ports)
        if auto:
            if set(par) == {'e'}:
                s += ' even'
            elif set(par) == {'o'}:
                s += ' odd'
            else:
                s += ' ' + par
        elif len(set(ports)) == 1:
            s += ' :%d' % ports[0]
    return s


def compare(sc, steps, sim_runs, ker_runs, opts):
    """sim_runs / ker_runs: lists of record lists.  Returns a result dict."""
    sims = [index(r) for r in sim_runs]
    kers = [index(r) for r in ker_runs]
    until, skip = opts['until'], opts['skip']
    todo = [s for s in steps if (until is None or s['t'] <= until) and s['i'] not in skip]
    ref = sims[0]
    groups = OrderedDict()
    for s in todo:
        groups.setdefault(s['i'], []).append(s)
    out = {'groups': [], 'mismatches': 0, 'tests': []}
    missing = []
    for i, sts in groups.items():
        call = sts[0]['call']
        keys = [(s['i'], s['rep']) for s in sts]
        auto = any((ref.get(k) or {}).get('range') for k in keys)
        g = {'i': i, 't': sts[0]['t'], 'op': call['op'], 'sock': call.get('sock') or call.get('name'),
             'count': len(sts), 'target': call.get('to') or call.get('addr') or call.get('value'),
             'problems': [], 'secret': []}
        for k in keys:
            for who, runs in (('portsim', sims), ('kernel', kers)):
                for n, r in enumerate(runs):
                    if k not in r:
                        missing.append('%s %s: no record for call %d rep %s' % (who, n, k[0], k[1]))
        if missing:
            g['problems'].append('records missing: ' + '; '.join(missing[:3]))
            out['groups'].append(g)
            out['mismatches'] += 1
            missing = []
            continue
        # per step
        for k in keys:
            sv = [step_props(r[k], ref.get(k)) for r in sims]
            kv = [step_props(r[k], ref.get(k)) for r in kers]
            judge(g, 'rep %s ' % k[1] if k[1] is not None else '', sv, kv)
        # per group
        sv = [group_props([r[k] for k in keys], auto) for r in sims]
        kv = [group_props([r[k] for k in keys], auto) for r in kers]
        judge(g, '', sv, kv)
        g['portsim'] = summarize([group_summary([r[k] for k in keys], auto) for r in sims])
        g['kernel'] = summarize([group_summary([r[k] for k in keys], auto) for r in kers])
        g['kernel_runs'] = [group_summary([r[k] for k in keys], auto) for r in kers]
        out['mismatches'] += len(g['problems'])
        out['groups'].append(g)
    # distribution tests
    gs, gk = gaps(todo, sims, ref), gaps(todo, kers, ref)
    t = {'name': 'gaps', 'what': 'consecutive autobind connect() ports toward one destination, '
         'difference mod range size', 'test': 'Pearson chi-square homogeneity (2 x K)',
         'alpha': GAP_ALPHA, 'n': [len(gs), len(gk)], 'portsim': dict(Counter(gs).most_common(10)),
         'kernel': dict(Counter(gk).most_common(10))}
    if not opts['gaps']:
        t['verdict'] = 'off (oracle.compare no-gaps)'
    elif not gs and not gk:
        t['verdict'] = 'not applicable (no consecutive autobind connects)'
    elif len(gk) < MIN_GAPS or len(gs) < MIN_GAPS:
        t['verdict'] = 'not tested (fewer than %d gaps; raise --runs)' % MIN_GAPS
    else:
        r = stats.chi2_homogeneity(gs, gk)
        if r is None:
            t['verdict'] = 'not tested (one cell)'
        else:
            t.update(r)
            t['verdict'] = 'MISMATCH' if r['p'] < GAP_ALPHA else 'agree'
            if r['p'] < GAP_ALPHA:
                out['mismatches'] += 1
    out['tests'].append(t)
    ps, pk = spread(todo, sims, ref), spread(todo, kers, ref)
    t = {'name': 'spread', 'what': 'position of auto-chosen ports in their range, (port-lo)/size',
         'test': 'two-sample Kolmogorov-Smirnov (advisory: no effect on the verdict)',
         'alpha': SPREAD_ALPHA, 'n': [len(ps), len(pk)]}
    r = stats.ks_2samp(ps, pk) if len(pk) >= 20 else None
    if not ps and not pk:
        t['verdict'] = 'not applicable (no auto-chosen ports)'
    elif r is None:
        t['verdict'] = 'not tested (fewer than 20 kernel ports)'
    else:
        t.update(r)
        t['verdict'] = 'advisory: differ' if r['p'] < SPREAD_ALPHA else 'advisory: agree'
    out['tests'].append(t)
    return out


def judge(g, prefix, sv, kv):
    names = []
    for p in sv + kv:
        for n in p:
            if n not in names:
                names.append(n)
    for n in names:
        s = [p.get(n) for p in sv]
        k = [p.get(n) for p in kv]
        ss = set(map(fmt_val, s))
        if len(ss) == 1:
            want = s[0]
            bad = [j for j, v in enumerate(k) if fmt_val(v) != fmt_val(want)]
            if bad:
                g['problems'].append('%s%s: portsim always %s | kernel %s (runs %s)' % (
                    prefix, n, fmt_val(want), summarize([k[j] for j in bad]),
                    ','.join(str(j + 1) for j in bad)))
        elif n in SMALL_DOMAIN:
            bad = [j for j, v in enumerate(k) if fmt_val(v) not in ss]
            if bad:
                g['problems'].append('%s%s: kernel %s (runs %s) never produced by portsim over %d '
                                     'seeds %s' % (prefix, n, summarize([k[j] for j in bad]),
                                                   ','.join(str(j + 1) for j in bad), len(s),
                                                   summarize(s)))
            else:
                g['secret'].append('%s%s: portsim %s | kernel %s' % (prefix, n, summarize(s), summarize(k)))
        else:
            g['secret'].append('%s%s: portsim %s | kernel %s' % (prefix, n, summarize(s), summarize(k)))


def gaps(todo, runs, ref):
    out = []
    for r in runs:
        last = {}
        for s in todo:
            k = (s['i'], s['rep'])
            rr = r.get(k)
            sr = ref.get(k) or {}
            if not rr or rr['op'] != 'connect' or rr['err'] != 'OK' or not sr.get('range') \
                    or 'step' not in sr:
                continue
            addr, port = split_local(rr.get('local'))
            lo, hi = sr['range']
            dest = (s['call'].get('host'), addr, s['call']['to'], lo, hi)
            if dest in last:
                out.append((port - last[dest]) % (hi - lo + 1))
            last[dest] = port
    return out


def spread(todo, runs, ref):
    out = []
    for r in runs:
        for s in todo:
            k = (s['i'], s['rep'])
            rr, sr = r.get(k), ref.get(k) or {}
            if rr and rr['err'] == 'OK' and sr.get('range') and rr.get('local'):
                lo, hi = sr['range']
                port = split_local(rr['local'])[1]
                if lo <= port <= hi:
                    out.append((port - lo) / (hi - lo + 1))
    return out
