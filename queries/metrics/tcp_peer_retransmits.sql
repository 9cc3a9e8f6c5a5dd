-- name: tcp_peer_retransmits
-- metric: netsql_tcp_peer_retransmits
-- type: gauge
-- description: Segments retransmitted over the life of the current TCP connections per remote address (a gauge: it falls as connections close), for the same top peers as netsql_tcp_peer_connections
-- labels: remote_address
-- param: top = 20
SELECT remote_address, sum(total_retrans) AS retransmits
FROM tcp_info
WHERE state <> 'LISTEN'
GROUP BY remote_address
ORDER BY sum(total_retrans) DESC, count(*) DESC, remote_address
LIMIT $top;
