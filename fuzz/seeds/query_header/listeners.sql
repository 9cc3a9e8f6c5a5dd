-- name: listeners
-- description: Every listening TCP socket and bound UDP socket with its program, command line and service name
SELECT
    s.proto,
    s.local_address,
    s.local_port,
    service_name(s.local_port, s.proto) AS service,
    s.pid,
    s.program,
    p.cmdline,
    s.user
FROM sockets s
LEFT JOIN processes p ON p.pid = s.pid
WHERE (s.proto IN ('tcp', 'tcp6') AND s.state = 'LISTEN')
   OR (s.proto IN ('udp', 'udp6', 'udplite', 'udplite6') AND s.state = 'CLOSE')
ORDER BY s.local_port, s.proto;
