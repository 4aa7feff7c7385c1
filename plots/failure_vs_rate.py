#!/usr/bin/env python3
"""failure_vs_rate.png — connect() failure rate (EADDRNOTAVAIL / connects) and ports examined per
connect() vs new-connection rate to one external destination, client closing first (TIME_WAIT 60 s).

Caption: Without tcp_tw_reuse every connection holds its port for 60 s of TIME_WAIT, so
failures start at range/60 s (470/s for 32768-60999, 1075/s for 1024-65535) and then follow
1 - range/(60 s x rate); tcp_tw_reuse=1 removes them, and connect() already gets expensive at
half the knee, when the even ports are all in TIME_WAIT.

TIME_WAIT is 60 s (TCP_TIMEWAIT_LEN) but its timer fires on a timer-wheel tick: for a 15 000-
jiffy timeout at HZ=250 the wheel level has a granularity of 512 jiffies = 2.048 s, so a port
stays in TIME_WAIT 60-62 s (about 61 s on average) and failures begin ~2 % below the nominal
knee (e.g. 2.3 % at 470/s, 2.4 % at 1075/s). The dotted theory curves use exactly 60 s.

Data: data/failure_vs_rate.csv (portsim sweep of scenarios/failure-vs-rate.json over rate x
ip_local_port_range x tcp_tw_reuse 0/1, 180 s of arrivals) and data/failure_vs_rate_tw2.csv
(tcp_tw_reuse=2, the default, which allows reuse for loopback only: toward 10.0.0.2 it must
equal 0; it is drawn as crosses on top of the 0 curve to show that it does).
"""
from _common import DEFAULT_RANGE, TIME_WAIT_S, WIDE_RANGE, fnum, plt, read_csv, save, COLUMN_IN, TEXT_WIDTH_IN

RATE = "/workloads/0/rate"
RANGE = "/machines/0/sysctls/net.ipv4.ip_local_port_range"
REUSE = "/machines/0/sysctls/net.ipv4.tcp_tw_reuse"


def series(rows, rng, reuse):
    pts = []
    for r in rows:
        if r.get(RANGE, "32768 60999") == rng and r[REUSE] == reuse:
            c = fnum(r["connects"])
            fail = fnum(r.get("EADDRNOTAVAIL"))
            pts.append((fnum(r[RATE]), 100.0 * fail / c if c else 0.0, fnum(r["examined_mean"])))
    pts.sort()
    return pts


def main():
    rows = read_csv("failure_vs_rate.csv")
    tw2 = read_csv("failure_vs_rate_tw2.csv")
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(TEXT_WIDTH_IN, 5.6), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 2]})
    curves = [
        ("32768 60999", "0", "C0", "-", "o", "32768-60999 (28 232 ports), tcp_tw_reuse=0"),
        ("32768 60999", "1", "C0", "--", "s", "32768-60999, tcp_tw_reuse=1"),
        ("1024 65535", "0", "C3", "-", "o", "1024-65535 (64 512 ports), tcp_tw_reuse=0"),
        ("1024 65535", "1", "C3", "--", "s", "1024-65535, tcp_tw_reuse=1"),
    ]
    rmax = 0.0
    for rng, reuse, color, ls, mk, label in curves:
        pts = series(rows, rng, reuse)
        if not pts:
            continue
        xs = [p[0] for p in pts]
        rmax = max(rmax, max(xs))
        ax.plot(xs, [p[1] for p in pts], ls, marker=mk, ms=4, color=color, label=label,
                mfc="none" if reuse == "1" else color)
        bx.plot(xs, [p[2] for p in pts], ls, marker=mk, ms=4, color=color,
                mfc="none" if reuse == "1" else color)
    pts2 = series(tw2, "32768 60999", "2")
    if pts2:
        ax.plot([p[0] for p in pts2], [p[1] for p in pts2], "x", color="k", ms=7,
                label="32768-60999, tcp_tw_reuse=2 (default: loopback only)")
        bx.plot([p[0] for p in pts2], [p[2] for p in pts2], "x", color="k", ms=7)

    # Theory: every connection holds its port for TIME_WAIT_S, so at most N/60 s succeed.
    for n, color in ((DEFAULT_RANGE, "C0"), (WIDE_RANGE, "C3")):
        knee = n / TIME_WAIT_S
        xs = [knee + (rmax - knee) * k / 200 for k in range(201)]
        ax.plot(xs, [100.0 * (1 - n / (TIME_WAIT_S * x)) for x in xs], ":", color=color, lw=1)
        ax.axvline(knee, color=color, lw=1, alpha=0.7, label=f"knee: {n} ports / 60 s = {knee:.1f}/s")
        bx.axvline(knee, color=color, lw=1, alpha=0.7)
    ax.plot([], [], ":", color="gray", lw=1, label="theory: 1 - ports / (60 s x rate)")
    # What the nominal knees look like in the data (TIME_WAIT ends on a 2.048-s wheel tick).
    notes = []
    for rng, n in (("32768 60999", DEFAULT_RANGE), ("1024 65535", WIDE_RANGE)):
        at = [p for p in series(rows, rng, "0") if abs(p[0] - n / TIME_WAIT_S) < 6]
        if at:
            notes.append(f"{at[0][1]:.1f} % at {at[0][0]:.0f}/s")
    if notes:
        ax.text(0.015, 0.36, "measured at the nominal knees:\n" + ", ".join(notes) +
                "\n(TIME_WAIT lasts 60-62 s: it ends on\na 2.048-s timer-wheel tick at HZ=250)",
                transform=ax.transAxes, ha="left", va="bottom", fontsize=7, color="0.3",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    for n, color in ((DEFAULT_RANGE, "C0"), (WIDE_RANGE, "C3")):
        half = n / 2 / TIME_WAIT_S
        bx.axvline(half, color=color, lw=1, ls="-.", alpha=0.7,
                   label=f"even ports all in TIME_WAIT: {n // 2} / 60 s = {half:.1f}/s")
    bx.legend(fontsize=7, loc="center right")

    ax.set_title("connect() failures vs connection rate, one external destination,\n"
                 "client closes first (TIME_WAIT 60 s), 180 s of constant arrivals, Linux 6.18 model")
    ax.set_ylabel("connect() failing with EADDRNOTAVAIL (% of attempts)")
    ax.set_ylim(-2, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    bx.set_yscale("log")
    bx.set_ylabel("ports examined per connect()\n(mean over all attempts)")
    bx.set_xlabel("new connections per second to 10.0.0.2:80 (connects/s)")
    bx.grid(alpha=0.3, which="both")
    bx.set_ylim(0.7, 2e5)
    bx.set_title("cost of connect(): candidates scanned by __inet_hash_connect "
                 "(a failed attempt scans the whole range)", fontsize=8)
    fig.tight_layout()
    save(fig, "failure_vs_rate.png")


if __name__ == "__main__":
    main()
