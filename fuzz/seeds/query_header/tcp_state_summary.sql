-- name: tcp_state_summary
-- description: TCP sockets per state, IPv4 and IPv6 apart, in the spirit of `ss -s`
SELECT
    state,
    count(*) FILTER (WHERE family = 'inet') AS ipv4,
    count(*) FILTER (WHERE family = 'inet6') AS ipv6,
    count(*) AS total
FROM sockets
WHERE proto IN ('tcp', 'tcp6')
GROUP BY state
ORDER BY total DESC, state;
