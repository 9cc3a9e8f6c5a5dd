#!/usr/bin/env bash
# Fleet queries: HOSTS servers (`netsql --netns NS serve --name hI`), each reading a
# namespace of its own that holds C established loopback TCP connections (2C sockets),
# and one client (`netsql --connect`). Interleaved runs (A B A B ...), medians, ratios:
#   - the fleet's GROUP BY state against the same query run locally on one host
#     (`netsql --netns NS`: the slowest single host, as every host holds the same);
#   - the same, but every host's local query run at once, waiting for the slowest: on
#     one machine the fleet's hosts share its cores, and so do these, so the ratio is
#     what the distributed plan itself costs;
#   - the fleet's GROUP BY state against fetching every host's rows to the client and
#     counting there (`SELECT state FROM sockets`: what a client that only unites the
#     hosts' answers must do to give the fleet's count), with the client's peak RSS;
# and the bytes each server sent (its log's worker.ExecuteTask lines) for the grouped
# query and for `SELECT *`. Usage:
#   benches/fleet.sh [HOSTS] [CONNECTIONS] [RUNS]      (default 8 50000 5)
# Needs root, iproute2 and python3. Cleans up its namespaces, holders and servers.
set -euo pipefail
count=${1:-8}
n=${2:-50000}
runs=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
netsql=${NETSQL:-${CARGO_TARGET_DIR:-$here/../target}/release/netsql}
per=8000
work=$(mktemp -d)
names=()
pids=()
cleanup() {
    [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    for ns in "${names[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

hosts=()
for i in $(seq 1 "$count"); do
    ns=netsql-fleetbench-$$-$i
    ip netns add "$ns"
    names+=("$ns")
    ip netns exec "$ns" ip link set lo up
    left=$n port=20000 holders=0
    while [ "$left" -gt 0 ]; do
        take=$(( left < per ? left : per ))
        ip netns exec "$ns" python3 "$here/hold_connections.py" "$take" "$port" > "$work/holder.$i.$holders" &
        pids+=($!)
        left=$(( left - take )); port=$(( port + 1 )); holders=$(( holders + 1 ))
    done
    "$netsql" --netns "$ns" serve --listen 127.0.0.1:0 --name "h$i" --max-queries 64 2> "$work/server.$i.log" &
    pids+=($!)
done
for f in "$work"/holder.*; do
    until grep -q ready "$f" 2>/dev/null; do sleep 0.2; done
done
for i in $(seq 1 "$count"); do
    until grep -q "serving" "$work/server.$i.log" 2>/dev/null; do sleep 0.1; done
    hosts+=("$(head -1 "$work/server.$i.log" | sed 's/.* on //')")
done
connect=$(IFS=,; echo "${hosts[*]}")
total=0
for ns in "${names[@]}"; do total=$(( total + $(ip netns exec "$ns" ss -Htn | wc -l) )); done
echo "holding $total established TCP sockets in $count namespaces, $count servers" >&2

grouped="SELECT state, count(*) AS n FROM sockets GROUP BY state"
python3 - "$netsql" "$connect" "$grouped" "${names[@]}" > "$work/spec.json" <<'PY'
import json, shlex, sys
netsql, connect, grouped, *spaces = sys.argv[1:]
fleet = lambda s: [netsql, "--connect", connect, "--format", "csv", "-e", s]
local = lambda ns: f"{shlex.quote(netsql)} --netns {ns} --format csv -e {shlex.quote(grouped)} > /dev/null"
at_once = " & ".join(local(ns) for ns in spaces) + " & wait"
print(json.dumps([
    {"name": "fleet GROUP BY state", "ours": fleet(grouped),
     "theirs": [netsql, "--netns", spaces[0], "--format", "csv", "-e", grouped], "target": 1.5},
    {"name": "fleet GROUP BY state", "ours": fleet(grouped),
     "theirs": ["sh", "-c", at_once], "target": 1.5},
    {"name": "fleet GROUP BY state", "ours": fleet(grouped),
     "theirs": ["sh", "-c", f"{netsql} --connect {connect} --format csv -e 'SELECT state FROM sockets' | sort | uniq -c > /dev/null"],
     "target": 1 / 3},
]))
PY
python3 "$here/interleave.py" "$runs" "$work/spec.json" > "$work/times.json"

# The client's peak RSS for each shape (GNU time's wait4 figure, in KiB).
rss() { python3 -c 'import os,subprocess,sys; p=subprocess.Popen(sys.argv[1:],stdout=subprocess.DEVNULL); print(os.wait4(p.pid,0)[2].ru_maxrss)' "$@"; }
rss_grouped=$(rss "$netsql" --connect "$connect" --format csv -e "$grouped")
rss_rows=$(rss "$netsql" --connect "$connect" --format csv -e "SELECT state FROM sockets")

# Bytes each server sent: the last worker.ExecuteTask line of each log after each query.
last_bytes() {
    local sum=0
    for i in $(seq 1 "$count"); do
        b=$(grep 'call=worker.ExecuteTask' "$work/server.$i.log" | tail -1 | sed 's/.*bytes=\([0-9]*\).*/\1/')
        sum=$(( sum + b ))
    done
    echo $(( sum / count ))
}
"$netsql" --connect "$connect" --format csv -e "$grouped" > /dev/null
sleep 0.5
bytes_grouped=$(last_bytes)
"$netsql" --connect "$connect" --format csv -e "SELECT * FROM sockets" > /dev/null
sleep 0.5
bytes_rows=$(last_bytes)

python3 - "$work/times.json" "$count" "$n" "$runs" "$rss_grouped" "$rss_rows" "$bytes_grouped" "$bytes_rows" <<'PY'
import json, sys
times = json.load(open(sys.argv[1]))
count, n, runs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rss_g, rss_r, b_g, b_r = (int(x) for x in sys.argv[5:9])
print(f"\n{count} servers x {n} connections ({2 * n} sockets each), {runs} interleaved runs per pair, medians:\n")
print("| netsql | median | against | median | ratio | target |")
print("|---|---|---|---|---|---|")
against = ["the same query on one host (`netsql --netns NS`)",
           "the same query on every host at once, locally, until the slowest ends",
           "every host's rows to the client, counted there (`SELECT state` | sort | uniq -c)"]
for t, a in zip(times, against):
    target = t["target"]
    met = "met" if t["ratio"] <= target else "MISSED"
    print(f"| {t['name']} | {t['ours_median'] * 1000:.0f} ms | {a} | {t['theirs_median'] * 1000:.0f} ms "
          f"| {t['ratio']:.2f}x | <= {target:.2f}x: {met} |")
print(f"\nClient peak RSS: fleet GROUP BY {rss_g / 1024:.1f} MiB; every row to the client {rss_r / 1024:.1f} MiB "
      f"({rss_r / max(rss_g, 1):.1f}x).")
print(f"Bytes each server sent (mean): GROUP BY {b_g:,}; SELECT * {b_r:,} ({b_r / max(b_g, 1):,.0f}x).")
PY
