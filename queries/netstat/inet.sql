-- name: netstat_inet
-- description: Internet sockets with every field netstat -tuwan[peo] prints, in its order (behind `netsql netstat`)
-- param: protocols = tcp,tcp6,udp,udp6,udplite,udplite6,raw,raw6
-- param: servers = all
-- `protocols`: which to list, in the order netstat prints them (-t -u -U -w, -4 -6).
-- `servers`: all (-a), only (-l) or none (neither). netstat's test for a server: TCP with
-- no remote port, the others with no remote address.
-- netstat reads /proc/net/tcp, where a listener's Send-Q is always 0; sock_diag gives its
-- backlog limit instead, so the view shows netstat's 0.
-- `seq`: the kernel's order within a protocol, which netstat keeps and a join (-p) does
-- not; `netsql netstat` plans on one partition so that the numbering follows it.
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
    probes,
    row_number() OVER () AS seq
FROM sockets
WHERE family IN ('inet', 'inet6')
  AND array_has(string_to_array($protocols, ','), proto)
  AND ($servers = 'all'
       OR ($servers = 'only') = (CASE WHEN proto IN ('tcp', 'tcp6') THEN remote_port = 0
                                      ELSE remote_address IN ('0.0.0.0', '::') END))
ORDER BY array_position(string_to_array($protocols, ','), proto), seq;
