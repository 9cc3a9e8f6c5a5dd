-- name: protocol_stats
-- metric: netsql_protocol
-- type: counter
-- description: The kernel's protocol counters (/proc/net/snmp, snmp6, netstat) per namespace; gauges among them (Tcp CurrEstab, MPTcpExt MPCurrEstab, Ip Forwarding) are left out
-- labels: file, protocol, name, netns
SELECT
    file,
    protocol,
    name,
    coalesce(nullif(netns_name, ''), CAST(netns AS VARCHAR), '') AS netns,
    value
FROM protocol_stats
WHERE value >= 0
  AND NOT (protocol = 'Tcp' AND name IN ('RtoAlgorithm', 'RtoMin', 'RtoMax', 'MaxConn', 'CurrEstab'))
  AND NOT (protocol = 'Ip' AND name IN ('Forwarding', 'DefaultTTL'))
  AND NOT (protocol = 'MPTcpExt' AND name = 'MPCurrEstab');
