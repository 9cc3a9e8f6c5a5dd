-- name: root_high_port_listeners
-- severity: medium
-- description: Sockets owned by root listening on unprivileged ports, where a service needs no root to bind
-- remediation: Run the service as its own user, or bind a privileged port and drop root after
-- param: min_port = 1024
SELECT proto, local_address, local_port, pid, program
FROM sockets
WHERE state = 'LISTEN' AND uid = 0 AND local_port >= $min_port
ORDER BY local_port, proto;
