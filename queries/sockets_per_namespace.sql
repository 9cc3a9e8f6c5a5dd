-- name: sockets_per_namespace
-- description: Sockets in each network namespace on the host by kind, with the namespace's name and container: where the connections are
-- `s.netns IS NOT NULL` reads every namespace whatever --netns says.
SELECT
    s.netns,
    n.name AS netns_name,
    n.runtime,
    n.container_id,
    count(*) AS sockets,
    count(*) FILTER (WHERE s.state = 'LISTEN') AS listening,
    count(*) FILTER (WHERE s.state = 'ESTABLISHED') AS established,
    count(*) FILTER (WHERE s.proto IN ('udp', 'udp6', 'udplite', 'udplite6')) AS udp,
    count(*) FILTER (WHERE s.proto = 'unix') AS unix
FROM sockets s
LEFT JOIN net_namespaces n ON n.inode = s.netns
WHERE s.netns IS NOT NULL
GROUP BY s.netns, n.name, n.runtime, n.container_id
ORDER BY sockets DESC, s.netns;
