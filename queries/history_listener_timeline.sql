-- name: history_listener_timeline
-- description: History (--history DEST): each TCP listener every host ever had, in each network namespace, when it was first and last seen and in how many snapshots. Plain SQL: DuckDB and Spark run it unchanged
SELECT
    host,
    netns,
    max(netns_name) AS netns_name,
    proto,
    local_address,
    local_port,
    min(taken) AS first_seen,
    max(taken) AS last_seen,
    count(DISTINCT taken) AS snapshots
FROM history.sockets
WHERE state = 'LISTEN' AND proto IN ('tcp', 'tcp6')
GROUP BY host, netns, proto, local_address, local_port
ORDER BY host, local_port, proto, local_address, netns;
