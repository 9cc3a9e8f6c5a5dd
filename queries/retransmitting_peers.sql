-- name: retransmitting_peers
-- description: TCP connections that have retransmitted, most retransmitted bytes first, with the program, the share of bytes sent and the round-trip time
-- param: limit = 20
SELECT
    t.remote_address,
    t.remote_port,
    t.local_port,
    t.state,
    s.pid,
    s.program,
    t.total_retrans,
    t.bytes_retrans,
    t.bytes_sent,
    round(100.0 * t.bytes_retrans / nullif(t.bytes_sent, 0), 3) AS retrans_pct,
    t.lost,
    t.rtt_us
FROM tcp_info t
LEFT JOIN sockets s ON s.cookie = t.cookie
WHERE t.total_retrans > 0
ORDER BY t.bytes_retrans DESC, t.total_retrans DESC, t.local_port
LIMIT $limit;
