-- name: tcp_peer_connections
-- metric: netsql_tcp_peer_connections
-- type: gauge
-- description: TCP connections per remote address, for the top peers by retransmitted segments then connections (--metrics-param top=N, default 20: at most N addresses get series)
-- labels: remote_address
-- param: top = 20
SELECT remote_address, count(*) AS connections
FROM tcp_info
WHERE state <> 'LISTEN'
GROUP BY remote_address
ORDER BY sum(total_retrans) DESC, count(*) DESC, remote_address
LIMIT $top;
