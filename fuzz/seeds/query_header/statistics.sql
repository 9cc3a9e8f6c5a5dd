-- name: netstat_statistics
-- description: Every protocol counter in file order, which netstat -s prints as sentences (behind `netsql netstat -s`)
SELECT file, protocol, name, value
FROM protocol_stats;
