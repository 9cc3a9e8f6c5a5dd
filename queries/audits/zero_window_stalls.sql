-- name: zero_window_stalls
-- severity: medium
-- description: TCP connections with data waiting to be sent while the peer advertises a zero window: the peer stopped reading
-- remediation: Find out why the peer does not read (hung, overloaded); the sender may need a write timeout
SELECT t.remote_address, t.remote_port, t.local_port, s.pid, s.program, s.send_q, t.snd_wnd, s.timer
FROM tcp_info t
JOIN sockets s ON s.cookie = t.cookie
WHERE t.state = 'ESTABLISHED' AND s.send_q > 0 AND (t.snd_wnd = 0 OR s.timer = 'probe')
ORDER BY s.send_q DESC, t.local_port;
