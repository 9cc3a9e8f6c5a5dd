-- name: netstat_unix
-- description: Unix sockets with the fields netstat -x[p] prints (behind `netsql netstat -x`)
-- param: servers = all
-- `servers`: all (-a), only listeners (-l) or none of them (neither).
-- `seq`: the kernel's order, which netstat keeps and a join (-p) does not; `netsql
-- netstat` plans on one partition so that the numbering follows it.
SELECT unix_refcnt, unix_flags, type, state, inode, path, pid, row_number() OVER () AS seq
FROM sockets
WHERE family = 'unix'
  AND ($servers = 'all' OR ($servers = 'only') = (state = 'LISTEN'))
ORDER BY seq;
