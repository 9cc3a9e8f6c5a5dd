# Sourced by the benchmark scripts: a network namespace of their own ($ns, with
# loopback up), a work directory ($work), and processes ($pids) that are all removed on
# exit; `hold_connections N PORT` fills the namespace with N established loopback
# connections, spread over processes of 8000 (one may hold at most 20000 descriptors,
# two per connection), on listeners from PORT up, and waits until all are held (and
# every holder in $holding is ready).
# Needs $here (the benches directory) set by the caller.
ns=netsql-bench-$$
work=$(mktemp -d)
pids=()
# The output files of the holders started so far, each saying "ready" once it is.
holding=()
cleanup() {
    [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up

hold_connections() {
    local left=$1 port=$2 holders=0 take
    while [ "$left" -gt 0 ]; do
        take=$(( left < 8000 ? left : 8000 ))
        ip netns exec "$ns" python3 "$here/hold_connections.py" "$take" "$port" > "$work/holder.$port" &
        pids+=($!)
        holding+=("$work/holder.$port")
        left=$(( left - take )); port=$(( port + 1 )); holders=$(( holders + 1 ))
    done
    for f in "${holding[@]}"; do
        until grep -q ready "$f" 2>/dev/null; do sleep 0.2; done
    done
    echo "holding $(ip netns exec "$ns" ss -Htn | wc -l) established TCP sockets in $holders processes" >&2
}
