#!/usr/bin/env python3
"""port_parity_and_gaps.png — which local port each connect() gets while connections to one
destination pile up (left), and the distance between consecutive picks (right).

Caption: Linux 6.18 hands out ports to one destination in laps around the even ports (strides of
2..16, uniform) and turns to the odd ports only when no even port is left; the lap structure and
the exact 50 % switch are what make the cost curve of examined_vs_fill.png jump.

Why this plot (rather than the SYN retransmission timeline): it is the one picture that shows
the port-selection algorithm itself, the thing a sequential-port simulator (ns-3, OMNeT++) gets
wrong, and it explains the other plots: the even-first passes explain the 50 % cost wall of
examined_vs_fill.png and the even-half line in failure_vs_rate.png, and the random strides
(table_perturb[index] += max(i, 2*U[0,8)) + 2) explain why the first lap leaves gaps that later
laps must search for. The SYN timeline is a TCP-timer matter, not port selection.

Data: data/seq_fill_connects.csv, the connect() records of a trace of scenarios/seq-fill.json
(28 300 connects, one every 100 us, never closed, all within one 10-s port-offset window).
Gaps (right) are port(n) - port(n-1) during the first lap of the even ports (until the walk
wraps past 60999): there every scan starts on a free port (kernel i = 0), so the gap is exactly
the previous perturb increment 2*U[0,8) + 2 and the kernel predicts a uniform distribution over
2, 4, ..., 16. (Later laps are not used: requiring the next start to be free there selects
strides that land in the gaps of earlier laps, which biases the histogram a little; the draws
themselves, the trace's perturb_inc of scans with i = 0, are uniform.)
"""
from collections import Counter

from matplotlib.lines import Line2D

from _common import DEFAULT_RANGE, plt, read_csv, save, COLUMN_IN, TEXT_WIDTH_IN

LOW, HIGH = 32768, 60999


def main():
    rows = read_csv("seq_fill_connects.csv")
    even_n, even_p, odd_n, odd_p, fail_n = [], [], [], [], []
    gaps = Counter()
    prev = None
    first_lap = True
    lap_end = 0
    for r in rows:
        n = int(r["n"])
        if r["ret"] != "0":
            fail_n.append(n)
            prev = None
            continue
        port = int(r["port"])
        (odd_n if port % 2 else even_n).append(n)
        (odd_p if port % 2 else even_p).append(port)
        # First lap: from the first pick until the walk wraps past the top of the range. Every
        # scan there starts on a free port (ki = 0), so the gap is exactly the random stride.
        if first_lap:
            if prev is not None and (port < prev or r["ki"] != "0"):
                first_lap = False
                lap_end = n
            else:
                if prev is not None:
                    gaps[port - prev] += 1
                prev = port

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 3.3), gridspec_kw={"width_ratios": [1.6, 1]})
    ax.scatter(even_n, even_p, s=0.6, color="C0", linewidths=0, rasterized=True,
               label=f"even port ({len(even_p)} connects)")
    ax.scatter(odd_n, odd_p, s=0.6, color="C1", linewidths=0, rasterized=True,
               label=f"odd port ({len(odd_p)} connects)")
    if fail_n:
        ax.scatter(fail_n, [LOW - 700] * len(fail_n), s=14, marker="x", color="C3", linewidths=0.8,
                   label=f"EADDRNOTAVAIL ({len(fail_n)} connects)")
    if odd_n:
        ax.axvline(odd_n[0], color="k", ls=":", lw=1)
        ax.text(odd_n[0] - 250, HIGH + 900, f"#{odd_n[0]} = 28 232 / 2:\nfirst odd port",
                fontsize=6.5, va="bottom", ha="right")
    ax.set_ylim(LOW - 1500, HIGH + 6500)
    ax.set_xlim(0, len(rows) + 250)
    ax.set_xlabel("connect() number (one every 100 µs, never closed)")
    ax.set_ylabel("local port chosen")
    ax.set_title("Port chosen by each connect() (default range)", fontsize=8)
    handles = [Line2D([], [], ls="", marker="o", ms=5, color="C0"),
               Line2D([], [], ls="", marker="o", ms=5, color="C1")]
    if fail_n:
        handles.append(Line2D([], [], ls="", marker="x", ms=6, color="C3"))
    ax.legend(handles, [h.get_label() for h in ax.collections][:len(handles)], fontsize=6,
              loc="upper right", bbox_to_anchor=(1.0, 1.0), framealpha=0.9)

    xs = list(range(2, 17, 2))
    total = sum(gaps[x] for x in xs)
    other = sum(v for k, v in gaps.items() if k not in xs)
    bx.bar(xs, [gaps[x] for x in xs], width=1.4, color="C0",
           label=f"model ({total} gaps)")
    bx.axhline(total / 8, color="C3", ls="--", lw=1.2, label="uniform 2..16: 2·U[0,8) + 2")
    bx.set_xticks(xs)
    bx.set_xlabel("gap to the previous pick (ports)")
    bx.set_ylabel("number of consecutive picks")
    title = f"Gaps, first lap (connects 0..{lap_end - 1})"
    chi2 = sum((gaps[x] - total / 8) ** 2 / (total / 8) for x in xs)
    title += f"\nχ² vs uniform {chi2:.1f} (7 d.o.f.; 5 %: 14.07)"
    if other:
        title += f"; {other} pairs with other gaps"
    bx.set_title(title, fontsize=8)
    bx.set_ylim(0, total / 8 * 1.5)
    bx.legend(fontsize=6, loc="upper right")
    fig.suptitle("__inet_hash_connect (6.18): laps over the even ports, odd ports once they are full",
                 fontsize=8)
    fig.tight_layout()
    save(fig, "port_parity_and_gaps.png")


if __name__ == "__main__":
    main()
