-- name: connections_per_remote
-- description: Established TCP connections per remote address, most first
-- param: limit = 20
-- An IPv4 peer of an IPv6 socket (::ffff:10.0.0.5) is that IPv4 address: one peer, one row.
SELECT remote_address, count(*) AS connections, count(DISTINCT remote_port) AS remote_ports
FROM (
    SELECT CASE WHEN remote_address LIKE '::ffff:%.%' THEN substr(remote_address, 8) ELSE remote_address END AS remote_address, remote_port
    FROM sockets
    WHERE proto IN ('tcp', 'tcp6') AND state = 'ESTABLISHED'
) AS established
GROUP BY remote_address
ORDER BY connections DESC, remote_address
LIMIT $limit;
