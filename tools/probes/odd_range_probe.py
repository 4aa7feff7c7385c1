#!/usr/bin/env python3
# Range 40000-40010 (11 ports, odd): how many connects succeed toward one destination before
# EADDRNOTAVAIL? Run in a fresh namespace per run, each run with its own destination port so
# runs do not share table_perturb state:
#   for i in $(seq 1 2000); do unshare -n sh -c "ip link set lo up; echo 40000 40010 >
#     /proc/sys/net/ipv4/ip_local_port_range; python3 odd_range_probe.py $((10000+i))"; done | sort | uniq -c
import socket, json
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,1); import sys; P=int(sys.argv[1]); l.bind(("127.0.0.1",P)); l.listen(64)
ok=0; socks=[]
for i in range(12):
    s=socket.socket()
    try: s.connect(("127.0.0.1",P)); ok+=1; socks.append(s)
    except OSError: pass
print(ok)
