#!/usr/bin/env bash
# netsql against ss on the same N established loopback TCP connections (2N sockets: both
# ends), in a namespace of its own: every pair of the performance targets, interleaved
# (A B A B ...), medians and ratios, then a Markdown table. Usage:
#   benches/sockets_vs_ss.sh [CONNECTIONS] [RUNS]     (default 10000 and 11)
# Needs root, iproute2 and python3. Cleans up its namespaces and holders on exit.
set -euo pipefail
n=${1:-10000}
runs=${2:-11}
here=$(cd "$(dirname "$0")" && pwd)
target_dir=${CARGO_TARGET_DIR:-$here/../target}
netsql=${NETSQL:-$target_dir/release/netsql}
# The floors: `cargo build --release --examples` (benches/floor/).
floor=$target_dir/release/examples/sockdiag_floor
noop=$target_dir/release/examples/noop
[ -x "$floor" ] && [ -x "$noop" ] || { echo "build the floors first: cargo build --release --examples" >&2; exit 2; }
. "$here/namespace.sh"
# SELECT 1 runs in a second namespace, idle.
idle=netsql-idle-$$
trap 'cleanup; ip netns del "$idle" 2>/dev/null || true' EXIT
ip netns add "$idle"
ip netns exec "$idle" ip link set lo up
# A lone listener on port 9999 (a holder of no connections): the port filter's target
# selects one socket of all.
ip netns exec "$ns" python3 "$here/hold_connections.py" 0 9999 > "$work/holder.9999" &
pids+=($!)
holding+=("$work/holder.9999")
hold_connections "$n" 20000

q="SELECT state, recv_q, send_q, local_address, local_port, remote_address, remote_port FROM sockets WHERE proto IN ('tcp','tcp6')"
owners="${q/SELECT /SELECT pid, program, }"
memory="${q/SELECT /SELECT skmem_rmem_alloc, skmem_rcvbuf, skmem_wmem_alloc, skmem_sndbuf, skmem_fwd_alloc, skmem_wmem_queued, skmem_optmem, skmem_backlog, drops, }"
# Issue #18's targets, which differ at 10k and 100k connections (#14's and #15's are set
# at 100k only); the floor is the kernel
# answering netsql's own request (benches/floor/sockdiag.rs), or an empty process.
python3 - "$netsql" "$q" "$owners" "$memory" "$work" "$floor" "$n" > "$work/loaded.json" <<'PY'
import json, sys
netsql, q, owners, memory, work, floor, n = sys.argv[1:]
big = int(n) >= 50000
sql = lambda s: [netsql, "--format", "csv", "-e", s]
print(json.dumps([
    {"name": "TCP sockets", "ours": sql(q), "theirs": ["ss", "-tan"], "target": 0.5 if big else 0.8,
     "floor": [floor, "all"], "floor_target": 1.5 if big else None},
    {"name": "TCP sockets + pid, program", "ours": sql(owners), "theirs": ["ss", "-tanp"], "target": 0.1 if big else 0.5,
     "floor": [floor, "all"]},
    {"name": "AND state = 'LISTEN'", "ours": sql(q + " AND state = 'LISTEN'"), "theirs": ["ss", "-tln"], "target": 0.5 if big else 1.0,
     "floor": [floor, "listen"]},
    {"name": "AND local_port = 9999", "ours": sql(q + " AND local_port = 9999"), "theirs": ["ss", "-tan", "sport = :9999"],
     "target": 0.8 if big else 1.0, "floor": [floor, "sport", "9999"]},
    {"name": "count(*) GROUP BY state", "ours": sql("SELECT state, count(*) FROM sockets GROUP BY state"), "theirs": ["ss", "-tan"],
     "target": 0.4 if big else 0.8, "floor": [floor, "all"]},
    {"name": "SELECT * FROM tcp_info", "ours": sql("SELECT * FROM tcp_info"), "theirs": ["ss", "-tin"], "target": 0.7 if big else None,
     "floor": [floor, "all", "info"]},
    {"name": "TCP sockets + skmem_*, drops", "ours": sql(memory), "theirs": ["ss", "-tmn"], "target": 0.7 if big else None,
     "floor": [floor, "all", "skmem"]},
    {"name": "snapshot --tables sockets", "ours": [netsql, "snapshot", "--to", work + "/snap", "--tables", "sockets"],
     "theirs": ["sh", "-c", "ss -tan > " + work + "/ss.txt"], "target": 1.5 if big else None, "floor": [floor, "all"]},
]))
PY
python3 - "$netsql" "$noop" > "$work/idle.json" <<'PY'
import json, sys
print(json.dumps([{"name": "SELECT 1 (idle namespace)", "ours": [sys.argv[1], "--format", "csv", "-e", "SELECT 1"],
                   "theirs": ["ss", "-tan"], "target": 1.0, "floor": [sys.argv[2]]}]))
PY
ip netns exec "$ns" python3 "$here/interleave.py" "$runs" "$work/loaded.json" > "$work/loaded.out"
ip netns exec "$idle" python3 "$here/interleave.py" "$runs" "$work/idle.json" > "$work/idle.out"

python3 - "$work/loaded.out" "$work/idle.out" "$n" "$runs" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1])) + json.load(open(sys.argv[2]))
n, runs = int(sys.argv[3]), int(sys.argv[4])
cmd = lambda argv: " ".join(a if " " not in a else repr(a) for a in argv[1:]) if argv[0] != "ss" else " ".join(argv)
print(f"\n{n} connections ({2 * n} sockets), {runs} interleaved runs per pair, medians:\n")
print("| netsql | median | against | median | ratio | target | floor | netsql / floor |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    theirs = " ".join(r["theirs"]) if r["theirs"][0] == "ss" else ("ss -tan > file" if r["theirs"][0] == "sh" else "the full TCP query")
    target = "" if r["target"] is None else (f"<= {r['target']}x " + ("met" if r["ratio"] <= r["target"] else "MISSED"))
    floor, floor_ratio = "", ""
    if "floor_median" in r:
        floor = f"{r['floor_median'] * 1000:.1f} ms"
        floor_ratio = f"{r['floor_ratio']:.2f}x"
        if r.get("floor_target"):
            floor_ratio += f" (<= {r['floor_target']}x " + ("met" if r["floor_ratio"] <= r["floor_target"] else "MISSED") + ")"
    print(f"| {r['name']} | {r['ours_median'] * 1000:.1f} ms | `{theirs}` | {r['theirs_median'] * 1000:.1f} ms | {r['ratio']:.2f}x | {target} | {floor} | {floor_ratio} |")
peak = max(r["ours_peak_rss_kib"] for r in rows if "pid" in r["name"])
print(f"\npeak RSS of the owners query: {peak / 1024:.1f} MiB (target <= 64 MiB: " + ("met" if peak <= 64 * 1024 else "MISSED") + ")")
PY
