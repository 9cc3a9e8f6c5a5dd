#!/usr/bin/env bash
# netsql's conntrack table against conntrack -L on N tracked flows (unanswered UDP
# datagrams to N ports in a namespace of its own, a few of them marked), interleaved
# (A B A B ...), medians and ratios, then a Markdown table. Usage:
#   benches/conntrack_vs_tool.sh [FLOWS] [RUNS]   (default 100000 7)
# UDP entries live 30 s unanswered, so the datagrams are sent again before each pair,
# from the same source ports: the same entries renewed, not as many again.
# Each pair also times the kernel's floor in the same rotation: the same request's
# reply read and counted, not decoded (benches/floor/conntrack.rs).
# Needs root, iptables, conntrack and python3. Removes its namespace on exit.
set -euo pipefail
n=${1:-100000}
runs=${2:-7}
here=$(cd "$(dirname "$0")" && pwd)
target_dir=${CARGO_TARGET_DIR:-$here/../target}
netsql=${NETSQL:-$target_dir/release/netsql}
floor=$target_dir/release/examples/conntrack_floor
[ -x "$floor" ] || { echo "build the floor first: cargo build --release --examples" >&2; exit 2; }
ns=netsql-ctbench-$$
work=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
# The nat table makes the namespace track; one port in 1000 is marked 7.
ip netns exec "$ns" iptables -t nat -A POSTROUTING -o lo -j RETURN
ip netns exec "$ns" iptables -t mangle -A OUTPUT -p udp -m statistic --mode nth --every 1000 \
    --packet 0 -j CONNMARK --set-mark 7
cat > "$work/flows.py" <<'PY'
import socket, sys
n = int(sys.argv[1])
sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range((n + 59999) // 60000)]
# Source ports above the destinations' 1024-61023.
for k, s in enumerate(sockets):
    s.bind(("127.0.0.1", 61100 + k))
for i in range(n):
    sockets[i // 60000].sendto(b"x", ("127.0.0.1", 1024 + i % 60000))
PY
refill() { ip netns exec "$ns" python3 "$work/flows.py" "$n"; }
refill
tracked() {
    echo "$(ip netns exec "$ns" conntrack -C) flows, $(ip netns exec "$ns" conntrack -L -m 7 2>/dev/null | wc -l) marked"
}
echo "tracking $(tracked)" >&2
have=$(ip netns exec "$ns" conntrack -C)

python3 - "$netsql" "$ns" "$floor" > "$work/spec.json" <<'PY'
import json, sys
netsql, ns, floor = sys.argv[1:]
run = lambda argv: ["ip", "netns", "exec", ns] + argv
sql = lambda s: run([netsql, "--format", "csv", "-e", s])
print(json.dumps([
    {"name": "SELECT * FROM conntrack", "ours": sql("SELECT * FROM conntrack"),
     "theirs": run(["conntrack", "-L", "-o", "extended,id"]), "target": 0.5,
     "floor": run([floor, "raw"])},
    {"name": "WHERE mark = 7 (pushed)", "ours": sql("SELECT * FROM conntrack WHERE mark = 7"),
     "theirs": run(["conntrack", "-L", "-o", "extended,id", "-m", "7"]), "target": 0.5,
     "floor": run([floor, "raw", "mark", "7"])},
]))
PY
for i in 0 1; do
    refill
    echo "pair $i: tracking $(tracked)" >&2
    python3 - "$work/spec.json" "$i" > "$work/one.json" <<'PY'
import json, sys
print(json.dumps([json.load(open(sys.argv[1]))[int(sys.argv[2])]]))
PY
    python3 "$here/interleave.py" "$runs" "$work/one.json" > "$work/out.$i"
    # Unanswered entries live 30 s: the pair must end before they do.
    echo "pair $i done: tracking $(tracked)" >&2
done

python3 - "$work/out.0" "$work/out.1" "$have" "$runs" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1])) + json.load(open(sys.argv[2]))
have, runs = sys.argv[3], sys.argv[4]
print(f"\n{have} tracked flows, {runs} interleaved runs per pair, medians:\n")
print("| netsql | median | conntrack | median | ratio | target | kernel's floor | floor / conntrack | netsql peak RSS |")
print("|---|---|---|---|---|---|---|---|---|")
against = {"SELECT * FROM conntrack": "`conntrack -L -o extended,id`",
           "WHERE mark = 7 (pushed)": "`conntrack -L -o extended,id -m 7`"}
for r in rows:
    verdict = "met" if r["ratio"] <= r["target"] else "MISSED"
    print(f"| {r['name']} | {r['ours_median'] * 1000:.1f} ms | {against[r['name']]} | "
          f"{r['theirs_median'] * 1000:.1f} ms | {r['ratio']:.2f}x | <= {r['target']}x {verdict} | "
          f"{r['floor_median'] * 1000:.1f} ms | {r['floor_median'] / r['theirs_median']:.2f}x | "
          f"{r['ours_peak_rss_kib'] / 1024:.1f} MiB |")
PY
