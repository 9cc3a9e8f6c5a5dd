#!/usr/bin/env bash
# History costs (issue #15): `record --every 10s` holding N established loopback
# connections for SECONDS (CPU share of one core, peak RSS, bytes per socket row on
# disk), then a history query over 1,000 snapshot files whose date and host filter
# touches 10 of them, against the same query over a dataset of just those 10 files.
# Usage: benches/history_vs_ss.sh [CONNECTIONS] [SECONDS]   (default 100000 and 300)
# Needs root and python3; removes its namespace, processes and files on exit.
set -euo pipefail
n=${1:-100000}
seconds=${2:-300}
here=$(cd "$(dirname "$0")" && pwd)
netsql=${NETSQL:-${CARGO_TARGET_DIR:-$here/../target}/release/netsql}
. "$here/namespace.sh"
hold_connections "$n" 20000

# Recording: GNU time's user+system CPU over the wall time, and its peak RSS.
ip netns exec "$ns" /usr/bin/time -f "%e %U %S %M" -o "$work/time" \
    "$netsql" record --to "$work/rec" --every 10s --for "${seconds}s" --host bench 2> "$work/record.err"
read -r wall user sys rss < "$work/time"
snapshots=$(ls "$work"/rec/sockets/*/*/*.parquet | wc -l)
rows=$("$netsql" --history "$work/rec" --format csv -e "SELECT count(*) FROM history.sockets" | tail -1)
bytes=$(du -cb "$work"/rec/sockets/*/*/*.parquet | tail -1 | cut -f1)
python3 - "$wall" "$user" "$sys" "$rss" "$snapshots" "$rows" "$bytes" "$seconds" <<'PY'
import sys
wall, user, sys_, rss = (float(v) for v in sys.argv[1:5])
snapshots, rows, size, seconds = (int(v) for v in sys.argv[5:9])
cpu = (user + sys_) / wall * 100
print(f"\nrecord --every 10s for {seconds} s: {snapshots} snapshots of sockets ({rows} rows), "
      f"CPU {cpu:.2f}% of one core (target <= 5%: {'met' if cpu <= 5 else 'MISSED'}), "
      f"peak RSS {rss / 1024:.1f} MiB (target <= 150 MiB: {'met' if rss <= 150 * 1024 else 'MISSED'}), "
      f"{size / max(rows, 1):.1f} bytes per socket row on disk")
PY

# Pruning: 100 hosts x 10 snapshots of a small table, the same ten files copied under
# each host; the query names one date and one host.
small="$work/small"
for i in $(seq 10); do "$netsql" snapshot --to "$small" --tables interfaces --host h0 > /dev/null; done
date_dir=$(ls "$small/interfaces")
for h in $(seq 1 99); do
    mkdir -p "$small/interfaces/$date_dir/host=h$h"
    cp "$small/interfaces/$date_dir/host=h0/"*.parquet "$small/interfaces/$date_dir/host=h$h/"
done
ten="$work/ten"
mkdir -p "$ten/interfaces/$date_dir"
cp -r "$small/interfaces/$date_dir/host=h42" "$ten/interfaces/$date_dir/"
echo "$(ls "$small"/interfaces/*/*/*.parquet | wc -l) files in the dataset, $(ls "$ten"/interfaces/*/*/*.parquet | wc -l) in the small one" >&2
day=${date_dir#date=}
q="SELECT name, count(*) AS snapshots FROM history.interfaces WHERE date = '$day' AND host = 'h42' GROUP BY name"
python3 - "$netsql" "$small" "$ten" "$q" > "$work/prune.json" <<'PY'
import json, sys
netsql, small, ten, q = sys.argv[1:]
run = lambda dest: [netsql, "--history", dest, "--format", "csv", "-e", q]
print(json.dumps([{"name": "1,000 files, date and host filter", "ours": run(small), "theirs": run(ten), "target": 2.0}]))
PY
python3 "$here/interleave.py" 11 "$work/prune.json" > "$work/prune.out"
python3 - "$work/prune.out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))[0]
print(f"history query touching 10 of 1,000 files: {r['ours_median'] * 1000:.1f} ms vs {r['theirs_median'] * 1000:.1f} ms over "
      f"just those 10 = {r['ratio']:.2f}x (target <= 2x: {'met' if r['ratio'] <= 2 else 'MISSED'})")
PY
