-- name: netstat_interfaces
-- description: Interfaces with the counters netstat -i prints, by name (behind `netsql netstat -i`)
-- param: all = false
-- `all`: every interface (-a), or only those that are up.
SELECT name, mtu, flags, rx_packets, rx_errors, rx_dropped, rx_fifo, tx_packets, tx_errors, tx_dropped, tx_fifo
FROM interfaces
WHERE $all OR flags & 1 = 1
ORDER BY name;
