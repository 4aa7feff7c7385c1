#!/usr/bin/env python3
"""Extracts the connect() call records of a portsim JSON Lines trace into a small CSV.

usage: extract_connects.py TRACE.jsonl OUT.csv

Columns: n (connect number, 0-based), t_s (virtual time), ret, errno, port (chosen local port,
0 on failure), timeseed, pass (1 = even pass, 2 = odd pass, 0 = none found), ki (the kernel's
`i` in that pass), examined (candidates over both passes, the chosen one included),
perturb_inc (what table_perturb[index] was advanced by).

Note: a call record carries the key "i" twice, first the timeline index, then (for connect()
autobind) the kernel's loop counter `i`. json.loads keeps the last one, which is the kernel's.
"""
import csv
import json
import os
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    src, dst = sys.argv[1], sys.argv[2]
    tmp = dst + ".tmp"
    n = 0
    with open(src) as f, open(tmp, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["n", "t_s", "ret", "errno", "port", "timeseed", "pass", "ki", "examined",
                    "perturb_inc"])
        for line in f:
            if '"op":"connect"' not in line or '"ev":"call"' not in line:
                continue
            r = json.loads(line)
            local = r.get("local", "0.0.0.0:0")
            port = int(local.rsplit(":", 1)[1]) if r.get("ret") == 0 else 0
            w.writerow([n, f"{r['t'] / 1e9:.6f}", r.get("ret"), r.get("errno", ""), port,
                        r.get("timeseed", ""), r.get("pass", ""), r.get("i", ""),
                        r.get("examined", ""), r.get("perturb_inc", "")])
            n += 1
    os.replace(tmp, dst)
    print(f"{dst}: {n} connect() records")


if __name__ == "__main__":
    main()
