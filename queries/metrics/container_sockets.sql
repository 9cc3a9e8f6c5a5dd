-- name: container_sockets
-- metric: netsql_container_sockets
-- type: gauge
-- description: Sockets per container (per network namespace a container runtime made; read every namespace with --netns all) and protocol
-- labels: runtime, container_id, netns, proto
SELECT
    n.runtime,
    n.container_id,
    coalesce(nullif(s.netns_name, ''), CAST(s.netns AS VARCHAR)) AS netns,
    s.proto,
    count(*) AS sockets
FROM sockets s
JOIN net_namespaces n ON n.inode = s.netns
WHERE n.container_id IS NOT NULL
GROUP BY 1, 2, 3, 4;
