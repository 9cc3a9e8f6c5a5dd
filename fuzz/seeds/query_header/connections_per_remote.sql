-- name: connections_per_remote
-- description: Established TCP connections per remote address, most first
-- param: limit = 20
SELECT remote_address, count(*) AS connections, count(DISTINCT remote_port) AS remote_ports
FROM sockets
WHERE proto IN ('tcp', 'tcp6') AND state = 'ESTABLISHED'
GROUP BY remote_address
ORDER BY connections DESC, remote_address
LIMIT $limit;
