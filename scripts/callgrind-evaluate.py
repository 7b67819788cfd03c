#!/usr/bin/env python3
"""Instructions a `POST /v1/evaluate` costs a leadgate build, counted by callgrind.

This machine's speed moves by 1.5-2x within minutes and it has no hardware counters, so
leads/s cannot tell two builds 2% apart; an instruction count can (it repeats to ~0.3%).
Starts `leadgate serve` under valgrind (SQLite in a temp file, shipped config, no workers),
sends 300 warm-up leads, then counts N leads (Zipf-drawn domains of the shipped firmographics
file, the same for every build), and prints user-space instructions per request. The kernel's
share (loopback TCP) is not counted.

    scripts/callgrind-evaluate.py target/release/leadgate [N=1000]

Needs valgrind (apt-get install valgrind). The profile is left in callgrind.evaluate.out:
    callgrind_annotate --inclusive=yes callgrind.evaluate.out | head -60
"""
import http.client, json, os, random, re, subprocess, sys, tempfile, time

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(repo, "target/release/leadgate")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
out = os.path.abspath("callgrind.evaluate.out")
port = 18282
domains = [l.split(",")[0] for l in open(os.path.join(repo, "config/firmographics.csv")).read().splitlines()[1:]][:200]
db = tempfile.mkdtemp()
env = dict(os.environ, LEADGATE__STORAGE__URL=f"sqlite://{db}/cg.db", LEADGATE__SERVER__WORKERS="0", RUST_LOG="error")
server = subprocess.Popen(
    ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
     binary, "serve", "--listen", f"127.0.0.1:{port}"],
    cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(600):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        break
    except OSError:
        time.sleep(0.2)
rng = random.Random(7)


def send(count):
    for i in range(count):
        d = domains[int(rng.paretovariate(1.1)) % len(domains)]
        body = json.dumps({"email": f"person{i}@{d}", "title": "VP Sales", "source": "webform"})
        conn.request("POST", "/v1/evaluate", body=body, headers={"content-type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status >= 300:
            sys.exit(f"evaluate answered {r.status}")


send(300)
subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
send(n)
subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
server.terminate()
server.wait()
total = re.search(r"^totals: (\d+)", open(out).read(), re.M)
print(f"{int(total.group(1)) / n / 1000:.1f}k instructions per evaluate ({n} requests, {binary})")
