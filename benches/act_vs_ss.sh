#!/usr/bin/env bash
# SQL that acts, timed against ss on the same machine in the same run:
#  1. closing C established loopback connections that match a port filter:
#     `netsql --allow-kill -e "DELETE FROM sockets WHERE remote_port IN (P, P+1)"` against
#     `ss -K '( dport = :P or dport = :P+1 )'`, alternating, a fresh set for every run;
#  2. socket_events under a steady RATE of UDP closes a second for SECONDS: events seen,
#     events the kernel dropped, netsql's CPU time.
# Usage: benches/act_vs_ss.sh [CONNECTIONS] [RUNS] [RATE] [SECONDS]  (default 10000 5 10000 5)
# Needs root, iproute2 and python3. Cleans up its namespace and holders on exit.
set -euo pipefail
n=${1:-10000}
runs=${2:-5}
rate=${3:-10000}
seconds=${4:-5}
here=$(cd "$(dirname "$0")" && pwd)
netsql=${NETSQL:-${CARGO_TARGET_DIR:-$here/../target}/release/netsql}
. "$here/namespace.sh"
# Up to 10000 descriptors a process: two holders, half the connections each.
port=21000
half=$(( n / 2 ))

hold() {
    pids=()
    for p in $port $(( port + 1 )); do
        ip netns exec "$ns" python3 "$here/hold_connections.py" "$half" "$p" > "$work/holder.$p" &
        pids+=($!)
    done
    for p in $port $(( port + 1 )); do
        until grep -q ready "$work/holder.$p" 2>/dev/null; do sleep 0.1; done
    done
}

release() {
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
    # Let the killed holders' sockets leave before the next set binds the same ports.
    while [ "$(ip netns exec "$ns" ss -Htan | wc -l)" -gt 0 ]; do sleep 0.2; done
}

# Milliseconds a command takes; it must leave no connection to the two ports.
timed() {
    local start end left
    start=$(date +%s%N)
    "$@" > /dev/null
    end=$(date +%s%N)
    left=$(ip netns exec "$ns" ss -Htn "( dport = :$port or dport = :$(( port + 1 )) )" | wc -l)
    [ "$left" -eq 0 ] || { echo "left $left connections: $*" >&2; exit 1; }
    echo $(( (end - start) / 1000 ))
}

for run in $(seq 1 "$runs"); do
    hold
    timed ip netns exec "$ns" ss -K "( dport = :$port or dport = :$(( port + 1 )) )" >> "$work/ss.us"
    release
    hold
    timed "$netsql" --netns "$ns" --allow-kill -e \
        "DELETE FROM sockets WHERE remote_port IN ($port, $(( port + 1 )))" >> "$work/netsql.us"
    release
done

# A steady stream of UDP closes at RATE a second, with netsql listening.
"$netsql" --netns "$ns" --format csv -e "SELECT * FROM socket_events" \
    > "$work/events.csv" 2> "$work/events.err" &
listener=$!
until ip netns exec "$ns" awk '$2 == 4 && $4 == "0000000f"' /proc/net/netlink | grep -q .; do sleep 0.05; done
ip netns exec "$ns" python3 - "$rate" "$seconds" <<'PY'
import socket, sys, time
rate, seconds = int(sys.argv[1]), int(sys.argv[2])
start = time.monotonic()
for i in range(rate * seconds):
    # Paced: the i-th close no earlier than i / rate seconds in.
    ahead = start + i / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.close()
PY
sleep 0.5
cpu=$(awk '{print ($14 + $15) * 10}' "/proc/$listener/stat")
kill -INT "$listener"
wait "$listener"
seen=$(( $(wc -l < "$work/events.csv") - 1 ))
lost=$(grep -o 'dropped [0-9]*' "$work/events.err" | awk '{print $2}' || true)

python3 - "$work/ss.us" "$work/netsql.us" "$n" "$runs" "$rate" "$seconds" "$seen" "${lost:-0}" "$cpu" <<'PY'
import statistics, sys
ss = [int(l) for l in open(sys.argv[1])]
ours = [int(l) for l in open(sys.argv[2])]
n, runs, rate, seconds, seen, lost, cpu = map(int, sys.argv[3:])
a, b = statistics.median(ours) / 1000, statistics.median(ss) / 1000
print(f"\nclosing {n} connections matching a port filter, {runs} runs each, medians:\n")
print("| netsql | median | against | median | ratio | target |")
print("|---|---|---|---|---|---|")
print(f"| `DELETE FROM sockets WHERE remote_port IN (P, P+1)` | {a:.1f} ms | `ss -K '( dport = :P or dport = :P+1 )'` | {b:.1f} ms | {a / b:.2f}x | <= 1.2x |")
print(f"\nsocket_events at {rate} UDP closes a second for {seconds} s: {seen} rows, {lost} dropped by the kernel, netsql CPU {cpu} ms ({cpu / seconds / 10:.1f}% of a core)")
PY
