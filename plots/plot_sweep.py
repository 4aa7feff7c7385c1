#!/usr/bin/python3
"""Plot any `portsim sweep` CSV (results or --timeseries-out) by column name.

  /usr/bin/python3 plots/plot_sweep.py results.csv -x /workloads/0/rate -y EADDRNOTAVAIL \\
      --hue /machines/0/sysctls/net.ipv4.tcp_tw_reuse -o failures.png
  /usr/bin/python3 plots/plot_sweep.py ts.csv -x t_s -y time_wait --hue /workloads/0/rate -o tw.svg

A column may be given by its full name or by any unique suffix ("rate", "tcp_tw_reuse"). -y may
be repeated (one line style per y). Rows with the same hue and x (several seeds) are averaged,
with the min-max band shaded. The output format follows the extension: .png, .svg or .pdf
(several -o for several formats). Figures are sized for a paper: --width 3.5 in (one column;
7.16 for a full text width), 8 pt fonts, so they stay readable at that width.
"""
import argparse
import csv
import math
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import paper_style, unquote  # noqa: E402


def pick(columns, name):
    if name in columns:
        return name
    hits = [c for c in columns if c.endswith(name)]
    if len(hits) == 1:
        return hits[0]
    why = "matches several columns: " + ", ".join(hits) if hits else "is not a column"
    sys.exit(f"plot_sweep.py: '{name}' {why} (columns: {', '.join(columns)})")


def number(v):
    v = unquote(v)
    try:
        return float(v)
    except ValueError:
        return None


def short(c):
    return c.rsplit("/", 1)[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", help="a portsim sweep CSV (--out) or time series (--timeseries-out)")
    ap.add_argument("-x", required=True, help="column for the x axis")
    ap.add_argument("-y", required=True, action="append", help="column(s) for the y axis")
    ap.add_argument("--hue", help="column whose values make separate lines")
    ap.add_argument("-o", "--out", required=True, action="append", help="output file(s): .png, .svg, .pdf")
    ap.add_argument("--logx", action="store_true")
    ap.add_argument("--logy", action="store_true")
    ap.add_argument("--title")
    ap.add_argument("--width", type=float, default=3.5, help="figure width in inches (default 3.5, one column)")
    ap.add_argument("--height", type=float, default=None, help="figure height in inches (default width x 0.7)")
    a = ap.parse_args()
    for o in a.out:
        if os.path.splitext(o)[1] not in (".png", ".svg", ".pdf"):
            sys.exit(f"plot_sweep.py: -o {o}: expected a .png, .svg or .pdf file name")
    try:
        with open(a.csv, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        sys.exit(f"plot_sweep.py: cannot open {a.csv}: {e.strerror}")
    if not rows:
        sys.exit(f"plot_sweep.py: {a.csv}: no rows")
    cols = list(rows[0].keys())
    x = pick(cols, a.x)
    ys = [pick(cols, y) for y in a.y]
    hue = pick(cols, a.hue) if a.hue else None

    paper_style()
    fig, ax = plt.subplots(figsize=(a.width, a.height or a.width * 0.7), constrained_layout=True)
    styles = ["-", "--", ":", "-."]
    groups = defaultdict(lambda: defaultdict(list))  # (hue, y) -> x -> [values]
    for r in rows:
        xv = number(r[x])
        if xv is None:
            continue
        for y in ys:
            yv = number(r[y]) if r[y] != "" else None
            if yv is not None and not math.isnan(yv):
                groups[(unquote(r[hue]) if hue else "", y)][xv].append(yv)
    hues = list(dict.fromkeys(h for h, _ in groups))
    for hi, h in enumerate(hues):
        for yi, y in enumerate(ys):
            pts = groups.get((h, y))
            if not pts:
                continue
            xs = sorted(pts)
            mean = [sum(pts[v]) / len(pts[v]) for v in xs]
            label = ", ".join(p for p in (f"{short(hue)}={h}" if hue else "", short(y) if len(ys) > 1 else "") if p)
            line, = ax.plot(xs, mean, styles[yi % len(styles)], color=f"C{hi % 10}", marker="." if len(xs) < 40 else None,
                            label=label or None)
            if any(len(pts[v]) > 1 for v in xs):
                ax.fill_between(xs, [min(pts[v]) for v in xs], [max(pts[v]) for v in xs], color=line.get_color(), alpha=0.2,
                                linewidth=0)
    ax.set_xlabel(short(x))
    ax.set_ylabel(short(ys[0]) if len(ys) == 1 else ", ".join(short(y) for y in ys))
    if a.logx:
        ax.set_xscale("log")
    if a.logy:
        ax.set_yscale("log")
    if a.title:
        ax.set_title(a.title)
    if hue or len(ys) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    for o in a.out:
        fig.savefig(o, dpi=300)
        print(f"wrote {o}")


main()
