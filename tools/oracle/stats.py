"""Two-sample tests for tools/kernel-oracle, standard library only.

chi2_homogeneity: Pearson chi-square test that two samples of a discrete variable come from the
same distribution (2 x K contingency table; categories whose expected count is below 5 in either
row are pooled into one "other" cell).  p-value from the regularized upper incomplete gamma
function Q(df/2, x/2) (series / continued fraction, Numerical Recipes style, own code).

ks_2samp: two-sample Kolmogorov-Smirnov D with the asymptotic p-value
Q_KS((sqrt(ne) + 0.12 + 0.11/sqrt(ne)) D), ne = n m / (n + m).  Ties make it conservative.
"""
import math
from collections import Counter


def _gser(a, x):
    s = term = 1.0 / a
    ap = a
    for _ in range(10000):
        ap += 1
        term *= x / ap
        s += term
        if abs(term) < abs(s) * 1e-15:
            break
    return s * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gcf(a, x):
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1 / d
        de = d * c
        h *= de
        if abs(de - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def gammaq(a, x):
    """Regularized upper incomplete gamma Q(a, x)."""
    if x <= 0:
        return 1.0
    if x < a + 1:
        return max(0.0, 1.0 - _gser(a, x))
    return _gcf(a, x)


def chi2_sf(x, df):
    return gammaq(df / 2.0, x / 2.0)


def chi2_homogeneity(sample_a, sample_b, min_expected=5.0):
    """Return dict(stat, df, p, cells) or None when fewer than two cells remain."""
    ca, cb = Counter(sample_a), Counter(sample_b)
    na, nb = sum(ca.values()), sum(cb.values())
    if na == 0 or nb == 0:
        return None
    n = na + nb
    cats = sorted(set(ca) | set(cb), key=lambda k: (-(ca[k] + cb[k]), str(k)))
    cells, other = [], [0, 0]
    for k in cats:
        tot = ca[k] + cb[k]
        if min(na, nb) * tot / n >= min_expected:
            cells.append([ca[k], cb[k], str(k)])
        else:
            other[0] += ca[k]
            other[1] += cb[k]
    if sum(other):
        if min(na, nb) * sum(other) / n >= min_expected or not cells:
            cells.append([other[0], other[1], 'other'])
        else:  # too small on its own: fold into the smallest cell
            cells[-1][0] += other[0]
            cells[-1][1] += other[1]
            cells[-1][2] += '+other'
    if len(cells) < 2:
        return None
    stat = 0.0
    for a, b, _ in cells:
        tot = a + b
        ea, eb = na * tot / n, nb * tot / n
        stat += (a - ea) ** 2 / ea + (b - eb) ** 2 / eb
    df = len(cells) - 1
    return {'stat': stat, 'df': df, 'p': chi2_sf(stat, df), 'cells': [c[2] for c in cells],
            'n': [na, nb]}


def _qks(lam):
    if lam < 1e-3:
        return 1.0
    s, sign = 0.0, 1.0
    for j in range(1, 200):
        t = 2 * sign * math.exp(-2 * j * j * lam * lam)
        s += t
        if abs(t) < 1e-12:
            break
        sign = -sign
    return min(1.0, max(0.0, s))


def ks_2samp(a, b):
    """Return dict(D, p) or None for an empty sample."""
    if not a or not b:
        return None
    a, b = sorted(a), sorted(b)
    na, nb = len(a), len(b)
    i = j = 0
    d = 0.0
    while i < na and j < nb:
        x = min(a[i], b[j])
        while i < na and a[i] <= x:
            i += 1
        while j < nb and b[j] <= x:
            j += 1
        d = max(d, abs(i / na - j / nb))
    ne = na * nb / (na + nb)
    sq = math.sqrt(ne)
    return {'D': d, 'p': _qks((sq + 0.12 + 0.11 / sq) * d), 'n': [na, nb]}
