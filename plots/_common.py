"""Shared helpers for the plot scripts: CSV reading (portsim sweep output) and figure setup."""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after use("Agg"))

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
DPI = 100

DEFAULT_RANGE = 60999 - 32768 + 1  # 28232 ports
WIDE_RANGE = 65535 - 1024 + 1      # 64512 ports
EVEN_HALF = DEFAULT_RANGE // 2     # 14116 even ports in the default range
TIME_WAIT_S = 60.0


def data_path(name):
    return os.path.join(DATA, name)


def out_path(name):
    return os.path.join(HERE, name)


def unquote(v):
    """portsim writes a --vary value as given; a JSON string value comes back with its quotes."""
    v = v.strip()
    while len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = v[1:-1]
    return v


def read_csv(name):
    path = data_path(name)
    if not os.path.exists(path):
        sys.exit(f"{path}: missing; run plots/make_all.sh first")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in list(r):
            if k.startswith("/"):
                r[k] = unquote(r[k])
    return rows


def fnum(v, default=0.0):
    return float(v) if v not in (None, "") else default


def save(fig, name):
    path = out_path(name)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {os.path.relpath(path)}")


def mean_between(ts_rows, key, lo, hi, col):
    """Mean of column `col` over time-series rows of variant `key` with lo <= t_s <= hi."""
    vals = [float(r[col]) for r in ts_rows if key(r) and lo <= float(r["t_s"]) <= hi]
    return sum(vals) / len(vals) if vals else float("nan")
