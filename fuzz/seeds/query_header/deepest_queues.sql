-- name: deepest_queues
-- description: The sockets with the most bytes waiting in their receive or send queue
-- param: limit = 10
SELECT proto, state, local_address, local_port, remote_address, remote_port, recv_q, send_q, pid, program
FROM sockets
WHERE family IN ('inet', 'inet6') AND state <> 'LISTEN' AND (recv_q > 0 OR send_q > 0)
ORDER BY greatest(recv_q, send_q) DESC
LIMIT $limit;
