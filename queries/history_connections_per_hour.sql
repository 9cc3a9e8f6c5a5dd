-- name: history_connections_per_hour
-- description: History (--history DEST): established TCP connections per host and remote address in each hour, the most any snapshot of that hour saw. Plain SQL: DuckDB and Spark run it unchanged
SELECT host, hour, remote_address, max(connections) AS connections
FROM (
    SELECT host, taken, date_trunc('hour', taken) AS hour, remote_address, count(*) AS connections
    FROM history.sockets
    WHERE state = 'ESTABLISHED' AND proto IN ('tcp', 'tcp6')
    GROUP BY host, taken, date_trunc('hour', taken), remote_address
) AS per_snapshot
GROUP BY host, hour, remote_address
ORDER BY host, hour, connections DESC, remote_address;
