#!/usr/bin/env python3
"""ports_in_use_over_time.png — local ports in use (ESTABLISHED + TIME_WAIT) over virtual time for a
churn workload (one connection per request, client closes first) vs a pool of 8 kept-alive
connections carrying the same requests.

Caption: One connection per request leaves each port in TIME_WAIT for about a minute, so ports in
use climb to rate x ~61 s (~18 300 at 300/s) or hit the 28 232 ports of the range (600/s, from
47 s on: EADDRNOTAVAIL in bursts), then drain for a minute after the last request; a pool of 8
connections serves the same 600 requests/s with 8 ports.

Data: data/churn_nopool_ts.csv (scenarios/churn-nopool.json, rates 300 and 600/s, arrivals
0-150 s, hold 50 ms) and data/churn_pool_ts.csv (scenarios/churn-pool.json, pool 8), sampled
every 1 s of virtual time (portsim sweep --timeseries 1s). The ESTABLISHED + TIME_WAIT sum equals
the bound_ports column here (one destination, so one socket per port).

TIME_WAIT timers fire on timer-wheel ticks (2.048 s granularity for a 60-s timeout at HZ=250),
so TIME_WAIT lasts 60-62 s and ports come back in batches: that is the sawtooth on the plateaus
(mean ~61 s x rate) and the staircase of the drain, not noise. At 600/s the range is full at
47.05 s; a port returns only when its TIME_WAIT ends, so after ~47 s of successes there are ~14 s
with no success at all while all 28 232 ports are in TIME_WAIT (flat tops), and the long step in
the drain is the trace of such a gap (no port was taken then, so none expires 61 s later).
"""
from _common import DEFAULT_RANGE, fnum, plt, read_csv, save, COLUMN_IN, TEXT_WIDTH_IN

RATE = "/workloads/0/rate"


def series(rows, rate=None):
    pts = [(fnum(r["t_s"]), int(r["established"]) + int(r["time_wait"]), int(r["established"]))
           for r in rows if rate is None or r[RATE] == rate]
    pts.sort()
    return pts


def main():
    nopool = read_csv("churn_nopool_ts.csv")
    nopool_sum = {r[RATE]: r for r in read_csv("churn_nopool.csv")}
    pool = read_csv("churn_pool_ts.csv")
    pool_sum = read_csv("churn_pool.csv")[0]

    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 3.8))
    ax.axhline(DEFAULT_RANGE, color="k", ls="--", lw=1,
               label="size of the range 32768-60999: 28 232 ports")
    for rate, color in (("600", "C3"), ("300", "C0")):
        pts = series(nopool, rate)
        s = nopool_sum[rate]
        fail = fnum(s.get("EADDRNOTAVAIL"))
        extra = (f"; {fail / fnum(s['connects']):.1%} EADDRNOTAVAIL, first at "
                 f"{fnum(s['first_eaddrnotavail_s']):.2f} s") if fail else "; no failures"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, lw=1.8,
                label=f"new connection per request, {rate} requests/s{extra}")
        if fail:
            ax.axvline(fnum(s["first_eaddrnotavail_s"]), color=color, ls=":", lw=1)
    pts = series(pool)
    req, reqf = fnum(pool_sum["requests"]), fnum(pool_sum["requests_failed"])
    ax.plot([p[0] for p in pts], [p[1] for p in pts], color="C2", lw=2.2,
            label=f"pool of 8 kept-alive connections, 600 requests/s "
                  f"({int(req)} requests, {int(reqf)} failed)")
    ax.annotate("pool: 8 ports in use", xy=(110, 8), xytext=(100, 3000), fontsize=7, color="C2",
                arrowprops={"arrowstyle": "->", "color": "C2"})
    ax.axvline(150, color="gray", ls="-.", lw=1)
    ax.text(152, 4000, "arrivals stop (150 s):\nTIME_WAIT drains\nover 60-62 s", fontsize=7,
            color="gray")
    ax.set_xlim(0, 215)
    ax.set_ylim(0, 40000)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("local ports in use (ESTABLISHED + TIME_WAIT sockets)")
    ax.set_title("Ports in use over time: one connection per request (client closes, TIME_WAIT 60 s)\n"
                 "vs a connection pool, one external destination, Linux 6.18 model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save(fig, "ports_in_use_over_time.png")


if __name__ == "__main__":
    main()
