#!/usr/bin/python3
"""--perfetto: the Chrome trace-event JSON is well formed and says what the trace says.

usage: check_perfetto.py PORTSIM OUTDIR SCENARIO

Structure (the JSON Object Format of the Trace Event Format, which ui.perfetto.dev and
chrome://tracing load): {"traceEvents": [...]}; every event has ph, pid, tid, ts (µs, a
number ≥ 0) except metadata; "X" slices have dur ≥ 0 and do not overlap on one track; "i"
instants have s in t/p/g; "C" counters have numeric args; "M" names every pid and tid used.
Content, checked against the JSONL trace of the same run: one "X" slice per state record
that enters a state other than CLOSE, with that state's name; one instant per call record
(errors in category "error" with the errno in the name); per host the last counter values
equal the ESTABLISHED sockets and bind buckets at the end (from the trace's state
and bhash records).
"""
import collections, json, os, subprocess, sys

portsim, outdir, sc = sys.argv[1:4]
os.makedirs(outdir, exist_ok=True)
name = os.path.splitext(os.path.basename(sc))[0]
trace, pf = os.path.join(outdir, name + ".jsonl"), os.path.join(outdir, name + ".perfetto.json")
subprocess.run([portsim, "run", "-q", sc, "--trace", trace, "--perfetto", pf], check=True)
doc = json.load(open(pf))
ev = doc["traceEvents"]
errors = []


def err(msg):
    errors.append(msg)


named_pid, named_tid, used = set(), set(), set()
slices = collections.defaultdict(list)
for e in ev:
    ph = e.get("ph")
    if ph not in ("X", "i", "C", "M"):
        err(f"unexpected ph {e}")
        continue
    if not isinstance(e.get("pid"), int) or not isinstance(e.get("tid"), int):
        err(f"pid/tid not integers: {e}")
    if ph == "M":
        if e["name"] == "process_name":
            named_pid.add(e["pid"])
        elif e["name"] == "thread_name":
            named_tid.add((e["pid"], e["tid"]))
        else:
            err(f"unknown metadata {e}")
        if not isinstance(e.get("args", {}).get("name"), str):
            err(f"metadata without a name: {e}")
        continue
    if not isinstance(e.get("ts"), (int, float)) or e["ts"] < 0:
        err(f"bad ts: {e}")
    used.add((e["pid"], e["tid"]))
    if ph == "X":
        if not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
            err(f"bad dur: {e}")
        slices[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"], e["name"]))
    elif ph == "i":
        if e.get("s") not in ("t", "p", "g"):
            err(f"instant scope: {e}")
    elif ph == "C":
        if not e.get("args") or not all(isinstance(v, (int, float)) for v in e["args"].values()):
            err(f"counter args: {e}")
for key, sl in slices.items():
    sl.sort()
    for a, b in zip(sl, sl[1:]):
        if b[0] < a[1] - 1e-9:
            err(f"overlapping slices on {key}: {a} {b}")
for pid, tid in used:
    if pid not in named_pid:
        err(f"pid {pid} has no process_name")
    if tid and (pid, tid) not in named_tid:
        err(f"tid {pid}/{tid} has no thread_name")

# Against the JSONL trace.
recs = [json.loads(l) for l in open(trace)]
hosts = {}
want_states = collections.Counter()
want_calls, want_errors = 0, 0
est, tw, ports = collections.Counter(), collections.Counter(), collections.Counter()
for r in recs:
    if r["ev"] == "state":
        if r["to"] != "CLOSE":
            want_states[r["to"]] += 1
        est[r["host"]] += (r["to"] == "ESTABLISHED") - (r["from"] == "ESTABLISHED")
    elif r["ev"] == "call":
        want_calls += 1
        want_errors += r.get("ret") == -1
    elif r["ev"] == "bhash" and r["op"] != "update":
        ports[r["host"]] += 1 if r["op"] == "create" else -1
got_states = collections.Counter()
for sl in slices.values():
    for _, _, n in sl:
        got_states[n] += 1
# The trace names an orphaned FIN_WAIT2 TW sock "FIN_WAIT2"; Perfetto "FIN_WAIT2 (TW sock)".
merged = collections.Counter({k.replace(" (TW sock)", ""): 0 for k in got_states})
for k, v in got_states.items():
    merged[k.replace(" (TW sock)", "")] += v
if merged != want_states:
    err(f"state slices {dict(merged)} != trace states {dict(want_states)}")
calls = [e for e in ev if e["ph"] == "i" and e.get("cat") in ("call", "error")]
if len(calls) != want_calls:
    err(f"{len(calls)} call instants, the trace has {want_calls} calls")
if sum(1 for e in calls if e["cat"] == "error") != want_errors:
    err("error instants differ from the trace's failed calls")
pname = {e["pid"]: e["args"]["name"].removeprefix("host ") for e in ev if e["ph"] == "M" and e["name"] == "process_name"}
last = {}
for e in ev:  # the latest sample of each counter (events are written in time order)
    if e["ph"] == "C":
        key = (pname[e["pid"]], e["name"])
        if key not in last or e["ts"] >= last[key][0]:
            last[key] = (e["ts"], e["args"])
for (h, n), (_, a) in last.items():
    if n == "sockets" and a["ESTABLISHED"] != est[h]:
        err(f"{h}: last ESTABLISHED counter {a['ESTABLISHED']} != {est[h]} from the trace")
    if n == "ports in use" and a["ports"] != ports[h]:
        err(f"{h}: last ports counter {a['ports']} != {ports[h]} from the trace")
if not last:
    err("no counters")
for e in errors[:20]:
    print(e)
print(f"{name}: {len(ev)} events, {sum(got_states.values())} state slices, {len(calls)} call instants; "
      f"{'OK' if not errors else str(len(errors)) + ' problems'}")
sys.exit(1 if errors else 0)
