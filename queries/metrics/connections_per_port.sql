-- name: connections_per_port
-- metric: netsql_listener_connections
-- type: gauge
-- description: TCP connections per listening port and state: connections whose local port a socket of the same namespace listens on
-- labels: port, state, netns
WITH listening AS (
    SELECT DISTINCT local_port, netns FROM sockets
    WHERE proto IN ('tcp', 'tcp6') AND state = 'LISTEN'
)
SELECT
    CAST(s.local_port AS VARCHAR) AS port,
    s.state,
    coalesce(nullif(s.netns_name, ''), CAST(s.netns AS VARCHAR), '') AS netns,
    count(*) AS connections
FROM sockets s
JOIN listening l ON l.local_port = s.local_port AND l.netns IS NOT DISTINCT FROM s.netns
WHERE s.proto IN ('tcp', 'tcp6') AND s.state <> 'LISTEN'
GROUP BY 1, 2, 3;
