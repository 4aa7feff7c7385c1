#!/usr/bin/env python3
"""udp_vs_tcp.png — share of failed connect() calls vs the rate of new sockets, UDP next to TCP.

Caption: A TCP connection closed by the client keeps its port in TIME_WAIT for 60 s, but a port
serves every destination (the 4-tuple decides), so the knee is 28 232 ports / 60 s = 470/s per
destination and moves to 4 x 470/s with four destinations. A connected UDP socket holds its
port against every other socket whatever it is connected to (udp_lib_lport_inuse ignores the
destination), so the knee is 28 232 ports / socket lifetime per host: with a 5 s resolver
timeout, 5 646 queries/s, and four resolvers do not move it. Past the knee TCP fails with
EADDRNOTAVAIL, UDP with EAGAIN.

Data: data/failure_vs_rate.csv (TCP, 1 destination, tcp_tw_reuse=0, default range),
data/failure_vs_rate_4dest.csv (TCP, 4 destinations), data/udp_dns_1.csv and udp_dns_4.csv
(portsim sweeps of scenarios/udp-dns.json and udp-dns-4.json: a new connected UDP socket per
query, closed after 5 s because the resolver never answers; 20 s of arrivals).
"""
from _common import DEFAULT_RANGE, TIME_WAIT_S, fnum, plt, read_csv, save

RATE = "/workloads/0/rate"
RANGE = "/machines/0/sysctls/net.ipv4.ip_local_port_range"
REUSE = "/machines/0/sysctls/net.ipv4.tcp_tw_reuse"
UDP_HOLD_S = 5.0


def pts(rows, errno, keep=lambda r: True):
    out = []
    for r in rows:
        if not keep(r):
            continue
        c = fnum(r["connects"])
        out.append((fnum(r[RATE]), 100.0 * fnum(r.get(errno)) / c if c else 0.0))
    return sorted(out)


def main():
    tcp1 = pts(read_csv("failure_vs_rate.csv"), "EADDRNOTAVAIL",
               lambda r: r.get(RANGE, "32768 60999") == "32768 60999" and r[REUSE] == "0")
    tcp4 = pts(read_csv("failure_vs_rate_4dest.csv"), "EADDRNOTAVAIL")
    udp1 = pts(read_csv("udp_dns_1.csv"), "EAGAIN")
    udp4 = pts(read_csv("udp_dns_4.csv"), "EAGAIN")
    fig, ax = plt.subplots(figsize=(9, 5.2))
    for data, color, ls, mk, label in [
        (tcp1, "C0", "-", "o", "TCP, 1 destination (EADDRNOTAVAIL)"),
        (tcp4, "C0", "--", "s", "TCP, 4 destinations"),
        (udp1, "C3", "-", "o", "UDP DNS queries, 1 resolver (EAGAIN)"),
        (udp4, "C3", "--", "s", "UDP DNS queries, 4 resolvers"),
    ]:
        if data:
            ax.plot([p[0] for p in data], [p[1] for p in data], ls, marker=mk, ms=4, color=color,
                    label=label, mfc="none" if ls == "--" else color)
    for x, color, text in [(DEFAULT_RANGE / TIME_WAIT_S, "C0", "470/s"),
                           (4 * DEFAULT_RANGE / TIME_WAIT_S, "C0", "4 x 470/s"),
                           (DEFAULT_RANGE / UDP_HOLD_S, "C3", "28 232 / 5 s")]:
        ax.axvline(x, color=color, lw=0.8, ls=":")
        ax.text(x * 1.03, 25, text, color=color, fontsize=8, rotation=90)
    ax.set_xscale("log")
    ax.set_xlabel("new sockets per second (log)")
    ax.set_ylabel("connect() calls failing (%)")
    ax.set_ylim(-2, 70)
    ax.set_title("Port exhaustion: TCP's limit is per destination, connected UDP's per host")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    save(fig, "udp_vs_tcp.png")


if __name__ == "__main__":
    main()
