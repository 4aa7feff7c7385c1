#!/usr/bin/env python3
"""Which writes does the live kernel accept, per sysctl portsim models?

Each value is written in its own throw-away network namespace (unshare -n, so every write
starts from the defaults), with one write(2) the way `echo V > /proc/sys/...` writes, and the
answer (ok / errno name) plus what reads back afterwards are recorded as JSON on stdout
(tests/live/sysctl_writes.json). Needs root; never touches the host namespace's sysctls.
"""
import json, os, subprocess, sys

NAMES = ["net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports",
         "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_autobind_reuse",
         "net.ipv4.ip_nonlocal_bind", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_tw_reuse_delay",
         "net.ipv4.tcp_timestamps", "net.ipv4.tcp_syn_retries", "net.ipv4.tcp_syn_linear_timeouts",
         "net.ipv4.tcp_synack_retries", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_max_tw_buckets",
         "net.ipv4.tcp_rto_max_ms", "net.core.somaxconn"]
VALUES = ["-2147483649", "-2147483648", "-1", "0", "1", "2", "3", "4", "127", "128", "255", "256",
          "999", "1000", "1023", "1024", "60000", "60001", "65535", "65536", "120000", "120001",
          "2147483", "2147484", "8589934", "8589935", "2147483647", "2147483648", "4294967295",
          "4294967296", "abc", "1 2", "1024 1024", "1024 1023", "1023 2000", "40000 40009", "0 0",
          "1 65535", "65536 65536", "1,2-5", ""]
CHILD = r'''
import errno, json, os, sys
path, value = sys.argv[1], sys.argv[2]
rd = lambda: open(path).read().strip().replace("\t", " ")
before = rd()
fd = os.open(path, os.O_WRONLY)
try:
    os.write(fd, value.encode())
    r = "ok"
except OSError as e:
    r = errno.errorcode.get(e.errno, str(e.errno))
finally:
    os.close(fd)
print(json.dumps({"value": value, "result": r, "default": before, "reads_back": rd()}))
'''

def main():
    out = {"kernel": os.uname().release,
           "method": "one write(2) per value, each in a fresh `unshare -n` namespace",
           "sysctls": {}}
    for n in NAMES:
        path = "/proc/sys/" + n.replace(".", "/")
        rows = []
        for v in VALUES:
            p = subprocess.run(["unshare", "-n", sys.executable, "-c", CHILD, path, v],
                               capture_output=True, text=True)
            rows.append(json.loads(p.stdout) if p.returncode == 0 else {"value": v, "probe_error": p.stderr.strip()})
        out["sysctls"][n] = rows
    json.dump(out, sys.stdout, indent=1)
    print()

if __name__ == "__main__":
    main()
