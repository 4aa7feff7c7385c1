#!/usr/bin/env python3
"""Live probe (run as root): unshare -n python3 tools/probes/tw_refusals_ss.py {fw2|nots|ts}
One-port range 40000-40000, loopback, tcp_tw_reuse=1: a connect, the client closes (fw2: the
server does not; nots: tcp_timestamps=0), `ss -tan` 0.25 s later, a second connect at 1.5 s.
Output recorded in tests/live/ss_tan.txt; used by tests/explain/tw-refusals.json and the ss tests."""
# Live: TIME_WAIT reuse refusals (FIN_WAIT2 substate, no timestamps) in a fresh netns.
import socket, subprocess, sys, time, errno
def sysctl(k, v): open('/proc/sys/' + k.replace('.', '/'), 'w').write(str(v))
subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
sysctl('net.ipv4.ip_local_port_range', '40000 40000')
sysctl('net.ipv4.tcp_tw_reuse', 1)
case = sys.argv[1]
if case == 'nots': sysctl('net.ipv4.tcp_timestamps', 0)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 5000)); srv.listen(8)  # backlog 8: ss shows it as LISTEN Send-Q
c = socket.socket(); c.connect(('127.0.0.1', 5000)); a, _ = srv.accept()
print('first port', c.getsockname()[1])
c.close()
if case != 'fw2': time.sleep(0.05); a.close()
time.sleep(0.2)
print(subprocess.run(['ss', '-tan'], capture_output=True, text=True).stdout)
if case == 'nots':
    print(subprocess.run(['ss', '-tan', 'state', 'time-wait'], capture_output=True, text=True).stdout)
    print(subprocess.run(['ss', '-s'], capture_output=True, text=True).stdout)
time.sleep(1.3)
d = socket.socket()
try:
    d.connect(('127.0.0.1', 5000)); print(case, 'after 1.5 s: OK port', d.getsockname()[1])
except OSError as e:
    print(case, 'after 1.5 s:', errno.errorcode[e.errno])
