-- name: socket_memory
-- description: Socket memory by program, largest first: bytes queued to receive and to send, option memory and backlog (ss -m's r, w, o, bl) over every socket it holds
-- param: limit = 20
SELECT
    pid,
    program,
    count(*) AS sockets,
    sum(skmem_rmem_alloc) AS receive_bytes,
    sum(skmem_wmem_queued) AS send_bytes,
    sum(skmem_rmem_alloc + skmem_wmem_queued + skmem_optmem + skmem_backlog) AS total_bytes,
    sum(drops) AS drops
FROM sockets
WHERE skmem_rcvbuf IS NOT NULL
GROUP BY pid, program
ORDER BY total_bytes DESC, pid
LIMIT $limit;
