-- name: listeners_by_container
-- description: Every listening TCP socket and bound UDP socket on the host, in every network namespace, with the namespace, its container and the owning program's command line
-- `s.netns IS NOT NULL` reads every namespace whatever --netns says.
SELECT
    s.netns,
    n.name AS netns_name,
    n.runtime,
    n.container_id,
    s.proto,
    s.local_address,
    s.local_port,
    s.pid,
    s.program,
    p.cmdline
FROM sockets s
LEFT JOIN net_namespaces n ON n.inode = s.netns
LEFT JOIN processes p ON p.pid = s.pid
WHERE s.netns IS NOT NULL
  AND ((s.proto IN ('tcp', 'tcp6') AND s.state = 'LISTEN')
    OR (s.proto IN ('udp', 'udp6', 'udplite', 'udplite6') AND s.state = 'CLOSE' AND s.local_port <> 0))
ORDER BY s.netns, s.local_port, s.proto;
