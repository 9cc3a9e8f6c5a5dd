-- name: tcp_peer_rtt
-- metric: netsql_tcp_peer_rtt_seconds
-- type: gauge
-- description: Smoothed round-trip time of the current TCP connections per remote address, mean and largest (value label), for the same top peers as netsql_tcp_peer_connections
-- labels: remote_address
-- param: top = 20
SELECT remote_address, avg(rtt_us) / 1e6 AS mean, max(rtt_us) / 1e6 AS max
FROM tcp_info
WHERE state <> 'LISTEN'
GROUP BY remote_address
ORDER BY sum(total_retrans) DESC, count(*) DESC, remote_address
LIMIT $top;
