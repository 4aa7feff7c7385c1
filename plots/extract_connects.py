#!/usr/bin/env python3
"""Extracts the connect() call records of a portsim JSON Lines trace into a small CSV.

usage: extract_connects.py TRACE.jsonl OUT.csv

Columns (kept few: the CSV is committed): n (connect number, 0-based), ret (0 / -1), port
(chosen local port, 0 on failure), pass (1 = first parity pass, 2 = second, 0 = none found),
ki (the kernel's `i` in that pass), examined (candidates over both passes, the chosen one
included), perturb_inc (what table_perturb[index] was advanced by).

Note: in a call record "call" is the timeline index and "i" the kernel's loop counter.
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
        w.writerow(["n", "ret", "port", "pass", "ki", "examined", "perturb_inc"])
        for line in f:
            if '"op":"connect"' not in line or '"ev":"call"' not in line:
                continue
            r = json.loads(line)
            local = r.get("local", "0.0.0.0:0")
            port = int(local.rsplit(":", 1)[1]) if r.get("ret") == 0 else 0
            w.writerow([n, r.get("ret"), port, r.get("pass", ""), r.get("i", ""),
                        r.get("examined", ""), r.get("perturb_inc", "")])
            n += 1
    os.replace(tmp, dst)
    print(f"{dst}: {n} connect() records")


if __name__ == "__main__":
    main()
