#!/usr/bin/env bash
# netsql against ss and netstat on the same N established loopback TCP connections (2N
# sockets: both ends), in a namespace of its own, timed by hyperfine. Prints the medians
# and the ratios. Usage: benches/sockets_vs_ss.sh [CONNECTIONS] (default 10000). Needs
# root, iproute2, net-tools, hyperfine and python3.
set -euo pipefail
n=${1:-10000}
here=$(cd "$(dirname "$0")" && pwd)
netsql=${NETSQL:-${CARGO_TARGET_DIR:-$here/../target}/release/netsql}
ns=netsql-bench-$$
per=8000

ip netns add "$ns"
cleanup() {
    pkill -f "hold_connections.py" 2>/dev/null || true
    pkill -P $$ sleep 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
ip netns exec "$ns" ip link set lo up

# Each holder keeps its connections until it is killed on exit.
fifo=$(mktemp -u); mkfifo "$fifo"
left=$n port=20000 holders=0
while [ "$left" -gt 0 ]; do
    take=$(( left < per ? left : per ))
    sleep infinity | ip netns exec "$ns" python3 "$here/hold_connections.py" "$take" "$port" > "$fifo.$holders" &
    left=$(( left - take )); port=$(( port + 1 )); holders=$(( holders + 1 ))
done
for i in $(seq 0 $(( holders - 1 ))); do
    until grep -q ready "$fifo.$i" 2>/dev/null; do sleep 0.2; done
done
rm -f "$fifo" "$fifo".*
echo "holding $(ip netns exec "$ns" ss -Htn | wc -l) established TCP sockets in $holders processes"

query="SELECT state, recv_q, send_q, local_address, local_port, remote_address, remote_port FROM sockets WHERE proto IN ('tcp','tcp6')"
# hyperfine runs inside the namespace, so no command pays for `ip netns exec`; it runs
# each command in turn (not interleaved: benches for the performance issue do that).
ip netns exec "$ns" hyperfine --warmup 2 --runs 15 -N --export-json /tmp/netsql-bench.json \
    -n "netsql" "$netsql --format csv -e \"$query\"" \
    -n "ss -tan" "ss -tan" \
    -n "netstat -tan" "netstat -tan" \
    -n "netsql +owners" "$netsql --format csv -e \"${query/SELECT /SELECT pid, program, }\"" \
    -n "ss -tanp" "ss -tanp" \
    -n "netstat -tanp" "netstat -tanp" \
    -n "netsql LISTEN" "$netsql --format csv -e \"$query AND state = 'LISTEN'\"" \
    -n "ss -tln" "ss -tln" \
    -n "netsql count" "$netsql --format csv -e \"SELECT state, count(*) FROM sockets GROUP BY state\"" >/dev/null
python3 - <<'PY'
import json
results = {r["command"]: r["median"] for r in json.load(open("/tmp/netsql-bench.json"))["results"]}
for ours, theirs in [("netsql", "ss -tan"), ("netsql", "netstat -tan"),
                     ("netsql +owners", "ss -tanp"), ("netsql +owners", "netstat -tanp"),
                     ("netsql LISTEN", "ss -tln"), ("netsql LISTEN", "netsql"), ("netsql count", "ss -tan")]:
    a, b = results[ours], results[theirs]
    print(f"{ours:15} {a * 1000:8.1f} ms  vs  {theirs:14} {b * 1000:8.1f} ms   ratio {a / b:.2f}x")
PY
