import sys, socket, time, errno, json
sys.path.insert(0, '/work/main/tools/probes')
import nsprobe as N
if sys.argv[1:2] != ['--child']:
    print(json.dumps(N.spawn_in_netns(__file__, ['x'], timeout=120))); sys.exit()
N.require_private_netns()
out = {'somaxconn': N.sysctl_get('net.core.somaxconn')}
l = socket.socket(); l.bind(('127.0.0.1', 5000)); l.listen(10000)
cs = []
for i in range(4200):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(('127.0.0.1', 5000))
    except BlockingIOError: pass
    cs.append(s)
time.sleep(0.5)
st = N.tcp_states()
out['client_established'] = sum(1 for a, b, c in st if b.endswith(':5000') and c == '01')
out['client_syn_sent'] = sum(1 for a, b, c in st if b.endswith(':5000') and c == '02')
print(json.dumps(out))
