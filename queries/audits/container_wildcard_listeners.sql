-- name: container_wildcard_listeners
-- severity: medium
-- description: Listeners on every interface (0.0.0.0 or ::) inside containers' network namespaces, by programs outside the allowlist: reachable from wherever the container's network is
-- remediation: Bind the service to the container address it must serve, or add the program to the allowlist (-p allow=a,b)
-- param: allow = ''
-- `s.netns IS NOT NULL` reads every namespace whatever --netns says.
SELECT n.runtime, n.container_id, s.netns, s.proto, s.local_address, s.local_port, s.pid, s.program
FROM sockets s
JOIN net_namespaces n ON n.inode = s.netns
WHERE s.netns IS NOT NULL
  AND n.container_id IS NOT NULL
  AND s.local_address IN ('0.0.0.0', '::')
  AND (s.state = 'LISTEN' OR (s.proto IN ('udp', 'udp6') AND s.state = 'CLOSE' AND s.local_port <> 0))
  AND (s.program IS NULL OR NOT array_has(string_to_array(regexp_replace(btrim(CAST($allow AS VARCHAR)), '\s*,\s*', ',', 'g'), ','), s.program))
ORDER BY n.container_id, s.local_port, s.proto;
