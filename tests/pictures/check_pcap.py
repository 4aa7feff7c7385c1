#!/usr/bin/python3
"""--pcap read back by Debian's tcpdump and tshark, packet for packet against the JSONL trace.

usage: check_pcap.py PORTSIM OUTDIR SCENARIO...

For each scenario: `portsim run --trace T --pcap P`; then every `pkt` record of the trace that
left its host (all but "no route") must be one packet of the capture, in order, with the same
addresses, ports and virtual time as its timestamp, and:
  * TCP: the same flags, seq and ack;
  * UDP ("flags": "UDP"): a datagram with the record's ports;
  * ICMP ("flags": "ICMP_PORT_UNREACH", the record's ports are the offending datagram's reversed):
    ICMP type 3 code 3 (IPv4) or ICMPv6 type 1 code 4 (IPv6) from src to dst, quoting a UDP
    datagram from dst:dport to src:sport.
tcpdump -vv must call every TCP and UDP checksum correct ("(correct)", "[udp sum ok]",
"[icmp6 sum ok]", never "incorrect"/"bad"/"wrong"), and tshark, told to check IPv4, TCP and UDP
checksums, must read the same packets with good checksums (status 1) for IPv4, TCP, UDP, ICMP
and ICMPv6, the datagram quoted in an ICMP error included. Expected values: the trace (same run).

The IP header fields of UDP datagrams and ICMP errors (TOS / traffic class, TTL / hop limit, DF,
lengths, ICMP type and code, the quoted packet's length) must equal LIVE below: what Linux
6.18.44 put on the wire on this machine (2026-11-30, `unshare -n`, lo up, `tcpdump -i lo`, one
empty UDP datagram to a closed port on 127.0.0.1 and on ::1 from python3). When this test runs
as root where `unshare -n` works, it makes that capture again and checks LIVE against it too.
Not compared (README "Pictures" names them): the IPv4 ID and the IPv6 flow label (portsim
writes 0), and live UDP checksums (loopback leaves them partial, CHECKSUM_PARTIAL).
"""
import json, os, re, shutil, subprocess, sys, time

FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "ACK": 0x10}
TCPDUMP_FLAGS = {"S": 0x02, "F": 0x01, "R": 0x04, ".": 0x10}

# The live capture (see above): tshark's fields per packet kind. An ICMP error has two values
# per IP field: its own header, then the quoted datagram's.
#   udp4  (tos 0x0, ttl 64, flags [DF], length 28)
#   icmp4 (tos 0xc0, ttl 64, flags [none], length 56), type 3 code 3, quoting the datagram's
#         28 bytes: IP header + UDP header (net/ipv4/icmp.c __icmp_send)
#   udp6  (hlim 64, next-header UDP (17) payload length: 8)
#   icmp6 (hlim 64, next-header ICMPv6 (58) payload length: 56), type 1 code 4, quoting the
#         datagram's 48 bytes (net/ipv6/icmp.c icmp6_send)
LIVE = {
    "udp4": {"ip.dsfield": "0x00", "ip.ttl": "64", "ip.flags.df": "1", "ip.len": "28", "ip.proto": "17", "udp.length": "8"},
    "icmp4": {"ip.dsfield": "0xc0,0x00", "ip.ttl": "64,64", "ip.flags.df": "0,1", "ip.len": "56,28", "ip.proto": "1,17",
              "icmp.type": "3", "icmp.code": "3", "udp.length": "8"},
    "udp6": {"ipv6.tclass": "0x00000000", "ipv6.hlim": "64", "ipv6.plen": "8", "ipv6.nxt": "17", "udp.length": "8"},
    "icmp6": {"ipv6.tclass": "0x00000000,0x00000000", "ipv6.hlim": "64,64", "ipv6.plen": "56,8", "ipv6.nxt": "58,17",
              "icmpv6.type": "1", "icmpv6.code": "4", "udp.length": "8"},
}
FIELDS = sorted({f for kind in LIVE.values() for f in kind} | {
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.checksum.status", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags",
    "tcp.checksum.status", "udp.srcport", "udp.dstport", "udp.checksum.status", "icmp.checksum.status",
    "icmpv6.checksum.status"})


def split_ep(ep):
    host, _, port = ep.rpartition(":")
    return host.strip("[]"), int(port)


def tshark_rows(pcap):
    """One dict per packet: tshark's value of every field in FIELDS ("" when absent)."""
    cmd = ["tshark", "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
           "-r", pcap, "-T", "fields"]
    for f in FIELDS:
        cmd += ["-e", f]
    ts = subprocess.run(cmd, capture_output=True, text=True)
    if ts.returncode:
        raise RuntimeError(f"tshark failed on {pcap}: {ts.stderr}")
    return [dict(zip(FIELDS, line.split("\t"))) for line in ts.stdout.splitlines()]


def kind_of(row):
    v6 = row["ipv6.nxt"] != ""
    if row["icmp.type"] or row["icmpv6.type"]:
        return "icmp6" if v6 else "icmp4"
    if row["udp.srcport"]:
        return "udp6" if v6 else "udp4"
    return "tcp"


def header_mismatch(row, kind, ref="live"):
    """The LIVE fields of `kind` that `row` has differently, as text ("" when all agree)."""
    return ", ".join(f"{f} {row[f]!r} ({ref} {v!r})" for f, v in LIVE[kind].items() if row[f] != v)


def live_capture(outdir):
    """LIVE again from the running kernel: rows by kind, or None and why not."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return None, "not root, or no unshare/ip"
    pcap = os.path.join(outdir, "live-udp-icmp.pcap")
    if os.path.exists(pcap):
        os.remove(pcap)
    send = ("import socket, time\n"
            "for fam, addr in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):\n"
            "    socket.socket(fam, socket.SOCK_DGRAM).sendto(b'', (addr, 5999)); time.sleep(0.2)\n")
    script = (f"ip link set lo up || exit 3\n"
              f"tcpdump --immediate-mode -i lo -U -w {pcap} 'udp port 5999 or icmp[0] = 3 or (icmp6 and ip6[40] = 1)' 2>/dev/null & p=$!\n"
              f"for i in $(seq 50); do [ -s {pcap} ] && break; sleep 0.1; done\n"
              f"sleep 0.5; python3 -c \"{send}\"; sleep 0.5; kill $p; wait $p\n")
    r = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True)
    if r.returncode == 3 or not os.path.exists(pcap):
        return None, f"unshare -n / ip link failed: {r.stderr.strip()}"
    got = {}
    for row in tshark_rows(pcap):
        got.setdefault(kind_of(row), row)
    return got, ""


def check_live(outdir):
    got, why = live_capture(outdir)
    if got is None:
        print(f"live capture skipped ({why}): the recorded LIVE fields are the reference")
        return 0
    fails = 0
    for kind in LIVE:
        if kind not in got:
            print(f"live capture: no {kind} packet")
            fails += 1
        elif header_mismatch(got[kind], kind):
            print(f"live capture: {kind}: the kernel wrote {header_mismatch(got[kind], kind, 'LIVE says')}")
            fails += 1
    if not fails:
        print("live capture: the kernel's UDP and ICMP headers agree with LIVE")
    return fails


def tcpdump_packets(pcap):
    """tcpdump -vv's text of each packet, continuation lines joined."""
    td = subprocess.run(["tcpdump", "--nano", "-tt", "-nn", "-S", "-vv", "-r", pcap], capture_output=True, text=True)
    if td.returncode:
        raise RuntimeError(f"tcpdump failed: {td.stderr}")
    packets = []
    for line in td.stdout.splitlines():
        if line[:1].isdigit():
            packets.append(line)
        else:
            packets[-1] += " " + line.strip()
    return packets


HEADER = r"IP6? \((?:[^()]|\([^()]*\))*\) "  # "IP (tos …, proto UDP (17), length 28) "


def parse_tcpdump(p, want):
    """(tuple as in want, problem or "") for one tcpdump packet text."""
    sec, nsec = p.split()[0].split(".")
    t = int(sec) * 10**9 + int(nsec)
    m = re.search(HEADER + r"(\S+) > (\S+?): (.*)$", p)
    if not m:
        return None, f"unreadable: {p}"
    src, dst, rest = m.groups()
    bad = any(w in p for w in ("incorrect", "bad ", "wrong"))
    if "ICMP6, " in rest:
        q = re.search(r"unreachable port, (\S+) udp port (\d+)", rest)
        if not q or "[icmp6 sum ok]" not in p or bad:
            return None, f"ICMPv6 port unreachable with a good checksum expected: {p}"
        # tcpdump does not print the quoted IPv6 datagram's source port: tshark checks it.
        return (t, "ICMP", src, int(q.group(2)), dst, want[5], 0, 0, 0), "" if q.group(1) == src else f"quotes {q.group(1)}: {p}"
    if rest.startswith("ICMP"):
        q = re.search(r"ICMP (\S+) udp port (\d+) unreachable.*" + HEADER + r"(\S+)\.(\d+) > (\S+)\.(\d+): \[udp sum ok\]", rest)
        if not q or bad:
            return None, f"ICMP port unreachable quoting a datagram with a good checksum expected: {p}"
        qs, qsport, qd, qdport = q.group(3), int(q.group(4)), q.group(5), int(q.group(6))
        if (q.group(1), int(q.group(2))) != (qd, qdport) or (qd, qs) != (src, dst):
            return None, f"the quoted datagram does not match the error's addresses: {p}"
        return (t, "ICMP", src, qdport, dst, qsport, 0, 0, 0), ""
    shost, sport = src.rsplit(".", 1)
    dhost, dport = dst.rsplit(".", 1)
    if "Flags [" not in rest:
        if "[udp sum ok]" not in rest or bad:
            return None, f"UDP checksum not correct: {p}"
        return (t, "UDP", shost, int(sport), dhost, int(dport), 0, 0, 0), ""
    if "(correct)" not in rest or bad:
        return None, f"TCP checksum not correct: {p}"
    fl = rest.split("Flags [")[1].split("]")[0]
    flags = sum(TCPDUMP_FLAGS[c] for c in fl)
    # tcpdump omits seq on a pure ACK (no data), and ack without the ACK flag.
    seq = int(rest.split(" seq ")[1].split(",")[0].split(":")[0]) if " seq " in rest else want[7]
    ack = int(rest.split(" ack ")[1].split(",")[0]) if " ack " in rest else want[8]
    return (t, "TCP", shost, int(sport), dhost, int(dport), flags, seq, ack), ""


def check_tshark_row(r, w):
    """What is wrong with tshark's row `r` for the trace's packet `w` ("" when nothing)."""
    kind = kind_of(r)
    src, dst = (r["ip.src"] or r["ipv6.src"]).split(","), (r["ip.dst"] or r["ipv6.dst"]).split(",")
    if (src[0], dst[0]) != (w[2], w[4]):
        return f"addresses {src[0]} > {dst[0]}"
    if any(s != "1" for s in r["ip.checksum.status"].split(",") if r["ip.src"]):
        return f"IPv4 header checksum status {r['ip.checksum.status']}"
    if w[1] == "TCP":
        if kind != "tcp" or r["tcp.checksum.status"] != "1":
            return f"not a TCP segment with a good checksum ({kind}, {r['tcp.checksum.status']})"
        if (int(r["tcp.seq_raw"]), int(r["tcp.ack_raw"]), int(r["tcp.flags"], 16)) != (w[7], w[8], w[6]):
            return f"seq {r['tcp.seq_raw']} ack {r['tcp.ack_raw']} flags {r['tcp.flags']}"
        return ""
    want_kind = ("icmp" if w[1] == "ICMP" else "udp") + ("4" if "." in w[2] else "6")
    if kind != want_kind:
        return f"a {kind} packet, not {want_kind}"
    if r["udp.checksum.status"] != "1":
        return f"UDP checksum status {r['udp.checksum.status']!r}"
    if kind == "icmp4" and r["icmp.checksum.status"] != "1" or kind == "icmp6" and r["icmpv6.checksum.status"] != "1":
        return f"ICMP checksum status {r['icmp.checksum.status'] or r['icmpv6.checksum.status']!r}"
    # A datagram carries the record's ports; an error quotes the datagram (ports reversed).
    ports = (w[3], w[5]) if w[1] == "UDP" else (w[5], w[3])
    if (int(r["udp.srcport"]), int(r["udp.dstport"])) != ports:
        return f"UDP ports {r['udp.srcport']} > {r['udp.dstport']}, expected {ports[0]} > {ports[1]}"
    if w[1] == "ICMP" and (src[1], dst[1]) != (w[4], w[2]):
        return f"quotes a datagram {src[1]} > {dst[1]}"
    return header_mismatch(r, kind)


def check_scenario(portsim, outdir, sc):
    name = os.path.splitext(os.path.basename(sc))[0]
    trace, pcap = os.path.join(outdir, name + ".jsonl"), os.path.join(outdir, name + ".pcap")
    subprocess.run([portsim, "run", "-q", sc, "--trace", trace, "--pcap", pcap], check=True)
    want, kinds = [], {}
    for line in open(trace):
        r = json.loads(line)
        if r["ev"] == "pkt" and r.get("lost") != "no route":
            kind = r["flags"] if r["flags"] in ("UDP", "ICMP_PORT_UNREACH") else "TCP"
            kind = "ICMP" if kind == "ICMP_PORT_UNREACH" else kind
            flags = sum(FLAG_BITS[f] for f in r["flags"].split("|")) if kind == "TCP" else 0
            want.append((r["t"], kind, *split_ep(r["src"]), *split_ep(r["dst"]), flags, r.get("seq", 0), r.get("ack", 0)))
            kinds[kind] = kinds.get(kind, 0) + 1
    fails = 0
    got = tcpdump_packets(pcap)
    if len(got) != len(want):
        print(f"{name}: tcpdump read {len(got)} packets, the trace has {len(want)}")
        fails += 1
    for i, (p, w) in enumerate(zip(got, want)):
        g, problem = parse_tcpdump(p, w)
        if problem or g != w:
            print(f"{name}: packet {i}: {problem or f'tcpdump {g} != trace {w}'}")
            fails += 1
            break
    rows = tshark_rows(pcap)
    if len(rows) != len(want):
        print(f"{name}: tshark read {len(rows)} packets, the trace has {len(want)}")
        fails += 1
    for i, (r, w) in enumerate(zip(rows, want)):
        problem = check_tshark_row(r, w)
        if problem:
            print(f"{name}: packet {i} (trace {w}): tshark: {problem}")
            fails += 1
            break
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{name}: {len(want)} packets ({summary}) agree (tcpdump, tshark)" if not fails else f"{name}: FAILED")
    return fails


def main():
    portsim, outdir, scenarios = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(outdir, exist_ok=True)
    fails = check_live(outdir)
    for sc in scenarios:
        fails += check_scenario(portsim, outdir, sc)
    sys.exit(1 if fails else 0)


main()
