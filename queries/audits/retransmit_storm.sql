-- name: retransmit_storm
-- severity: medium
-- description: TCP connections that retransmitted more than max_pct percent of the bytes they sent, once they sent at least min_bytes: a lossy path or an overloaded peer
-- remediation: Look at the path to the peer (loss, MTU, a saturated link) and at the peer itself
-- param: max_pct = 1
-- param: min_bytes = 1048576
SELECT t.remote_address, t.remote_port, t.local_port, s.pid, s.program,
       t.bytes_sent, t.bytes_retrans,
       round(100.0 * t.bytes_retrans / t.bytes_sent, 3) AS retrans_pct
FROM tcp_info t
LEFT JOIN sockets s ON s.cookie = t.cookie
WHERE t.bytes_sent >= $min_bytes AND 100.0 * t.bytes_retrans / t.bytes_sent > $max_pct
ORDER BY retrans_pct DESC, t.local_port;
