-- name: stuck_send_queues
-- severity: medium
-- description: TCP connections with more than max_bytes sent but not acknowledged: a stuck or overloaded peer
-- remediation: Look at the peer and the path to it; the program may need send timeouts
-- param: max_bytes = 1048576
SELECT proto, local_address, local_port, remote_address, remote_port, send_q, pid, program
FROM sockets
WHERE proto IN ('tcp', 'tcp6') AND state <> 'LISTEN' AND send_q > $max_bytes
ORDER BY send_q DESC;
