#!/usr/bin/env python3
# The ISN clock of secure_tcp_seq (net/core/secure_seq.c seq_scale: + ktime_get_real_ns() >> 6):
# four SYNs on the same 4-tuple (127.0.0.1:45000 -> 127.0.0.1:5000, closed by RST so no
# TIME_WAIT), their ISNs read back with tcpdump. The ISN difference over the CLOCK_REALTIME
# difference / 64 ns is 1.0000. Run: unshare -n /usr/bin/python3 tools/probes/isn_probe.py
# Result on 6.18.44 (2026-11-30): dseq 3914399 / 7948630 / 11726157 for dt/64 3914437 /
# 7948619 / 11726194 (ratios 0.99999, 1.00000, 1.00000; the residue is the connect() latency).
import socket, struct, subprocess, time, os
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
cap = subprocess.Popen(["tcpdump", "-i", "lo", "-nn", "-S", "-l", "-w", "/tmp/isn-cap.pcap", "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0"], stderr=subprocess.DEVNULL)
time.sleep(1.0)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(("127.0.0.1", 5000)); srv.listen(16)
times = []
for i in range(4):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.bind(("127.0.0.1", 45000))
    t = time.clock_gettime_ns(time.CLOCK_REALTIME); c.connect(("127.0.0.1", 5000)); times.append(t)
    a, _ = srv.accept(); a.close(); c.close()
    time.sleep(0.25 * (i + 1))
time.sleep(0.5); cap.terminate(); cap.wait()
out = subprocess.run(["tcpdump", "-nn", "-S", "-r", "/tmp/isn-cap.pcap"], capture_output=True, text=True).stdout
seqs = [int(l.split(" seq ")[1].split(",")[0]) for l in out.splitlines() if "seq" in l]
print(out)
for i in range(1, len(seqs)):
    dt = times[i] - times[i - 1]
    print(f"dt {dt} ns  dseq {(seqs[i]-seqs[i-1]) % 2**32}  dt/64 {dt/64:.0f}  ratio {((seqs[i]-seqs[i-1]) % 2**32)/(dt/64):.5f}")
