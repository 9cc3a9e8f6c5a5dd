-- name: tcp_peers
-- metric: netsql_tcp_peer
-- type: gauge
-- description: Per remote address, for the top peers by retransmitted segments (--metrics-param top=N, default 20: at most N addresses get series): connections, retransmitted segments, and the mean and largest smoothed round-trip time in seconds
-- labels: remote_address
-- param: top = 20
SELECT
    remote_address,
    count(*) AS connections,
    sum(total_retrans) AS retransmits,
    avg(rtt_us) / 1e6 AS rtt_mean_seconds,
    max(rtt_us) / 1e6 AS rtt_max_seconds
FROM tcp_info
WHERE state <> 'LISTEN'
GROUP BY remote_address
ORDER BY retransmits DESC, connections DESC, remote_address
LIMIT $top;
