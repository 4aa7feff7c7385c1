"""Scenario reading for tools/kernel-oracle (Python 3 stdlib only).

Reads the same JSON-with-comments format as sim/scenario/load.cc, expands repeated calls and
orders every call the way portsim's event engine does: all first repetitions are scheduled in
file order at load time, each later repetition k+1 is scheduled when repetition k runs; events
run by (time, scheduling sequence)."""
import heapq
import json
import re


class BadInput(Exception):
    """The scenario is malformed (exit 2)."""


class Unsupported(Exception):
    """The scenario uses something the oracle cannot perform on the live kernel (exit 2)."""


def strip_comments(text):
    """Remove // line comments and /* */ block comments that lie outside JSON strings."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == '\\' and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j  # keep the newline (line numbers stay right)
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            if j < 0:
                raise BadInput('unterminated /* comment')
            out.append('\n' * text.count('\n', i, j))
            i = j + 2
        else:
            out.append(c)
            i += 1
    return ''.join(out)


_UNITS = {'ns': 1, 'us': 10**3, 'ms': 10**6, 's': 10**9, 'm': 60 * 10**9, 'h': 3600 * 10**9}


def parse_duration(s):
    """"1.5ms" -> nanoseconds (int)."""
    m = re.fullmatch(r'\s*([0-9]+(?:\.[0-9]+)?)\s*(ns|us|ms|s|m|h)\s*', str(s))
    if not m:
        raise BadInput('bad duration %r' % (s,))
    return int(round(float(m.group(1)) * _UNITS[m.group(2)]))


def fmt_ns(ns):
    if ns % 10**9 == 0:
        return '%ds' % (ns // 10**9)
    if ns % 10**6 == 0:
        return '%dms' % (ns // 10**6)
    if ns % 10**3 == 0:
        return '%dus' % (ns // 10**3)
    return '%dns' % ns


def parse_endpoint(s):
    """"10.0.0.2:80" -> ('10.0.0.2', 80, 4); "[::1]:80" -> ('::1', 80, 6); port '*' -> None."""
    s = str(s)
    if s.startswith('['):
        j = s.find(']:')
        if j < 0:
            raise BadInput('bad endpoint %r' % s)
        host, port = s[1:j], s[j + 2:]
        fam = 6
    else:
        host, _, port = s.rpartition(':')
        fam = 4
    if not host:
        raise BadInput('bad endpoint %r' % s)
    if port == '*':
        return host, None, fam
    try:
        p = int(port)
    except ValueError:
        raise BadInput('bad endpoint %r' % s)
    return host, p, fam


def sock_name(pattern, k):
    return pattern.replace('{i}', str(k), 1) if '{i}' in pattern else pattern


def load(path):
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError as ex:
        raise BadInput('%s: cannot read: %s' % (path, ex.strerror))
    try:
        sc = json.loads(strip_comments(text))
    except json.JSONDecodeError as ex:
        raise BadInput('%s:%d:%d: invalid JSON: %s' % (path, ex.lineno, ex.colno, ex.msg))
    if not isinstance(sc, dict) or not isinstance(sc.get('machines'), list) or \
            not isinstance(sc.get('timeline'), list):
        raise BadInput('%s: expected an object with "machines" and "timeline"' % path)
    return sc


def hosts_of(sc):
    """[(host name, machine name, addresses, sysctls as [(name, value)])] in file order."""
    out = []
    for m in sc['machines']:
        if 'netns' in m:
            for ns in m['netns']:
                out.append((ns['name'], m['name'], list(ns.get('addresses', [])),
                            [(k, str(v)) for k, v in ns.get('sysctls', {}).items()]))
        else:
            out.append((m['name'], m['name'], list(m.get('addresses', [])),
                        [(k, str(v)) for k, v in m.get('sysctls', {}).items()]))
    return out


def externals(sc):
    """[(endpoint text, answer)] from "external": strings or {"endpoint", "answer", ...}.
    Delay, jitter, loss and silent endpoints need packet manipulation this kernel cannot do
    without tc netem: Unsupported."""
    out = []
    for e in sc.get('external') or []:
        if isinstance(e, str):
            out.append((e, 'accept'))
            continue
        if not isinstance(e, dict) or 'endpoint' not in e:
            raise BadInput('external: expected "addr:port" or {"endpoint": ...}, got %r' % (e,))
        for k in ('delay', 'jitter', 'loss'):
            if k in e and str(e[k]) not in ('0', '0s', '0ms', '0.0'):
                raise Unsupported('external %s has a %s (no tc netem on this kernel; the oracle '
                                  'does not shape traffic)' % (e['endpoint'], k))
        ans = e.get('answer', 'accept')
        if ans == 'silent':
            raise Unsupported('external %s is silent (dropping SYNs needs a firewall rule; not '
                              'performed)' % e['endpoint'])
        out.append((e['endpoint'], ans))
    return out


def check_performable(sc):
    for k in ('links', 'workloads'):
        if sc.get(k):
            raise Unsupported('"%s" is not performed by the oracle (link delay/loss needs tc netem, '
                              'which this kernel lacks; workloads are generated inside portsim)' % k)
    if sc.get('external') and any(c.get('type') == 'udp' for c in sc.get('timeline') or []):
        raise Unsupported('UDP toward external endpoints (the oracle\'s externals are TCP listeners)')
    externals(sc)


def oracle_block(sc):
    o = sc.get('oracle') or {}
    return {'checkable': bool(o.get('checkable', False)), 'compare': str(o.get('compare', '')),
            'notes': str(o.get('notes', ''))}


def parse_compare(s):
    """The scenario's oracle.compare string: tokens separated by ',' or ';'.
    Known: 'until=DURATION' (run and compare only the calls up to that virtual time),
    'skip=I+I+...' (timeline indices not compared), 'no-gaps' (no gap test)."""
    opts = {'until': None, 'skip': set(), 'gaps': True}
    for tok in re.split(r'[,;]', s or ''):
        tok = tok.strip()
        if not tok or tok == 'all':
            continue
        if tok.startswith('until='):
            opts['until'] = parse_duration(tok[6:])
        elif tok.startswith('skip='):
            opts['skip'] = {int(x) for x in tok[5:].split('+') if x.strip()}
        elif tok == 'no-gaps':
            opts['gaps'] = False
        else:
            raise BadInput('oracle.compare: unknown token %r (known: all, until=DUR, skip=I+I, no-gaps)'
                           % tok)
    return opts


def steps(sc):
    """Every call repetition in portsim's execution order:
    [{'i', 'rep' (None when not repeated), 't' (ns), 'call', 'sock'}]."""
    tl = sc['timeline']
    heap, seq = [], 0
    calls = []
    for i, c in enumerate(tl):
        if not isinstance(c, dict) or 'op' not in c or 't' not in c:
            raise BadInput('$.timeline[%d]: expected a call with "t" and "op"' % i)
        rep = c.get('repeat') or {}
        count = int(rep.get('count', 1))
        every = parse_duration(rep['every']) if 'every' in rep else 0
        if count < 1 or count > 20000:
            raise Unsupported('$.timeline[%d]: repeat count %d (the oracle runs at most 20000 '
                              'repetitions per call: fd limit)' % (i, count))
        t0 = parse_duration(c['t'])
        calls.append((c, count, every, t0, count > 1))
        heapq.heappush(heap, (t0, seq, i, 0))
        seq += 1
    out = []
    while heap:
        t, _, i, k = heapq.heappop(heap)
        c, count, every, t0, repeated = calls[i]
        if k + 1 < count:
            heapq.heappush(heap, (t0 + (k + 1) * every, seq, i, k + 1))
            seq += 1
        out.append({'i': i, 'rep': k if repeated else None, 't': t, 'call': c,
                    'sock': sock_name(c['sock'], k) if 'sock' in c else None,
                    'as': sock_name(c['as'], k) if 'as' in c else None})
    return out


# -- the replay plan ---------------------------------------------------------------------------
# What tools/oracle/replay (portsim-replay) performs: the scenario fully resolved, so the executor
# parses no scenario syntax (durations, endpoints, repeats, {i} names, option spellings). Format:
# tools/oracle/replay/README.md.

PLAN_FORMAT = 'portsim-replay-plan/1'

# socket option -> how its value reaches setsockopt (the executor knows the levels)
_OPTS = ('SO_REUSEADDR', 'SO_REUSEPORT', 'IP_BIND_ADDRESS_NO_PORT', 'IPV6_V6ONLY', 'SO_LINGER',
         'TCP_SYNCNT', 'IP_LOCAL_PORT_RANGE')


def _opt_value(name, v):
    """The integer the executor passes for option `name` ("40000-40009" -> lo | hi << 16)."""
    if name not in _OPTS:
        raise Unsupported('socket option %s' % name)
    if name == 'SO_LINGER':
        return 0 if v == 'off' else 1
    if name == 'IP_LOCAL_PORT_RANGE' and isinstance(v, str):
        lo, hi = (int(x) for x in v.split('-'))
        return lo | hi << 16
    return int(v)


def _endpoint(text):
    a, p, fam = parse_endpoint(text)
    return {'ip': a, 'port': p, 'family': fam}


def _cidr(text):
    """"10.0.0.1/24" -> {"cidr", "ip", "prefixlen", "family", "network": "10.0.0.0"} (the on-link route)."""
    import ipaddress
    try:
        itf = ipaddress.ip_interface(text)
    except ValueError:
        raise BadInput('bad address %r (expected ADDR/PREFIXLEN)' % (text,))
    return {'cidr': text, 'ip': str(itf.ip), 'prefixlen': itf.network.prefixlen,
            'family': itf.version, 'network': str(itf.network.network_address)}


def _sockets(st_list):
    """Socket name -> {"family": 4|6, "type": "stream"|"dgram", "echo": bool}: the first call
    naming a socket with "type": "udp" makes it SOCK_DGRAM (an "echo" server if it says so); its
    family is the call's "family" or that of the first address it names (else AF_INET)."""
    out = {}
    for st in st_list:
        c, name = st['call'], st['sock']
        if not name:
            continue
        s = out.setdefault(name, {'family': None, 'type': None, 'echo': False})
        if s['type'] is None and c.get('type') == 'udp':
            s['type'] = 'dgram'
            s['echo'] = bool(c.get('echo'))
        a = c.get('addr') or c.get('to')
        if s['family'] is None and c.get('family') in ('inet', 'inet6'):
            s['family'] = 6 if c['family'] == 'inet6' else 4
        elif s['family'] is None and a:
            s['family'] = parse_endpoint(a)[2]
    for s in out.values():
        s['family'] = s['family'] or 4
        s['type'] = s['type'] or 'stream'
    return out


def _plan_step(st):
    c = st['call']
    op = c['op']
    p = {'i': st['i'], 'rep': st['rep'], 't': st['t'], 'op': op, 'sock': st['sock']}
    if c.get('host') is not None:
        p['host'] = c['host']
    if st['as'] is not None:
        p['as'] = st['as']
    if op == 'sysctl':
        p['name'], p['value'] = str(c['name']), str(c['value'])
        return p
    if c.get('addr'):
        p['addr'] = _endpoint(c['addr'])
    if c.get('to'):
        p['to'] = _endpoint(c['to'])
    opts = [[k, _opt_value(k, v)] for k, v in (c.get('opts') or {}).items()]
    if op == 'setsockopt':
        opts.append([c['opt'], _opt_value(c['opt'], c['value'])])
    if opts:
        p['opts'] = opts
    if op == 'listen':
        p['backlog'] = int(c.get('backlog', 128))
    if c.get('nonblock'):
        p['nonblock'] = True
    if 'uid' in c or 'cap_net_bind_service' in c:
        uid = int(c.get('uid', 0))
        cap = bool(c.get('cap_net_bind_service', uid == 0))
        if uid != 0 or not cap:
            p['cred'] = {'uid': uid, 'cap_net_bind_service': cap}
    return p


def plan(sc, until=None, exact=False):
    """The resolved plan portsim-replay performs (check_performable first: Unsupported)."""
    check_performable(sc)
    st_list = steps(sc)
    hosts = [{'name': n, 'machine': m, 'addresses': [_cidr(a) for a in addrs],
              'sysctls': [[k, v] for k, v in sysctls]} for n, m, addrs, sysctls in hosts_of(sc)]
    ext = []
    for text, ans in externals(sc):
        e = _endpoint(text)
        e.update(endpoint=text, answer=ans)
        ext.append(e)
    return {'format': PLAN_FORMAT, 'name': str(sc.get('name', '')), 'until': until,
            'exact': bool(exact), 'hosts': hosts, 'externals': ext, 'sockets': _sockets(st_list),
            'steps': [_plan_step(st) for st in st_list]}


def _main(argv):
    """python3 tools/oracle/scenario.py plan SCENARIO [--until-ns N] [--exact]: print the plan."""
    import sys
    if len(argv) < 2 or argv[0] != 'plan' or argv[0] in ('-h', '--help'):
        sys.stderr.write('usage: scenario.py plan SCENARIO [--until-ns N] [--exact]\n'
                         '  prints the replay plan of SCENARIO (tools/oracle/replay/README.md)\n')
        return 2
    until, exact, rest = None, False, argv[2:]
    while rest:
        if rest[0] == '--until-ns' and len(rest) > 1 and rest[1].isdigit():
            until, rest = int(rest[1]), rest[2:]
        elif rest[0] == '--exact':
            exact, rest = True, rest[1:]
        else:
            sys.stderr.write('scenario.py plan: unknown argument %r\n' % rest[0])
            return 2
    try:
        p = plan(load(argv[1]), until, exact)
    except (BadInput, Unsupported) as ex:
        sys.stderr.write('scenario.py: %s\n' % ex)
        return 2
    except (KeyError, TypeError, ValueError) as ex:
        sys.stderr.write('scenario.py: %s: malformed scenario (%s)\n' % (argv[1], ex))
        return 2
    json.dump(p, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    import sys
    sys.exit(_main(sys.argv[1:]))
