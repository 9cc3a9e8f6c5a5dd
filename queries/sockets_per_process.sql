-- name: sockets_per_process
-- description: Sockets each process holds, by protocol, most first (a socket on several of its descriptors counts once)
SELECT
    o.pid,
    o.program,
    count(DISTINCT s.inode) AS sockets,
    count(DISTINCT s.inode) FILTER (WHERE s.proto IN ('tcp', 'tcp6')) AS tcp,
    count(DISTINCT s.inode) FILTER (WHERE s.proto IN ('udp', 'udp6')) AS udp,
    count(DISTINCT s.inode) FILTER (WHERE s.proto = 'unix') AS unix
FROM socket_owners o
JOIN sockets s ON s.inode = o.inode
GROUP BY o.pid, o.program
ORDER BY sockets DESC, o.pid;
