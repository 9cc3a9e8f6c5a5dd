-- name: netstat_inet
-- description: Internet sockets with every field netstat -tuwan[peo] prints (behind `netsql netstat`)
-- netstat reads /proc/net/tcp, where a listener's Send-Q is always 0; sock_diag gives its
-- backlog limit instead, so the view shows netstat's 0.
SELECT
    proto,
    recv_q,
    CASE WHEN state = 'LISTEN' AND proto IN ('tcp', 'tcp6') THEN CAST(0 AS BIGINT UNSIGNED) ELSE send_q END AS send_q,
    local_address,
    local_port,
    remote_address,
    remote_port,
    state,
    uid,
    inode,
    pid,
    timer,
    timer_expires_ms,
    retransmits,
    probes
FROM sockets
WHERE family IN ('inet', 'inet6');
