#!/usr/bin/env python3
"""Instructions a `POST /v1/evaluate` costs a leadgate build, counted by callgrind.

This machine's speed moves by 1.5-2x within minutes and it has no hardware counters, so
leads/s cannot tell two builds 2% apart; an instruction count can (it repeats to ~0.3%).
Starts `leadgate serve` under valgrind (SQLite in a temp file, shipped config, no workers),
sends 300 warm-up leads, then counts N leads (Zipf-drawn domains of the shipped firmographics
file, the same for every build), and prints user-space instructions per request. The kernel's
share (loopback TCP) is not counted.

    scripts/callgrind-evaluate.py target/release/leadgate [N=1000] [--intake] [--config FILE]

--config serves from another leadgate.toml (e.g. scripts/bench-gbm-config.sh's, a gbm model
blended in) instead of the shipped config/leadgate.toml.

With --intake it counts `POST /v1/leads` instead, from 32 client threads (each its own
connection, every lead a new person) so the intake writer commits batches as under load; the
profile goes to callgrind.intake.out, and the writer's share is
`leadgate::store::sqlite::group_commit::write` in it.

Needs valgrind (apt-get install valgrind). The profile is left in callgrind.evaluate.out:
    callgrind_annotate --inclusive=yes callgrind.evaluate.out | head -60
"""
import http.client, itertools, json, os, random, re, subprocess, sys, tempfile, threading, time

intake = "--intake" in sys.argv
args = [a for a in sys.argv[1:] if a != "--intake"]
config = []
if "--config" in args:
    at = args.index("--config")
    config = ["--config", os.path.abspath(args[at + 1])]
    del args[at:at + 2]
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.abspath(args[0]) if args else os.path.join(repo, "target/release/leadgate")
n = int(args[1]) if len(args) > 1 else 1000
route, what = ("/v1/leads", "intake") if intake else ("/v1/evaluate", "evaluate")
out = os.path.abspath(f"callgrind.{what}.out")
port = 18282
domains = [l.split(",")[0] for l in open(os.path.join(repo, "config/firmographics.csv")).read().splitlines()[1:]][:200]
db = tempfile.mkdtemp()
env = dict(os.environ, LEADGATE__STORAGE__URL=f"sqlite://{db}/cg.db", LEADGATE__SERVER__WORKERS="0", RUST_LOG="error")
server = subprocess.Popen(
    ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
     binary, *config, "serve", "--listen", f"127.0.0.1:{port}"],
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
person = itertools.count()  # every intake a new person, across threads
lock = threading.Lock()
failures = []  # a client thread cannot exit the script itself


def lead():
    with lock:
        i = next(person)
        d = domains[int(rng.paretovariate(1.1)) % len(domains)]
    return json.dumps({"email": f"person{i}@{d}", "title": "VP Sales", "source": "webform"})


def post(c, count):
    for _ in range(count):
        c.request("POST", route, body=lead(), headers={"content-type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status >= 300:
            failures.append(f"{route} answered {r.status}")
            return


def send(count):
    if not intake:
        post(conn, count)
        return
    clients = [
        threading.Thread(target=post, args=(http.client.HTTPConnection("127.0.0.1", port, timeout=120), count // 32))
        for _ in range(32)
    ]
    [t.start() for t in clients]
    [t.join() for t in clients]


def checked(count):
    send(count)
    if failures:
        server.terminate()
        sys.exit(failures[0])


checked(320 if intake else 300)
subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
checked(n)
subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
server.terminate()
server.wait()
total = re.search(r"^totals: (\d+)", open(out).read(), re.M)
sent = n - n % 32 if intake else n
print(f"{int(total.group(1)) / sent / 1000:.1f}k instructions per {what} ({sent} requests, {binary})")
