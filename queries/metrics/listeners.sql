-- name: listeners
-- metric: netsql_listener
-- type: info
-- description: Each listening TCP socket and bound UDP socket with the program that owns it (one series per address, port and program)
-- labels: proto, address, port, program, netns
SELECT DISTINCT
    proto,
    local_address AS address,
    CAST(local_port AS VARCHAR) AS port,
    coalesce(program, '') AS program,
    coalesce(nullif(netns_name, ''), CAST(netns AS VARCHAR), '') AS netns
FROM sockets
WHERE (proto IN ('tcp', 'tcp6') AND state = 'LISTEN')
   OR (proto IN ('udp', 'udp6', 'udplite', 'udplite6') AND state = 'CLOSE' AND local_port <> 0);
