-- name: sockets
-- metric: netsql_sockets
-- type: gauge
-- description: Sockets by state, protocol and network namespace (the namespace's name, or its inode when it has none)
-- labels: state, proto, netns
SELECT
    coalesce(state, '') AS state,
    proto,
    coalesce(nullif(netns_name, ''), CAST(netns AS VARCHAR), '') AS netns,
    count(*) AS sockets
FROM sockets
GROUP BY 1, 2, 3;
