-- name: well_known_port_impostors
-- severity: high
-- description: Listeners on a well-known port (below 1024) whose program does not carry the port's service name and is not trusted
-- remediation: Check what the program is; add it to the trusted programs (-p trusted=a,b) if it is meant to serve that port
-- param: trusted = 'sshd,nginx,apache2,httpd,named,dnsmasq,cupsd,systemd,systemd-resolve,master,exim4,dovecot,chronyd'
SELECT s.proto, s.local_port, sv.name AS service, s.pid, s.program
FROM sockets s
JOIN services sv ON sv.port = s.local_port AND sv.protocol = 'tcp'
WHERE s.state = 'LISTEN' AND s.proto IN ('tcp', 'tcp6') AND s.local_port < 1024
  AND s.program IS NOT NULL AND strpos(s.program, sv.name) = 0
  AND NOT array_has(string_to_array(regexp_replace(btrim(CAST($trusted AS VARCHAR)), '\s*,\s*', ',', 'g'), ','), s.program)
ORDER BY s.local_port;
