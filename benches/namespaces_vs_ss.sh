#!/usr/bin/env bash
# netsql --netns all against running ss once per namespace, on NS namespaces of C
# established loopback TCP connections each (2C sockets: both ends), interleaved
# (A B A B ...), medians and ratios, then a Markdown table. Usage:
#   benches/namespaces_vs_ss.sh [NAMESPACES] [CONNECTIONS] [RUNS]   (default 8 10000 7)
# First, before any bench namespace exists: --netns all against the current namespace
# alone (what widening costs on a host with no other namespace).
# Needs root, iproute2 and python3. Cleans up its namespaces and holders on exit.
set -euo pipefail
count=${1:-8}
n=${2:-10000}
runs=${3:-7}
here=$(cd "$(dirname "$0")" && pwd)
netsql=${NETSQL:-${CARGO_TARGET_DIR:-$here/../target}/release/netsql}
per=8000
work=$(mktemp -d)
names=()
pids=()
cleanup() {
    [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
    for ns in "${names[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

q="SELECT state, recv_q, send_q, local_address, local_port, remote_address, remote_port FROM sockets WHERE proto IN ('tcp','tcp6')"
owners="${q/SELECT /SELECT pid, program, }"

echo "namespaces on this host now: $(ls -L /proc/[0-9]*/ns/net 2>/dev/null | xargs -r stat -L -c %i 2>/dev/null | sort -u | wc -l)" >&2
python3 - "$netsql" "$q" > "$work/alone.json" <<'PY'
import json, sys
netsql, q = sys.argv[1:]
print(json.dumps([{"name": "--netns all, one namespace", "ours": [netsql, "--netns", "all", "--format", "csv", "-e", q],
                   "theirs": [netsql, "--format", "csv", "-e", q], "target": 1.1}]))
PY
python3 "$here/interleave.py" "$runs" "$work/alone.json" > "$work/alone.out"

for i in $(seq 1 "$count"); do
    ns=netsql-nsbench-$$-$i
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
done
for f in "$work"/holder.*; do
    until grep -q ready "$f" 2>/dev/null; do sleep 0.2; done
done
total=0
for ns in "${names[@]}"; do total=$(( total + $(ip netns exec "$ns" ss -Htn | wc -l) )); done
echo "holding $total established TCP sockets in $count namespaces" >&2

loop() { printf 'for ns in %s; do ip netns exec "$ns" ss %s; done' "${names[*]}" "$1"; }
python3 - "$netsql" "$q" "$owners" "$(loop -tan)" "$(loop -tanp)" > "$work/many.json" <<'PY'
import json, sys
netsql, q, owners, loop, loop_p = sys.argv[1:]
sql = lambda s: [netsql, "--netns", "all", "--format", "csv", "-e", s]
print(json.dumps([
    {"name": "TCP sockets, --netns all", "ours": sql(q), "theirs": ["sh", "-c", loop], "target": 0.6},
    {"name": "+ pid, program, --netns all", "ours": sql(owners), "theirs": ["sh", "-c", loop_p], "target": 0.3},
]))
PY
python3 "$here/interleave.py" "$runs" "$work/many.json" > "$work/many.out"

python3 - "$work/alone.out" "$work/many.out" "$count" "$n" "$runs" <<'PY'
import json, sys
alone, many = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
count, n, runs = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"\n{count} namespaces x {n} connections ({2 * n} sockets each), {runs} interleaved runs per pair, medians:\n")
print("| netsql | median | against | median | ratio | target |")
print("|---|---|---|---|---|---|")
against = {
    "--netns all, one namespace": "the same query without --netns",
    "TCP sockets, --netns all": f"`ip netns exec NS ss -tan` for each of the {count}",
    "+ pid, program, --netns all": f"`ip netns exec NS ss -tanp` for each of the {count}",
}
for r in alone + many:
    verdict = "met" if r["ratio"] <= r["target"] else "MISSED"
    print(f"| {r['name']} | {r['ours_median'] * 1000:.1f} ms | {against[r['name']]} | {r['theirs_median'] * 1000:.1f} ms | {r['ratio']:.2f}x | <= {r['target']}x {verdict} |")
peak = max(r["ours_peak_rss_kib"] for r in many)
print(f"\npeak RSS of netsql across the {count} namespaces: {peak / 1024:.1f} MiB")
PY
