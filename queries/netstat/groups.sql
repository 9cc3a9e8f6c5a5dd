-- name: netstat_groups
-- description: Multicast group memberships as netstat -g lists them, IPv4 first (behind `netsql netstat -g`)
-- param: families = inet,inet6
SELECT interface, users, family, group_address
FROM multicast_groups
WHERE array_has(string_to_array($families, ','), family)
ORDER BY array_position(string_to_array($families, ','), family);
