-- name: unnamed_listeners
-- severity: low
-- description: TCP listeners on ports /etc/services has no name for: services nobody documented
-- remediation: Document the port in /etc/services, or stop the listener if nobody needs it
SELECT proto, local_address, local_port, pid, program
FROM sockets
WHERE state = 'LISTEN' AND proto IN ('tcp', 'tcp6') AND service_name(local_port, proto) IS NULL
ORDER BY local_port, proto;
