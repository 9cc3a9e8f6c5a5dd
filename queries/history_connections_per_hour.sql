-- name: history_connections_per_hour
-- description: History (--history DEST): established TCP connections per host and remote address in each hour, the most any snapshot of that hour saw. Plain SQL: DuckDB and Spark run it unchanged
SELECT host, hour, remote_address, max(connections) AS connections
FROM (
    SELECT host, taken, hour, remote_address, count(*) AS connections
    FROM (
        -- An IPv4 peer of an IPv6 socket (::ffff:10.0.0.5) is that IPv4 address.
        SELECT host, taken, date_trunc('hour', taken) AS hour,
               CASE WHEN remote_address LIKE '::ffff:%.%' THEN substr(remote_address, 8) ELSE remote_address END AS remote_address
        FROM history.sockets
        WHERE state = 'ESTABLISHED' AND proto IN ('tcp', 'tcp6')
    ) AS established
    GROUP BY host, taken, hour, remote_address
) AS per_snapshot
GROUP BY host, hour, remote_address
ORDER BY host, hour, connections DESC, remote_address;
