-- name: root_high_port_listeners
-- severity: medium
-- description: Listeners on unprivileged ports held by a process running as root (or, with no owner in sight, created by root), where a service needs no root to bind
-- remediation: Run the service as its own user, or bind a privileged port and drop root after
-- param: min_port = 1024
-- A socket's uid is the user that created it: a service that bound as root and then
-- dropped to its own user still has uid 0 there, so the holders' users decide.
SELECT proto, local_address, local_port, pid, program
FROM sockets
WHERE state = 'LISTEN' AND local_port >= $min_port
  AND (inode IN (SELECT o.inode FROM socket_owners o JOIN processes p ON p.pid = o.pid
                 WHERE p.uid = 0)
       OR (pid IS NULL AND uid = 0))
ORDER BY local_port, proto;
