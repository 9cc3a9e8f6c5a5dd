#!/usr/bin/env python3
"""Times pairs of commands interleaved (A B A B ...), so both meet the same machine load,
and prints medians, ratios and the target each ratio is held to.

Usage: interleave.py RUNS SPEC.json > result.json, where SPEC is a list of
{"name", "ours", "theirs", "target"} (commands as argv lists; target a ratio or null),
each optionally with a "floor": the least the kernel (or a process start) costs for the
same work, timed in the same rotation (A B F A B F ...).
Each command's stdout goes to a pipe that is read and dropped, as a script would consume
it. Also records each command's peak RSS (from wait4), in KiB.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def once(argv):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    while proc.stdout.read(1 << 16):
        pass
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{argv!r} failed with status {status}")
    return elapsed, usage.ru_maxrss


def main():
    runs = int(sys.argv[1])
    spec = json.load(open(sys.argv[2]))
    results = []
    for pair in spec:
        ours, theirs, floor = [], [], []
        rss = 0
        once(pair["ours"])  # warm the page cache and the binary
        once(pair["theirs"])
        if pair.get("floor"):
            once(pair["floor"])
        for _ in range(runs):
            t, r = once(pair["ours"])
            ours.append(t)
            rss = max(rss, r)
            theirs.append(once(pair["theirs"])[0])
            if pair.get("floor"):
                floor.append(once(pair["floor"])[0])
        a, b = statistics.median(ours), statistics.median(theirs)
        result = {**pair, "ours_median": a, "theirs_median": b, "ratio": a / b,
                  "ours_peak_rss_kib": rss}
        line = f"{pair['name']:28} {a * 1000:9.1f} ms vs {b * 1000:9.1f} ms  ratio {a / b:5.2f}x"
        if floor:
            f = statistics.median(floor)
            result.update(floor_median=f, floor_ratio=a / f)
            line += f"  floor {f * 1000:7.1f} ms ({a / f:5.2f}x)"
        results.append(result)
        print(line + f"  peak RSS {rss / 1024:6.1f} MiB", file=sys.stderr, flush=True)
    json.dump(results, sys.stdout, indent=1)


main()
