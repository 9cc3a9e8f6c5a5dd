-- name: netstat_interfaces
-- description: Interfaces with the counters netstat -i prints (behind `netsql netstat -i`)
SELECT name, mtu, flags, rx_packets, rx_errors, rx_dropped, rx_fifo, tx_packets, tx_errors, tx_dropped, tx_fifo
FROM interfaces;
