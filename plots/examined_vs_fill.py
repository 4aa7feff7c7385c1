#!/usr/bin/env python3
"""examined_vs_fill.png — ports examined per connect() vs how much of the range is in use.

Caption: connect() toward one destination scans the even ports first, starting just after its
previous pick, so it stays cheap until the even half of the range is taken; from 50 % fill on,
every connect() walks all 14 116 even ports before it looks at an odd one, and because the limit
is per destination, D destinations move that wall to D/2 connections per port.

How the data are made (and why this way):
(a) Sequential fill: scenarios/seq-fill.json opens 28 300 connections to one destination, never
    closed, and the JSONL trace gives the `examined` count of every single connect()
    (extract_connects.py -> data/seq_fill_connects.csv). The fill before the n-th connect is
    exactly n_ok/28232, so one run yields the whole curve per connect; sweeping a pre-held count
    N with a probe workload would need one run per point and average away the structure.
(b) Churn with random release: scenarios/churn-random.json, Poisson arrivals, each connection
    held an exponential time (mean 1 s) then reset (no TIME_WAIT), 20 s of arrivals; the rate
    sets the fill. x = mean ESTABLISHED over t = 5..20 s (time series) / 28232; y = examined
    mean / median / p99 over all connects of the run (the first ~3 s of warm-up, at lower fill,
    are included: a small downward bias).
(c) The same churn round-robin over D = 1, 2, 4 destinations; x = connections in use / 28232
    (connections per port of the range).

What the 6.18 code does (inet_hash_connect / __inet_hash_connect): offset = (table_perturb[index]
+ port_offset) % range, made even; pass 1 scans even ports from there, pass 2 the odd ones; on
success table_perturb[index] += max(i, 2*U[0,8)) + 2, so the next scan for the same destination
(same index within a 10-s timeseed window) starts 2..16 ports after the previous pick, or right
after it when the scan had to skip used ports. Verified in the data of (a): the first odd port is
chosen by connect number 14 116 (fill 50.0 %) and every connect from there on examines >= 14 117
candidates (14 117-18 580); before it the mean is 1.0 up to 10 % fill, 2.5 at 30-40 %, 8.7 at
45-49 % and 89 in the last 1 % before the wall (max 4 339), the steps being the laps that find
the gaps left by the 2..16 strides. Under churn (b) the picture is softer: above 50 % the even ports are all
busy only most of the time, so the median grows gradually from ~50 to ~11 000.
"""
import math

from _common import DEFAULT_RANGE, EVEN_HALF, fnum, mean_between, plt, read_csv, save, COLUMN_IN, TEXT_WIDTH_IN

RATE = "/workloads/0/rate"
N = DEFAULT_RANGE


def churn_points(d):
    rows = read_csv(f"churn_{d}dest.csv")
    ts = read_csv(f"churn_{d}dest_ts.csv")
    pts = []
    for r in rows:
        rate = r[RATE]
        key = lambda s, rate=rate: s[RATE] == rate  # noqa: E731
        est = mean_between(ts, key, 5.0, 20.0, "established")
        bound = mean_between(ts, key, 5.0, 20.0, "bound_ports")
        pts.append((est / N, fnum(r["examined_mean"]), fnum(r["examined_p50"]),
                    fnum(r["examined_p99"]), bound / N))
    pts.sort()
    return pts


def panel_sequential(ax):
    rows = read_csv("seq_fill_connects.csv")
    xs, ys = [], []
    ok = 0
    first_odd = None
    for r in rows:
        xs.append(ok / N)
        ys.append(int(r["examined"]))
        if r["ret"] == "0":
            if first_odd is None and int(r["port"]) % 2:
                first_odd = ok
            ok += 1
    ax.scatter(xs, ys, s=1, color="C0", alpha=0.25, linewidths=0, rasterized=True,
               label="each connect()")
    w = 200
    csum = [0]
    for y in ys:
        csum.append(csum[-1] + y)
    mx = [xs[k + w // 2] for k in range(len(ys) - w)]
    my = [(csum[k + w] - csum[k]) / w for k in range(len(ys) - w)]
    ax.plot(mx, my, color="C1", lw=1.5, label=f"mean of {w}")
    ax.axvline(0.5, color="k", ls=":", lw=1)
    ax.axhline(EVEN_HALF + 1, color="gray", ls="--", lw=0.8,
               label="14 117: all even + 1")
    if first_odd is not None:
        ax.annotate(f"first odd port:\nconnect #{first_odd}\n(fill {first_odd / N:.1%})",
                    xy=(first_odd / N, EVEN_HALF + 1), xytext=(0.56, 4e2), fontsize=6.5,
                    arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_yscale("log")
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("fill before the connect() (held / 28 232)")
    ax.set_ylabel("ports examined")
    ax.set_title("(a) sequential fill, never closed", fontsize=8)
    ax.legend(fontsize=6, loc="lower right")


def panel_churn(ax):
    pts = churn_points(1)
    x = [p[0] for p in pts]
    ax.plot(x, [p[1] for p in pts], "o-", color="C0", ms=4, label="mean")
    ax.plot(x, [p[2] for p in pts], "s--", color="C2", ms=3, label="median")
    ax.plot(x, [p[3] for p in pts], "^:", color="C3", ms=3, label="99th percentile")
    fx = [k / 200 for k in range(0, 97)]
    ax.plot(fx, [1 / (1 - 2 * f) for f in fx], color="gray", lw=1, ls="-.",
            label="1/(1-2f)")
    ax.axvline(0.5, color="k", ls=":", lw=1)
    ax.axhline(EVEN_HALF + 1, color="gray", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0.8, 4e4)
    ax.set_xlabel("mean fill f (ESTABLISHED / 28 232)")
    ax.set_ylabel("ports examined per connect()")
    ax.set_title("(b) random release, 1 destination", fontsize=8)
    ax.legend(fontsize=6, loc="upper left")


def panel_dests(ax):
    notes = []
    for d, color in ((1, "C0"), (2, "C1"), (4, "C2")):
        pts = churn_points(d)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, ms=4,
                label=f"{d} destination{'s' if d > 1 else ''} (mean)")
        ax.axvline(d / 2, color=color, ls=":", lw=1)
        below = [p for p in pts if p[0] < d / 2 - 0.01]
        if d > 1 and below:  # distinct local ports bound just below the wall
            notes.append(f"{d} destinations, {below[-1][0]:.2f} connections/port:\n"
                         f"    {below[-1][4]:.0%} of the ports bound")
    ax.set_yscale("log")
    ax.set_ylim(0.8, 4e4)
    ax.set_xlabel("connections per port of the range")
    ax.set_ylabel("ports examined per connect()")
    ax.set_title("(c) D destinations (dotted: D/2)", fontsize=8)
    ax.legend(fontsize=6, loc="lower right")


def main():
    fig, axs = plt.subplots(1, 3, figsize=(TEXT_WIDTH_IN, 2.7))
    panel_sequential(axs[0])
    panel_churn(axs[1])
    panel_dests(axs[2])
    fig.suptitle("Ports examined per connect() vs fill (default range, 28 232 ports)", fontsize=8)
    fig.tight_layout()
    save(fig, "examined_vs_fill.png")


if __name__ == "__main__":
    main()
