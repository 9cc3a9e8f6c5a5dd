-- name: wildcard_listeners
-- severity: medium
-- description: TCP listeners and bound UDP sockets on every interface (0.0.0.0 or ::) by programs outside the allowlist; an unknown program counts
-- remediation: Bind the service to the addresses it must serve, or add the program to the allowlist (-p allow=a,b)
-- param: allow = 'sshd'
SELECT proto, local_address, local_port, pid, program
FROM sockets
WHERE local_address IN ('0.0.0.0', '::')
  AND (state = 'LISTEN' OR (proto IN ('udp', 'udp6') AND state = 'CLOSE' AND local_port <> 0))
  AND (program IS NULL OR NOT array_has(string_to_array(regexp_replace(btrim(CAST($allow AS VARCHAR)), '\s*,\s*', ',', 'g'), ','), program))
ORDER BY local_port, proto;
