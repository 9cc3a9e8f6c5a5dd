-- name: udp_drops
-- severity: medium
-- description: UDP and raw sockets that dropped more than max_drops datagrams (a full receive buffer or a failed filter): the program reads too slowly or its buffer is too small
-- remediation: Read faster, or raise SO_RCVBUF (and net.core.rmem_max) for the program
-- param: max_drops = 0
SELECT proto, local_address, local_port, drops, skmem_rcvbuf AS receive_buffer, pid, program
FROM sockets
WHERE proto IN ('udp', 'udp6', 'udplite', 'udplite6', 'raw', 'raw6') AND drops > $max_drops
ORDER BY drops DESC, local_port;
