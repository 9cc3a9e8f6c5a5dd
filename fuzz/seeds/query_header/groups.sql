-- name: netstat_groups
-- description: Multicast group memberships as netstat -g lists them (behind `netsql netstat -g`)
SELECT interface, users, family, group_address
FROM multicast_groups;
