#!/usr/bin/env bash
# One scrape of netsql's metrics against node_exporter's tcpstat and sockstat collectors,
# at 10k and 100k sockets held in a namespace of its own: scrape time (medians of
# interleaved scrapes, A B A B ...), peak RSS, and the CPU a 15 s scrape interval costs
# over 5 minutes at the larger size. Prints a Markdown table. Usage:
#   benches/metrics.sh [RUNS] [CPU_SECONDS]   (default 15 300)
# Needs root, python3, curl and prometheus-node-exporter. Removes its namespace on exit.
set -euo pipefail
runs=${1:-15}
cpu_seconds=${2:-300}
here=$(cd "$(dirname "$0")" && pwd)
netsql=${NETSQL:-${CARGO_TARGET_DIR:-$here/../target}/release/netsql}
ns=netsql-metricsbench-$$
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
inns() { ip netns exec "$ns" "$@"; }

# Starts a server in the namespace (ip netns exec becomes it: $started is its pid) and
# waits until PORT answers.
start() {
    local port=$1; shift
    ip netns exec "$ns" "$@" > /dev/null 2> "$work/log.$port" &
    started=$!
    pids+=("$started")
    for _ in $(seq 200); do
        inns curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && return
        sleep 0.1
    done
    echo "no answer on $port: $(cat "$work/log.$port")" >&2
    exit 1
}

# Seconds for one scrape.
scrape() { inns curl -sf -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1/metrics"; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

held=0
hold() {  # hold() SOCKETS: connections (two sockets each) up to that many sockets
    local want=$1 port=$((20000 + held / 2))
    while [ "$held" -lt "$want" ]; do
        local take=$(( (want - held) / 2 )); [ "$take" -gt 9000 ] && take=9000
        ip netns exec "$ns" python3 "$here/hold_connections.py" "$take" "$port" > "$work/holder.$port" &
        pids+=("$!")
        until grep -q ready "$work/holder.$port" 2>/dev/null; do sleep 0.2; done
        held=$((held + 2 * take)); port=$((port + 1))
    done
}

echo "| sockets | netsql, all metrics | netsql, netsql_sockets only | node_exporter tcpstat+sockstat | ratio (sockets only / node_exporter) | netsql peak RSS | node_exporter peak RSS |"
echo "|---|---|---|---|---|---|---|"
for n in 10000 100000; do
    hold "$n"
    start 19501 "$netsql" metrics --listen 127.0.0.1:19501; all=$started
    start 19502 "$netsql" metrics --listen 127.0.0.1:19502 --metrics-only sockets; one=$started
    start 19503 prometheus-node-exporter --collector.disable-defaults \
        --collector.tcpstat --collector.sockstat --web.listen-address=127.0.0.1:19503
    node=$started
    : > "$work/a"; : > "$work/b"; : > "$work/c"
    for _ in $(seq "$runs"); do
        scrape 19501 >> "$work/a"; scrape 19502 >> "$work/b"; scrape 19503 >> "$work/c"
    done
    a=$(median < "$work/a"); b=$(median < "$work/b"); c=$(median < "$work/c")
    rss() { awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }
    total=$(inns ss -aH | wc -l)
    printf '| %s (ss -a: %s) | %.1f ms | %.1f ms | %.1f ms | %.2fx | %s | %s |\n' "$n" "$total" \
        "$(echo "$a * 1000" | bc -l)" "$(echo "$b * 1000" | bc -l)" "$(echo "$c * 1000" | bc -l)" \
        "$(echo "$b / $c" | bc -l)" "$(rss "$all")" "$(rss "$node")"
    if [ "$n" = 100000 ]; then
        # CPU per scrape of parts of the built-in set (10 scrapes back to back each).
        hz=$(getconf CLK_TCK)
        for set in sockets,connections_per_port,protocol_stats,conntrack,container_sockets \
                listeners tcp_peer_connections,tcp_peer_retransmits,tcp_peer_rtt; do
            start 19504 "$netsql" metrics --listen 127.0.0.1:19504 --metrics-only "$set"
            scrape 19504 > /dev/null
            before=$(cpu_ticks "$started")
            for _ in $(seq 10); do scrape 19504 > /dev/null; done
            after=$(cpu_ticks "$started")
            printf '\nCPU per scrape of %s at %s sockets: %.0f ms (%.2f%% of a core at 15 s)' "$set" "$n" \
                "$(echo "1000 * ($after - $before) / $hz / 10" | bc -l)" \
                "$(echo "100 * ($after - $before) / $hz / 10 / 15" | bc -l)"
            kill "$started"; wait "$started" 2>/dev/null || true
        done
        echo
        hz=$(getconf CLK_TCK)
        before=$(cpu_ticks "$all")
        for _ in $(seq $((cpu_seconds / 15))); do scrape 19501 > /dev/null; sleep 15; done
        after=$(cpu_ticks "$all")
        pct=$(echo "100 * ($after - $before) / $hz / $cpu_seconds" | bc -l)
        printf '\nCPU of `netsql metrics` (all metrics) scraped every 15 s for %s s at %s sockets: %.2f%% of a core (target <= 2%%)\n' \
            "$cpu_seconds" "$n" "$pct"
    fi
    kill "$all" "$one" "$node"
    wait "$all" "$one" "$node" 2>/dev/null || true
done
