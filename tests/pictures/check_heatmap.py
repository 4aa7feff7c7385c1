#!/usr/bin/python3
"""`portsim heatmap` in headless Chromium (Debian's `chromium`).

usage: check_heatmap.py PORTSIM OUTDIR

Scenario tests/pictures/ten-ports-time-wait.json: range 40000-40009, ten connects to an external
server at 0 s, closed at once; the server closes on our FIN, so every port is in TIME_WAIT from
0 s for 60-62 s (TCP_TIMEWAIT_LEN = 60 s, include/net/tcp.h; 60-62 s because the timer runs at
its timer-wheel tick, as measured on the live kernel, README "Kernel oracle"). A last connect at
120 s ends the run. With 12 columns of 10 s, each port row has 6 TIME_WAIT cells ([0, 60) s)
and 6 free ones ([60, 70) holds at most 2 s of TIME_WAIT): 60 TIME_WAIT and 60 free cells.

The page is opened in headless Chromium: no console message at all (errors and exceptions
are logged as INFO:CONSOLE), and the counts the page wrote into the DOM after drawing — cells
drawn, and cells whose centre pixel has the state's colour, read back from the canvas — must
be 60 TIME_WAIT and 60 free. A screenshot is kept in OUTDIR. Toward another destination
(--dest) the same ports are free: 0 TIME_WAIT cells.
"""
import json, os, re, subprocess, sys, tempfile

portsim, outdir = sys.argv[1], sys.argv[2]
os.makedirs(outdir, exist_ok=True)
sc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ten-ports-time-wait.json")
html, png = os.path.join(outdir, "ports.html"), os.path.join(outdir, "ports.png")
errors = []
r = subprocess.run([portsim, "heatmap", sc, "-o", html, "--png", png, "--columns", "12"], capture_output=True, text=True)
print(r.stdout.strip())
if r.returncode:
    sys.exit(f"portsim heatmap failed: {r.stderr}")
if "TIME_WAIT 60" not in r.stdout:
    errors.append("portsim heatmap did not report 60 TIME_WAIT cells")
with open(png, "rb") as f:
    if f.read(8) != b"\x89PNG\r\n\x1a\n":
        errors.append(f"{png} is not a PNG")
other = subprocess.run([portsim, "heatmap", sc, "-o", os.path.join(outdir, "other.html"), "--columns", "12",
                        "--dest", "10.0.0.8:80"], capture_output=True, text=True)
if other.returncode or "TIME_WAIT" in other.stdout:
    errors.append(f"--dest 10.0.0.8:80 should show no TIME_WAIT: {other.stdout} {other.stderr}")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(*extra):
    with tempfile.TemporaryDirectory() as prof:
        return subprocess.run(["chromium", *FLAGS, f"--user-data-dir={prof}", *extra], capture_output=True, text=True,
                              timeout=120)


url = "file://" + os.path.abspath(html)
c = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url)
console = [l for l in c.stderr.splitlines() if ":CONSOLE" in l]
if console:
    errors.append("console messages: " + " | ".join(console))
m = re.search(r'<pre id="drawn">([^<]*)</pre>', c.stdout)
if not m or not m.group(1):
    errors.append("the page did not write what it drew (script failed?)")
else:
    drawn = json.loads(m.group(1))
    print("drawn:", drawn)
    for kind in ("cells", "pixels"):
        if drawn[kind]["TIME_WAIT"] != 60 or drawn[kind]["free"] != 60:
            errors.append(f"{kind}: expected 60 TIME_WAIT and 60 free, got {drawn[kind]}")
shot = os.path.join(outdir, "ports-screenshot.png")
chromium("--hide-scrollbars", "--window-size=1100,360", f"--screenshot={shot}", url)
if not os.path.exists(shot) or os.path.getsize(shot) < 1000:
    errors.append("no screenshot")
else:
    print("screenshot:", shot)
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
