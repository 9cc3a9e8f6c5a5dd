-- name: conntrack_near_full
-- severity: high
-- description: Network namespaces whose connection-tracking table is at least `percent` per cent full (90 unless given): when it is full the kernel drops the first packet of every new connection
-- remediation: Raise net.netfilter.nf_conntrack_max (and nf_conntrack_buckets), shorten the timeouts of idle flows, or exempt heavy traffic from tracking (a NOTRACK rule)
-- param: percent = 90
SELECT netns, netns_name, count, max, round(100.0 * count / max, 1) AS percent_full
FROM conntrack_stats
WHERE cpu IS NULL AND max > 0 AND 100.0 * count >= CAST(max AS DOUBLE) * $percent
ORDER BY percent_full DESC, netns;
