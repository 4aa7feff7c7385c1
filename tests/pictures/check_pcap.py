#!/usr/bin/python3
"""--pcap read back by Debian's tcpdump and tshark, packet for packet against the JSONL trace.

usage: check_pcap.py PORTSIM OUTDIR SCENARIO...

For each scenario: `portsim run --trace T --pcap P`; then every `pkt` record of the trace that
left its host (all but "no route") must be one packet of the capture, in order, with the same
addresses, ports, flags, seq and ack and the virtual time as its timestamp; tcpdump must call
every TCP (and IPv4 header) checksum correct, and tshark must read the same packets with
valid checksums (tcp.checksum.status 1 = good). Expected values: the trace (same run).
"""
import json, os, subprocess, sys

FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "ACK": 0x10}
TCPDUMP_FLAGS = {"S": 0x02, "F": 0x01, "R": 0x04, ".": 0x10}


def split_ep(ep):
    host, _, port = ep.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    portsim, outdir, scenarios = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(outdir, exist_ok=True)
    fails = 0
    for sc in scenarios:
        name = os.path.splitext(os.path.basename(sc))[0]
        trace, pcap = os.path.join(outdir, name + ".jsonl"), os.path.join(outdir, name + ".pcap")
        subprocess.run([portsim, "run", "-q", sc, "--trace", trace, "--pcap", pcap], check=True)
        want = []
        for line in open(trace):
            r = json.loads(line)
            if r["ev"] == "pkt" and r.get("lost") != "no route":
                flags = sum(FLAG_BITS[f] for f in r["flags"].split("|"))
                want.append((r["t"], *split_ep(r["src"]), *split_ep(r["dst"]), flags, r["seq"], r["ack"]))
        # tcpdump: one line per packet with -tt (epoch seconds, nanoseconds) -nn -S -v.
        td = subprocess.run(["tcpdump", "--nano", "-tt", "-nn", "-S", "-v", "-r", pcap], capture_output=True, text=True)
        if td.returncode:
            print(f"{name}: tcpdump failed: {td.stderr}")
            fails += 1
            continue
        lines = td.stdout.replace("\n    ", " ").splitlines()
        got = []
        for l in lines:
            ts = l.split()[0]
            sec, nsec = ts.split(".")
            body = l.split(") ", 1)[1] if ") " in l else l
            src, dst = body.split(" > ")[0].split()[-1], body.split(" > ")[1].split(": ")[0]
            shost, sport = src.rsplit(".", 1)
            dhost, dport = dst.rsplit(".", 1)
            fl = l.split("Flags [")[1].split("]")[0]
            flags = sum(TCPDUMP_FLAGS[c] for c in fl)
            seq = int(l.split(" seq ")[1].split(",")[0].split(":")[0]) if " seq " in l else None
            ack = int(l.split(" ack ")[1].split(",")[0]) if " ack " in l else 0
            if l.count("(correct)") < 1 or "incorrect" in l:
                print(f"{name}: checksum not correct: {l}")
                fails += 1
            got.append((int(sec) * 10**9 + int(nsec), shost, int(sport), dhost, int(dport), flags, seq, ack))
        if len(got) != len(want):
            print(f"{name}: tcpdump read {len(got)} packets, the trace has {len(want)}")
            fails += 1
        for i, (g, w) in enumerate(zip(got, want)):
            # tcpdump omits seq on a pure ACK (no data): compare it only when printed.
            if g[6] is None:
                g = g[:6] + (w[6],) + g[7:]
            if (w[5] & 0x10) == 0:  # no ACK flag: the ack field is not printed
                g = g[:7] + (w[7],)
            if g != w:
                print(f"{name}: packet {i}: tcpdump {g} != trace {w}")
                fails += 1
                break
        # tshark: the same packets, with its own checksum verdict.
        ts = subprocess.run(["tshark", "-o", "tcp.check_checksum:TRUE", "-r", pcap, "-T", "fields", "-e", "tcp.seq_raw",
                             "-e", "tcp.ack_raw", "-e", "tcp.checksum.status", "-e", "tcp.flags"],
                            capture_output=True, text=True)
        if ts.returncode:
            print(f"{name}: tshark failed: {ts.stderr}")
            fails += 1
            continue
        rows = [r.split("\t") for r in ts.stdout.splitlines()]
        if len(rows) != len(want):
            print(f"{name}: tshark read {len(rows)} packets, the trace has {len(want)}")
            fails += 1
        for i, (r, w) in enumerate(zip(rows, want)):
            if int(r[0]) != w[6] or int(r[1]) != w[7] or r[2] != "1" or int(r[3], 16) != w[5]:
                print(f"{name}: packet {i}: tshark {r} vs trace seq {w[6]} ack {w[7]} flags {w[5]:#x}")
                fails += 1
                break
        print(f"{name}: {len(want)} packets agree (tcpdump, tshark)")
    sys.exit(1 if fails else 0)


main()
