-- name: deleted_executables
-- severity: high
-- description: Processes whose executable was deleted or replaced that still hold sockets: stale after an upgrade, or malware hiding its file
-- remediation: Restart the service so it runs the installed binary; investigate if no package replaced it
SELECT DISTINCT p.pid, p.name, p.exe, s.proto, s.local_port, s.inode
FROM processes p
JOIN socket_owners o ON o.pid = p.pid
JOIN sockets s ON s.inode = o.inode
WHERE p.exe LIKE '% (deleted)'
ORDER BY p.pid, s.inode;
