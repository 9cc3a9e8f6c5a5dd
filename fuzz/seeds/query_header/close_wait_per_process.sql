-- name: close_wait_per_process
-- description: TCP connections in CLOSE_WAIT per process: the peer closed, the program has not (a leak when it grows)
SELECT pid, program, count(*) AS close_wait
FROM sockets
WHERE proto IN ('tcp', 'tcp6') AND state = 'CLOSE_WAIT'
GROUP BY pid, program
ORDER BY close_wait DESC, pid;
