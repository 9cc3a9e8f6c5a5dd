-- name: netstat_unix
-- description: Unix sockets with the fields netstat -x[p] prints (behind `netsql netstat -x`)
-- param: servers = all
-- `servers`: all (-a), only listeners (-l) or none of them (neither).
SELECT unix_refcnt, unix_flags, type, state, inode, path, pid
FROM sockets
WHERE family = 'unix'
  AND ($servers = 'all' OR ($servers = 'only') = (state = 'LISTEN'));
