-- name: raw_sockets_non_root
-- severity: high
-- description: Raw IP sockets held by processes not running as root: they can read or forge any packet of their protocol
-- remediation: Find out why the program holds the socket; remove CAP_NET_RAW from it if it needs none
SELECT s.proto, s.local_port AS ip_protocol, o.pid, o.program, p.uid, p.user
FROM sockets s
JOIN socket_owners o ON o.inode = s.inode
JOIN processes p ON p.pid = o.pid
WHERE s.proto IN ('raw', 'raw6') AND p.uid <> 0
ORDER BY o.pid;
