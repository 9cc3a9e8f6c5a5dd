-- name: close_wait_leaks
-- severity: high
-- description: Processes holding more than max CLOSE_WAIT sockets: the peer closed and the program never did, a descriptor leak
-- remediation: Fix the program to close connections its peer has closed; restart it to release them now
-- param: max = 10
SELECT o.pid, o.program, count(DISTINCT s.inode) AS close_wait
FROM socket_owners o JOIN sockets s ON s.inode = o.inode
WHERE s.state = 'CLOSE_WAIT'
GROUP BY o.pid, o.program
HAVING count(DISTINCT s.inode) > $max
ORDER BY close_wait DESC, o.pid;
