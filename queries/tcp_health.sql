-- name: tcp_health
-- description: Per remote address, established TCP connections: how many, median and worst round-trip time, the share of bytes sent that was retransmitted, and the programs holding them
-- An IPv4 peer of an IPv6 socket (::ffff:10.0.0.5) is that IPv4 address: one peer, one row.
SELECT
    CASE WHEN t.remote_address LIKE '::ffff:%.%' THEN substr(t.remote_address, 8) ELSE t.remote_address END AS remote_address,
    count(*) AS connections,
    median(t.rtt_us) AS median_rtt_us,
    max(t.rtt_us) AS max_rtt_us,
    sum(t.bytes_sent) AS bytes_sent,
    sum(t.bytes_retrans) AS bytes_retrans,
    round(100.0 * sum(t.bytes_retrans) / nullif(sum(t.bytes_sent), 0), 3) AS retrans_pct,
    array_to_string(array_sort(array_agg(DISTINCT s.program)), ',') AS programs
FROM tcp_info t
LEFT JOIN sockets s ON s.cookie = t.cookie
WHERE t.state = 'ESTABLISHED'
GROUP BY 1
ORDER BY connections DESC, remote_address;
