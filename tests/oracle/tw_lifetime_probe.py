#!/usr/bin/env python3
"""How long does a TIME_WAIT socket live on the live kernel?  (evidence for tests/oracle/RESULTS.md)

In a fresh netns (unshare -n; the nsprobe guard refuses anything else): listener 127.0.0.1:8080,
client connects, the server closes the accepted socket first, then the client closes, so the
server side holds 127.0.0.1:8080 in TIME_WAIT (as in scenarios/seed-restarted-server.json).
Then every 10 ms: is a TIME_WAIT on :8080 still listed in /proc/net/tcp, and does a plain
bind(0.0.0.0:8080) succeed?  Bounded at 70 s.  Prints one JSON line.

Run:  unshare -n python3 tests/oracle/tw_lifetime_probe.py --child
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tools', 'probes'))
import nsprobe as N  # noqa: E402

if sys.argv[1:] != ['--child']:
    sys.exit(__doc__)
N.require_private_netns()
P = 8080
lst = socket.socket()
lst.bind(('0.0.0.0', P))
lst.listen(8)
c = socket.socket()
c.connect(('127.0.0.1', P))
a, _ = lst.accept()
a.close()
time.sleep(0.01)
c.close()
t0 = time.monotonic()
lst.close()
gone_tw = gone_bind = None
for _ in range(7000):
    el = time.monotonic() - t0
    if gone_tw is None and not any(st == '06' for _l, _r, st in N.tcp_states(P)):
        gone_tw = el
    if gone_bind is None:
        s = socket.socket()
        try:
            s.bind(('0.0.0.0', P))
            gone_bind = el
        except OSError:
            pass
        s.close()
    if gone_tw is not None and gone_bind is not None:
        break
    time.sleep(0.01)
print(json.dumps({'kernel': os.uname().release, 'tw_gone_after_s': gone_tw,
                  'plain_bind_ok_after_s': gone_bind}))
