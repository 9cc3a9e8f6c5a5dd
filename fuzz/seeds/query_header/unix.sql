-- name: netstat_unix
-- description: Unix sockets with the fields netstat -x[p] prints (behind `netsql netstat -x`)
SELECT unix_refcnt, unix_flags, type, state, inode, path, pid
FROM sockets
WHERE family = 'unix';
