"""Shared helpers for the plot scripts: CSV reading (portsim sweep output) and figure setup."""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after use("Agg"))

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
DPI = 300  # PNG resolution; the figures are sized in real inches (below)

# Sizes for a paper: one column is about 3.5 in wide, the full text width about 7.16 in (IEEE,
# ACM). Figures are drawn at those sizes with 8 pt text (7 pt legends and notes), so they stay
# readable when placed at 100 %.
COLUMN_IN = 3.5
TEXT_WIDTH_IN = 7.16
FORMATS = ("png", "svg", "pdf")


def paper_style():
    plt.rcParams.update({
        "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
        "legend.fontsize": 7, "figure.titlesize": 8.5, "lines.linewidth": 1.1, "lines.markersize": 3,
        "svg.fonttype": "none", "pdf.fonttype": 42,  # text stays text (searchable, editable)
    })


paper_style()

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
    """Writes NAME.png, NAME.svg and NAME.pdf (name given with or without .png)."""
    stem = os.path.splitext(name)[0]
    for ext in FORMATS:
        path = out_path(f"{stem}.{ext}")
        # Fixed metadata: a rerun rewrites the SVG/PDF byte for byte.
        meta = {"Date": None} if ext == "svg" else {"CreationDate": None} if ext == "pdf" else {}
        fig.savefig(path, dpi=DPI, metadata=meta)
        print(f"wrote {os.path.relpath(path)}")
    plt.close(fig)


def mean_between(ts_rows, key, lo, hi, col):
    """Mean of column `col` over time-series rows of variant `key` with lo <= t_s <= hi."""
    vals = [float(r[col]) for r in ts_rows if key(r) and lo <= float(r["t_s"]) <= hi]
    return sum(vals) / len(vals) if vals else float("nan")
