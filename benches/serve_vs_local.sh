#!/usr/bin/env bash
# netsql serve, measured against netsql itself in the same run, in a namespace holding
# N established loopback connections (2N sockets):
#  1. `SELECT * FROM sockets` fetched over loopback Flight SQL (ADBC, one connection
#     kept open) against `netsql -e ... --format arrow -o FILE`, interleaved, medians;
#  2. the grouped state count: queries a second over 4 concurrent ADBC clients against
#     one-shot `netsql -e` processes a second;
#  3. the server's RSS idle and after 1000 queries.
# Usage: benches/serve_vs_local.sh [N] [RUNS]   (default 100000 5)
# Needs root, iproute2, python3 with adbc_driver_flightsql. Cleans up on exit.
set -euo pipefail
n=${1:-100000}
runs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
netsql=${NETSQL:-${CARGO_TARGET_DIR:-$here/../target}/release/netsql}
. "$here/namespace.sh"
hold_connections "$n" 22000

"$netsql" --netns "$ns" serve --listen 127.0.0.1:0 --max-queries 8 2> "$work/server.log" &
server=$!
pids+=($server)
until grep -q "serving" "$work/server.log"; do sleep 0.1; done
addr=$(grep -o 'grpc://[^ ]*' "$work/server.log" | head -1)

python3 - "$netsql" "$ns" "$addr" "$runs" "$server" "$work" <<'PY'
import statistics, subprocess, sys, threading, time
import adbc_driver_flightsql.dbapi as flight
import warnings
warnings.simplefilter("ignore")
netsql, ns, uri, runs, server, work = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
everything = "SELECT * FROM sockets"
grouped = "SELECT state, count(*) FROM sockets GROUP BY state"

def rss():
    for line in open(f"/proc/{server}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

conn = flight.connect(uri)
def fetch(sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table().num_rows

idle = rss()
over, local, rows = [], [], 0
for _ in range(runs):
    t = time.perf_counter(); rows = fetch(everything); over.append(time.perf_counter() - t)
    t = time.perf_counter()
    subprocess.run([netsql, "--netns", ns, "--format", "arrow", "-o", f"{work}/out.arrow", "-e", everything], check=True)
    local.append(time.perf_counter() - t)
a, b = statistics.median(over) * 1000, statistics.median(local) * 1000
print(f"\n{rows} sockets, {runs} interleaved runs, medians:\n")
print("| netsql | median | against | median | ratio | target |")
print("|---|---|---|---|---|---|")
print(f"| `{everything}` over Flight SQL (ADBC, loopback) | {a:.1f} ms | `netsql -e ... --format arrow -o FILE` | {b:.1f} ms | {a / b:.2f}x | <= 1.3x |")

# Queries a second: 4 clients, each its own connection, for a fixed count.
per_client = 50
def client():
    c = flight.connect(uri)
    for _ in range(per_client):
        with c.cursor() as cur:
            cur.execute(grouped); cur.fetch_arrow_table()
    c.close()
threads = [threading.Thread(target=client) for _ in range(4)]
t = time.perf_counter()
for th in threads: th.start()
for th in threads: th.join()
qps = 4 * per_client / (time.perf_counter() - t)
t = time.perf_counter(); k = 10
for _ in range(k):
    subprocess.run([netsql, "--netns", ns, "--format", "csv", "-e", grouped], check=True, stdout=subprocess.DEVNULL)
pps = k / (time.perf_counter() - t)
print(f"\n`{grouped}`: {qps:.1f} queries/s over 4 Flight clients, {pps:.1f} one-shot `netsql -e` processes/s: {qps / pps:.1f}x")

before = rss()
for _ in range(1000):
    fetch("SELECT 1")
after = rss()
print(f"\nserver RSS: idle {idle:.1f} MiB; after the runs above {before:.1f} MiB; after 1000 more queries {after:.1f} MiB ({(after / before - 1) * 100:+.1f}%)")
PY
